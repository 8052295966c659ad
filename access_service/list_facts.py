"""Catalog's lists learn every share, group membership and project role once: for data written before the
lists had a read model (each change since is told as it happens, sharing.py, groups.py, roles.py).

At start, unless an earlier start finished it, every fact that is on is sent to catalog at the version of
the document holding it (catalog keeps a fact only if newer, so a resend or a race with a live change is
harmless); then a mark records it is done. Until catalog answers, it retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from access_service.repository import PROJECT_ROLE_FIELDS, AccessRepository
from shared.catalog_directory import VisibilityFact
from shared.errors import Unavailable
from shared.internal import InternalClient
from shared.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

MARK = "list-facts-sent"
BATCH = 200


async def send_all_facts(
    repository: AccessRepository, client: InternalClient, retry_seconds: float = 2.0
) -> int:
    """Send every fact that is on to catalog (idempotent); the number sent."""
    while True:
        raise_if_cancelling()
        try:
            if await repository.marked(MARK):
                return 0
            sent = await _send(repository, client)
            await repository.mark(MARK)
            log.info("list facts sent to catalog: %d", sent)
            return sent
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - catalog may start after us: try again
            log.warning("list facts not sent yet: %s", exc)
            await asyncio.sleep(retry_seconds)


async def _send(repository: AccessRepository, client: InternalClient) -> int:
    batch: list[VisibilityFact] = []
    sent = 0
    async for fact in _facts(repository):
        batch.append(fact)
        if len(batch) >= BATCH:
            sent += await _post(client, batch)
            batch = []
    return sent + await _post(client, batch)


async def _post(client: InternalClient, facts: list[VisibilityFact]) -> int:
    if not facts:
        return 0
    body = {"facts": [fact.model_dump(mode="json", exclude_none=True) for fact in facts]}
    status, _ = await client.request("POST", "/internal/visibility/facts", json=body)
    if status != 200:
        raise Unavailable(f"catalog answered {status}")
    return len(facts)


async def _facts(repository: AccessRepository) -> AsyncIterator[VisibilityFact]:
    async for access in repository.shared_collections():
        version = int(access.get("version") or 0)
        for user_id in access.get("user_ids", []):
            yield VisibilityFact(
                kind="share", on=True, version=version, collection_id=access["_id"], user_id=user_id
            )
        for group_id in access.get("group_ids", []):
            yield VisibilityFact(
                kind="share", on=True, version=version, collection_id=access["_id"], group_id=group_id
            )
    async for user in repository.users_with_grants():
        version = int(user.get("version") or 0)
        for group_id in user.get("group_ids", []):
            yield VisibilityFact(
                kind="member", on=True, version=version, group_id=group_id, user_id=user["_id"]
            )
        for field in PROJECT_ROLE_FIELDS.values():
            for project_id in user.get(field, []):
                yield VisibilityFact(
                    kind="role", on=True, version=version, project_id=project_id, user_id=user["_id"]
                )

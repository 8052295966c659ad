"""Read models catalog keeps from other services' events: a collection's public flag (dialect B shows it),
and who sees what in the lists (reader_views.py; access_service also tells it directly before answering).

Each flag keeps the entity version of the event that set it (`visibility_version`); events reach this
consumer in the stream's order, but a redelivery (nak, ack timeout, a replica dying) can bring an older
one after a newer one, and it must not win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from catalog_service.collection_crud import access_versions
from catalog_service.reader_views import ReaderViews
from catalog_service.repository import CatalogRepository
from shared.catalog_directory import VisibilityFact
from shared.events import STREAM_NAME, EventEnvelope
from shared.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

SUBJECT = "hub.access.collection.>"
VISIBILITY_TYPES = {"access.collection.made_public": True, "access.collection.made_private": False}


async def consume(
    js: JetStreamContext,
    subject: str,
    durable: str,
    apply: Callable[[EventEnvelope], Awaitable[None]],
    ack_wait: float = 10,
    *,
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
) -> None:
    """Pull events of `subject` (replicas share one durable consumer) and `apply` each; one that fails is
    redelivered a second later, for as long as it fails; one that is not an event is dropped (history's
    dead-letter keeps it)."""
    sub = await js.pull_subscribe(
        subject,
        durable=durable,
        stream=STREAM_NAME,
        # Delivered until applied (max_deliver -1): applying is idempotent and a fact dropped after a
        # few failed tries (a database outage) would leave a list wrong for good.
        # Where a new durable starts (`HUB_CONSUMER_DELIVER_POLICY`): every event, or only new ones.
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, max_deliver=-1, ack_wait=ack_wait, deliver_policy=deliver_policy
        ),
    )
    try:
        while True:
            raise_if_cancelling()
            try:
                messages = await sub.fetch(50, timeout=1)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            except nats.errors.Error as exc:
                log.warning("%s consumer fetch failed: %s", durable, exc)
                await asyncio.sleep(0.5)
                continue
            for message in messages:
                try:
                    event = EventEnvelope.model_validate_json(message.data)
                except ValidationError:
                    await message.term()
                    continue
                try:
                    await apply(event)
                except Exception as exc:  # noqa: BLE001 - retry later rather than lose the change
                    log.warning("%s: event %s not applied, will retry: %s", durable, event.id, exc)
                    await message.nak(delay=1)
                    continue
                await message.ack()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def consume_visibility(
    js: JetStreamContext,
    repository: CatalogRepository,
    durable: str,
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
) -> None:
    """Apply made_public/made_private to the collection documents."""

    async def apply(event: EventEnvelope) -> None:
        is_public = VISIBILITY_TYPES.get(event.type)
        collection_id = event.ids.get("collection_id")
        if is_public is not None and isinstance(collection_id, str):
            # Only a newer version than the one applied sets the flag: a redelivered or reordered older
            # event changes nothing, so the flag converges on access_service's state.
            await repository.apply_visibility(collection_id, is_public, event.entity_version)

    await consume(js, SUBJECT, durable, apply, deliver_policy=deliver_policy)


FACTS_SUBJECT = "hub.access.>"


def fact_of(event: EventEnvelope) -> VisibilityFact | None:
    """The visibility fact an access event records, or None for events the lists do not follow.

    The sync call access_service makes before answering carries the same fact; this is its backstop."""
    kind_on = FACT_EVENTS.get(event.type)
    if kind_on is None or event.entity_version is None:
        return None
    kind, on = kind_on
    ids = event.ids
    if kind == "role":
        on = event.data.get("role") is not None
    try:
        return VisibilityFact.model_validate(
            {
                "kind": kind,
                "on": on,
                "version": event.entity_version,
                "collection_id": ids.get("collection_id") if kind == "share" else None,
                "user_id": ids.get("user_id"),
                "group_id": ids.get("group_id"),
                "project_id": ids.get("project_id") if kind == "role" else None,
            }
        )
    except ValidationError:
        log.warning("access event %s names no visibility fact", event.id)
        return None


FACT_EVENTS: dict[str, tuple[Literal["share", "member", "role"], bool]] = {
    "access.collection.user_linked": ("share", True),
    "access.collection.guest_invited": ("share", True),
    "access.collection.user_unlinked": ("share", False),
    "access.collection.group_linked": ("share", True),
    "access.collection.group_unlinked": ("share", False),
    "access.group.member_added": ("member", True),
    "access.group.member_removed": ("member", False),
    "access.project.role_set": ("role", True),
}


async def consume_facts(
    js: JetStreamContext,
    views: ReaderViews,
    durable: str,
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
) -> None:
    """Apply access events' visibility facts (`apply_fact_event`)."""

    async def apply(event: EventEnvelope) -> None:
        await apply_fact_event(views, event)

    await consume(js, FACTS_SUBJECT, durable, apply, ack_wait=30, deliver_policy=deliver_policy)


async def apply_fact_event(views: ReaderViews, event: EventEnvelope) -> None:
    """Apply an access event's visibility fact as access_service's call does, should that call have
    failed: the shared collection's access version first (a cached allow of a revoked reader is refused
    from then on), then the lists' read model (an older version is a no-op for both)."""
    if (fact := fact_of(event)) is not None:
        await views.repo.raise_access_versions(access_versions([fact]))
        await views.apply_facts([fact])

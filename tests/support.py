"""Helpers the tests share: a small client for the gateway's admin API and token minting."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import nats
from aiohttp import ClientResponse, ClientSession
from nats.js.api import ConsumerConfig, DeliverPolicy

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack, StackConfig
from shared.events import STREAM_NAME

# Test stacks take many requests a second from one address (and many refused credentials): the gateway's
# rate limits are switched off there; tests/security/ checks them on gateways of their own.
UNLIMITED_RATES = {
    "HUB_RATE_LIMIT_CREDENTIAL_PER_SECOND": "0",
    "HUB_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
    "HUB_RATE_LIMIT_AUTH_FAILURES_PER_SECOND": "0",
}


@contextmanager
def running_stack(
    data_dir: Path,
    mongodb_url: str,
    nats_url: str,
    label: str,
    *,
    extra_env: dict[str, str] | None = None,
    replicas: dict[str, int] | None = None,
) -> Iterator[EmbeddedStack]:
    """A stack of real processes on the session's servers, with databases of its own; stopped after.

    Its consumers start at new events (the session's NATS server is shared) and its rate limits are off
    unless `extra_env` sets them.
    """
    config = StackConfig(
        data_dir=data_dir,
        port=free_port(),
        mongodb_url=mongodb_url,
        nats_url=nats_url,
        admin_api_key=f"{label}-admin-{secrets.token_urlsafe(16)}",
        database_prefix=f"{label}_{uuid.uuid4().hex[:8]}",
        extra_env={"HUB_CONSUMER_DELIVER_POLICY": "new", **UNLIMITED_RATES, **(extra_env or {})},
        replicas=replicas or {},
    )
    stack = EmbeddedStack(config)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def unique_email(prefix: str = "user") -> str:
    """An e-mail address no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def hs256_token(secret: str, sub: int | str, audience: str = "collections-hub", **claims: Any) -> str:
    """A valid HS256 JWT for the user, with overridable claims."""
    now = int(time.time())
    return jwt.encode({"sub": str(sub), "aud": audience, "iat": now, "exp": now + 300, **claims}, secret)


@dataclass
class Hub:
    """The gateway as a test sees it: its URL, an HTTP session and the admin key."""

    url: str
    http: ClientSession
    admin_key: str

    def admin(self) -> dict[str, str]:
        """Headers that authenticate as the bootstrap admin."""
        return {"X-API-KEY": self.admin_key}

    async def call(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> ClientResponse:
        """A request through the gateway, as the admin unless another key or headers are given."""
        headers = kwargs.pop("headers", None)
        if headers is None:
            headers = {"X-API-KEY": key} if key else self.admin()
        response = await self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs)
        await response.read()
        return response

    async def create_user(self, role: str = "user", email: str | None = None) -> dict[str, Any]:
        """A new user, created through the admin API."""
        response = await self.call(
            "POST", "/admin/users", json={"email": email or unique_email(role), "role": role}
        )
        assert response.status == 201, await response.text()
        user: dict[str, Any] = await response.json()
        return user

    async def create_key(self, user_id: int) -> dict[str, Any]:
        """A new API key for the user (the one answer that shows it)."""
        response = await self.call("POST", f"/admin/users/{user_id}/api-keys", json={"name": "test"})
        assert response.status == 201, await response.text()
        key: dict[str, Any] = await response.json()
        return key

    async def user_with_key(self, role: str = "user") -> tuple[dict[str, Any], str]:
        """A new user and one API key for it."""
        user = await self.create_user(role)
        return user, (await self.create_key(user["id"]))["key"]


async def find_event(
    nats_url: str, subject: str, predicate: Callable[[dict[str, Any]], bool], within: float = 5.0
) -> dict[str, Any]:
    """The first event on the stream under `subject` for which `predicate(event)` holds.

    Other stacks may share the NATS server and number their users and groups from 1 too: match on
    something unique (an e-mail, a name, a string id), not on an integer id alone.
    """
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe(
            subject, stream=STREAM_NAME, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                messages = await sub.fetch(100, timeout=0.5)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for message in messages:
                event: dict[str, Any] = json.loads(message.data)
                if predicate(event):
                    await sub.unsubscribe()
                    return event
        raise AssertionError(f"no matching event on {subject}")
    finally:
        await nc.close()


async def json_of(hub: Hub, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """Status and decoded body of one call through the gateway."""
    response = await hub.call(method, path, **kwargs)
    return response.status, await response.json()


async def new_project(hub: Hub, prefix: str = "ns", project: str = "p") -> str:
    """A fresh namespace with one project; the dialect-A base path of its collections."""
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    assert (await hub.call("POST", "/admin/namespaces", json={"slug": slug})).status == 201
    assert (
        await hub.call("POST", f"/admin/namespaces/{slug}/projects", json={"slug": project})
    ).status == 201
    return f"/namespaces/{slug}/projects/{project}/collections"


async def wait_for_history(hub: Hub, collection_id: str, entries: int, within: float = 20.0) -> None:
    """Until history shows at least `entries` entries of the collection (the projection is asynchronous)."""
    deadline = time.monotonic() + within
    while True:
        status, body = await json_of(hub, "GET", f"/v1/collections/{collection_id}/history?pageSize=100")
        if status == 200 and len(body["data"]) >= entries:
            return
        assert time.monotonic() < deadline, f"history of {collection_id}: {status} {body}"
        await asyncio.sleep(0.1)

"""history_service in-process on the session's servers, with catalog and access as small real HTTP peers.

The peers implement only the internal endpoints history calls: catalog's collection look-ups and
access_service's `POST /internal/permissions`. Each test gets its own durable consumer (starting at new
events), its own dead-letter subject and its own database, so tests never see each other's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from history_service.app import create_app
from history_service.consumer import DEAD_LETTER_STREAM
from history_service.settings import HistorySettings
from shared.authz import Permissions, PermissionsQuery
from shared.events import STREAM_NAME, EventEnvelope
from shared.mongo import Document
from shared.principal import SECRET_HEADER, Principal, internal_headers, secret_matches
from shared.web import DB_KEY
from tests.integration.conftest import INTERNAL_SECRET, AppRunner

HistoryClient = TestClient[web.Request, web.Application]
OWNER = Principal(user_id=42, email="owner@example.com", role="user", auth="api_key")
STRANGER = Principal(user_id=77, email="stranger@example.com", role="user", auth="api_key")
ADMIN = Principal(user_id=1, email="admin@example.com", role="admin", auth="api_key")


def as_caller(principal: Principal) -> dict[str, str]:
    """Internal headers for a call the gateway forwards on this caller's behalf."""
    return internal_headers(INTERNAL_SECRET, principal, "it-history")


@dataclass
class Peers:
    """What the catalog and access peers answer, and which calls they saw."""

    catalog_url: str = ""
    access_url: str = ""
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_name: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # (user id, collection id) pairs access_service lets read.
    readers: set[tuple[int, str]] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def add_collection(
        self,
        collection_id: str,
        *,
        owner_id: int = 42,
        project_id: str = "p1",
        name: str = "Sample Collection",
    ) -> None:
        """A collection catalog knows."""
        self.collections[collection_id] = {
            "collection_id": collection_id,
            "owner_id": owner_id,
            "project_id": project_id,
            "name": name,
        }


def _peer_app(peers: Peers) -> web.Application:
    """catalog's and access_service's internal endpoints, over the `Peers` state."""

    @web.middleware
    async def internal_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if not secret_matches(request.headers.get(SECRET_HEADER), INTERNAL_SECRET, "internal"):
            return web.json_response({"error": "internal credentials required"}, status=401)
        peers.calls.append(f"{request.method} {request.path}")
        response: web.StreamResponse = await handler(request)
        return response

    async def collection(request: web.Request) -> web.Response:
        found = peers.collections.get(request.match_info["collection_id"])
        if found is None:
            return web.json_response({"error": "collection not found"}, status=404)
        return web.json_response(found)

    async def collection_by_name(request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["project"], request.match_info["name"])
        collection_id = peers.by_name.get(key)
        if collection_id is None:
            return web.json_response({"error": "collection not found"}, status=404)
        return web.json_response(peers.collections[collection_id])

    async def permissions(request: web.Request) -> web.Response:
        query = PermissionsQuery.model_validate(await request.json())
        readable = (query.user_id, query.collection.collection_id) in peers.readers
        return web.json_response(Permissions(read=readable).model_dump())

    app = web.Application(middlewares=[internal_only])
    app.router.add_get("/internal/collections/{collection_id}", collection)
    app.router.add_get("/internal/collections/by-name/{namespace}/{project}/{name}", collection_by_name)
    app.router.add_post("/internal/permissions", permissions)
    return app


@pytest.fixture
async def peers(serve: AppRunner) -> AsyncIterator[Peers]:
    """catalog and access peers on loopback, answering from a `Peers` the test controls."""
    state = Peers()
    async with serve(_peer_app(state)) as catalog, serve(_peer_app(state)) as access:
        state.catalog_url = str(catalog.make_url("")).rstrip("/")
        state.access_url = str(access.make_url("")).rstrip("/")
        yield state


@pytest.fixture
def history_settings(mongodb_url: str, nats_url: str, db_name: str, peers: Peers) -> HistorySettings:
    """Settings for a test instance: its own database, durable and dead-letter subject; quick retries."""
    token = uuid.uuid4().hex[:12]
    return HistorySettings(
        mongodb_url=mongodb_url,
        nats_url=nats_url,
        mongo_database=db_name,
        mongo_write_concern="1",
        internal_secret=SecretStr(INTERNAL_SECRET),
        catalog_url=peers.catalog_url,
        access_url=peers.access_url,
        decision_cache_ttl_seconds=0,
        consumer_durable=f"history_it_{token}",
        consumer_deliver_policy="new",
        consumer_max_deliver=3,
        consumer_backoff_seconds=[2.0],
        consumer_retry_base_seconds=0.1,
        consumer_retry_cap_seconds=0.5,
        dead_letter_subject=f"hub_dlq.it_{token}",
    )


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    """A JetStream context of the test's own (it publishes as a relay would)."""
    nc: NatsClient = await nats.connect(nats_url, connect_timeout=5)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


@pytest.fixture
async def history_app(
    serve: AppRunner, history_settings: HistorySettings, js: JetStreamContext
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[HistoryClient]]]:
    """Start history_service in-process (as many replicas as the test opens); its durable removed after."""

    @asynccontextmanager
    async def start() -> AsyncIterator[HistoryClient]:
        async with serve(create_app(history_settings)) as client:
            yield client

    try:
        yield start
    finally:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(STREAM_NAME, history_settings.consumer_durable)


@pytest.fixture
async def history(
    history_app: Callable[[], AbstractAsyncContextManager[HistoryClient]],
) -> AsyncIterator[HistoryClient]:
    """One running history_service."""
    async with history_app() as client:
        yield client


Publish = Callable[..., Awaitable[EventEnvelope]]


@pytest.fixture
def publish(js: JetStreamContext, peers: Peers) -> Publish:
    """Publish an event as the outbox relay does: on its subject, `Nats-Msg-Id` = event id.

    The catalog peer learns of a collection created here, as the real catalog knows it before its event.
    """

    async def send(
        event_type: str, *, actor: int | None = None, msg_id: str | None = None, **fields: Any
    ) -> EventEnvelope:
        envelope = EventEnvelope(type=event_type, actor=actor, **fields)
        collection_id = envelope.ids.get("collection_id")
        if event_type == "catalog.collection.created" and str(collection_id) not in peers.collections:
            peers.add_collection(
                str(collection_id),
                owner_id=int(fields.get("data", {}).get("owner_id", 42)),
                project_id=str(envelope.ids.get("project_id", "p1")),
                name=str(fields.get("data", {}).get("name", "Sample Collection")),
            )
        await js.publish(
            envelope.subject,
            envelope.model_dump_json().encode(),
            headers={"Nats-Msg-Id": msg_id or envelope.id},
        )
        return envelope

    return send


async def wait_recorded(
    db: AsyncDatabase[Document], event_ids: list[str], within: float = 10.0
) -> list[Document]:
    """The records of these events, once all of them are there."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        records = await db["events"].find({"_id": {"$in": event_ids}}).to_list()
        if len(records) >= len(set(event_ids)):
            return records
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(records)} of {len(set(event_ids))} events recorded")
        await asyncio.sleep(0.05)


def history_db(client: HistoryClient) -> AsyncDatabase[Document]:
    """The running app's own database (read through its client, see tests/conftest.py)."""
    return client.app[DB_KEY]


async def dead_letters(js: JetStreamContext, subject: str, expected: int, within: float = 10.0) -> list[Msg]:
    """The dead letters on `subject`, once there are at least `expected` of them."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        sub = await js.pull_subscribe(
            subject, stream=DEAD_LETTER_STREAM, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        letters: list[Msg] = []
        try:
            while True:
                try:
                    letters.extend(await sub.fetch(100, timeout=0.3))
                except TimeoutError:
                    break
        finally:
            info = await sub.consumer_info()
            await sub.unsubscribe()
            await js.delete_consumer(DEAD_LETTER_STREAM, info.name)
        if len(letters) >= expected or asyncio.get_running_loop().time() > deadline:
            return letters
        await asyncio.sleep(0.2)


def envelope_json(**fields: Any) -> bytes:
    """A JSON envelope body, as a hand-made (possibly broken) publisher would send it."""
    return json.dumps(
        {"id": uuid.uuid4().hex, "version": 1, "occurred_at": "2026-01-01T00:00:00.000Z", **fields}
    ).encode()

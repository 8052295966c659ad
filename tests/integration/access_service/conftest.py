"""access_service in-process on real MongoDB and NATS, with a stand-in for catalog_service's look-ups.

The stand-in is a real aiohttp app on loopback answering the two internal routes access_service calls
(`/internal/projects/...`, `/internal/collections/...`), so the production HTTP adapter is what runs.
It exists only here: catalog_service cannot be started in access_service's integration tests; the e2e
tests use the real one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from access_service.app import OUTBOX_COLLECTIONS, create_app
from access_service.settings import AccessSettings
from shared.events import STREAM_NAME
from shared.metrics import METRICS_KEY
from shared.mongo import Document
from shared.principal import SECRET_HEADER, Principal, internal_headers, secret_matches
from shared.web import DB_KEY, RELAY_KEY
from tests.integration.conftest import INTERNAL_SECRET, AppRunner

ROOT = Principal(user_id=0, email="root@example.com", role="admin", auth="api_key")


@dataclass
class StandInCatalog:
    """The catalog facts a test sets up: projects by slugs, collections by id; what was asked."""

    projects: dict[tuple[str, str], str] = field(default_factory=dict)
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    failing: bool = False
    url: str = ""

    def add_collection(self, owner_id: int, project_id: str = "proj-1", name: str = "Sample") -> str:
        """Register a live collection and return its (new, opaque) id."""
        collection_id = uuid.uuid4().hex[:20]
        self.collections[collection_id] = {
            "collection_id": collection_id,
            "owner_id": owner_id,
            "project_id": project_id,
            "name": name,
        }
        return collection_id

    def app(self) -> web.Application:
        """The stand-in's routes; they refuse calls without the internal secret, as catalog does."""
        app = web.Application()

        async def project(request: web.Request) -> web.Response:
            key = (request.match_info["namespace"], request.match_info["project"])
            return self._answer(request, {"project_id": self.projects[key]} if key in self.projects else None)

        async def collection(request: web.Request) -> web.Response:
            return self._answer(request, self.collections.get(request.match_info["collection_id"]))

        app.router.add_get("/internal/projects/{namespace}/{project}", project)
        app.router.add_get("/internal/collections/{collection_id}", collection)
        return app

    def _answer(self, request: web.Request, found: dict[str, Any] | None) -> web.Response:
        self.asked.append(request.path)
        if not secret_matches(request.headers.get(SECRET_HEADER), INTERNAL_SECRET, "internal"):
            return web.json_response({"error": "internal credentials required"}, status=401)
        if self.failing:
            return web.json_response({"error": "internal server error"}, status=500)
        if found is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(found)


def access_settings(mongodb_url: str, nats_url: str, db_name: str, catalog_url: str) -> AccessSettings:
    """Settings for a test instance on its own database, asking the stand-in catalog."""
    return AccessSettings(
        mongodb_url=mongodb_url,
        nats_url=nats_url,
        mongo_database=db_name,
        mongo_write_concern="1",
        internal_secret=SecretStr(INTERNAL_SECRET),
        catalog_url=catalog_url,
    )


def headers_for(principal: Principal | None) -> dict[str, str]:
    """Internal headers for a call the gateway forwards on this caller's behalf."""
    return internal_headers(INTERNAL_SECRET, principal, "it-request")


@dataclass
class Access:
    """A running access_service and the stand-in catalog it asks."""

    client: TestClient[web.Request, web.Application]
    catalog: StandInCatalog

    @property
    def db(self) -> AsyncDatabase[Document]:
        """The app's own database handle (valid while the app runs)."""
        return self.client.app[DB_KEY]

    async def call(
        self, method: str, path: str, as_: Principal | None = ROOT, json: Any = None
    ) -> tuple[int, Any]:
        """(status, decoded body) of one request made as `as_` (the admin unless told)."""
        response = await self.client.request(method, path, json=json, headers=headers_for(as_))
        body = await response.json(content_type=None) if response.content_length != 0 else None
        return response.status, body

    async def user(self, role: str = "user", email: str | None = None) -> Principal:
        """A new user, created through the admin API, as the principal it authenticates as."""
        address = email or f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        status, body = await self.call("POST", "/admin/users", json={"email": address, "role": role})
        assert status == 201, body
        return Principal(user_id=body["id"], email=address, role=body["role"], auth="api_key")

    async def group(self, *members: Principal, name: str = "team") -> int:
        """A new user group holding these users; its id."""
        status, body = await self.call("POST", "/admin/groups", json={"name": name})
        assert status == 201, body
        if members:
            status, _ = await self.call(
                "POST", f"/admin/groups/{body['id']}/members", json={"user_ids": [m.user_id for m in members]}
            )
            assert status == 200
        return int(body["id"])

    async def permissions(self, user: Principal, collection_id: str) -> dict[str, bool]:
        """`/internal/permissions` for the user on a collection the stand-in knows."""
        info = self.catalog.collections[collection_id]
        query = {
            "user_id": user.user_id,
            "collection": {k: info[k] for k in ("collection_id", "owner_id", "project_id")},
        }
        status, body = await self.call("POST", "/internal/permissions", as_=None, json=query)
        assert status == 200, body
        return dict(body)


@pytest.fixture
async def catalog(serve: AppRunner) -> AsyncIterator[StandInCatalog]:
    """The stand-in catalog, served on loopback."""
    stand_in = StandInCatalog()
    async with serve(stand_in.app()) as client:
        stand_in.url = str(client.make_url("")).rstrip("/")
        yield stand_in


async def quiesce(app: web.Application) -> None:
    """Return when the outbox relay has published everything and sits idle between polls.

    Tests that stop an app right after a write use it so what they assert about published events holds;
    shutdown itself no longer depends on it (`shared.tasks.raise_if_cancelling` guards the relay loop).
    """
    relay = app[RELAY_KEY]
    metrics = app[METRICS_KEY]
    labels = {"service": metrics.service, "client": "relay", "command": "find"}

    def relay_finds() -> float:
        return metrics.registry.get_sample_value("mongo_commands_total", labels) or 0.0

    db = app[DB_KEY]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pending = [
            await db[name].count_documents({"outbox_count": {"$gt": 0}}) for name in OUTBOX_COLLECTIONS
        ]
        if not any(pending):
            break
        await asyncio.sleep(0.02)
    start = relay_finds()
    relay.notify()
    last, stable_since = start, time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        now = relay_finds()
        if now != last:
            last, stable_since = now, time.monotonic()
        elif now >= start + len(OUTBOX_COLLECTIONS) and time.monotonic() - stable_since > 0.03:
            return


@pytest.fixture
def make_access(
    serve: AppRunner, mongodb_url: str, nats_url: str, catalog: StandInCatalog
) -> Callable[..., AbstractAsyncContextManager[TestClient[web.Request, web.Application]]]:
    """Serve an access_service on the given database; optionally prepare the app before it starts."""

    @asynccontextmanager
    async def run(
        db_name: str, prepare: Callable[[web.Application], None] | None = None
    ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
        app = create_app(access_settings(mongodb_url, nats_url, db_name, catalog.url))
        if prepare is not None:
            prepare(app)
        async with serve(app) as client:
            yield client
            await quiesce(client.app)

    return run


@pytest.fixture
async def access(
    make_access: Callable[..., AbstractAsyncContextManager[TestClient[web.Request, web.Application]]],
    catalog: StandInCatalog,
    db_name: str,
) -> AsyncIterator[Access]:
    """A running access_service on a fresh database."""
    async with make_access(db_name) as client:
        yield Access(client, catalog)


class EventTap:
    """Events published on `hub.access.>` from the moment the tap opened."""

    def __init__(self, nats_url: str) -> None:
        self._nats_url = nats_url
        self.seen: list[dict[str, Any]] = []

    async def __aenter__(self) -> EventTap:
        self._nc = await nats.connect(self._nats_url)
        self._sub = await self._nc.jetstream().pull_subscribe(
            "hub.access.>", stream=STREAM_NAME, config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._sub.unsubscribe()
        await self._nc.close()

    async def expect(self, event_type: str, within: float = 5.0, **ids: str | int) -> dict[str, Any]:
        """The first event of this type whose ids include these; fails after `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            for seen in self.seen:
                if seen["type"] == event_type and ids.items() <= seen["ids"].items():
                    return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"no {event_type} with {ids}; saw {[e['type'] for e in self.seen]}")
            try:
                messages = await self._sub.fetch(100, timeout=0.2)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for message in messages:
                await message.ack()
                self.seen.append(json.loads(message.data))

    async def settle(self, quiet: float = 0.5) -> list[dict[str, Any]]:
        """Everything published until nothing new arrived for `quiet` seconds."""
        while True:
            try:
                messages = await self._sub.fetch(100, timeout=quiet)
            except (TimeoutError, nats.errors.TimeoutError):
                return self.seen
            for message in messages:
                await message.ack()
                self.seen.append(json.loads(message.data))


@pytest.fixture
async def events(access: Access, nats_url: str) -> AsyncIterator[EventTap]:
    """A tap on access events, opened after the app started (so the stream exists)."""
    async with EventTap(nats_url) as tap:
        yield tap

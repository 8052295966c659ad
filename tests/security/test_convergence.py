"""Concurrent public/private changes converge: access_service, catalog, readers and history agree at rest.

Every change to a collection's access document carries the version it brings the document to
(`entity_version`, written in the same update); the outbox relay publishes a document's events in that
order and catalog applies a visibility event only if it is newer than the one it holds.

The end-to-end test runs against a stack of its own with two access and two catalog replicas: that is
where order is hardest (two relays on one outbox, two consumers sharing one durable), and where the code
before versions left 8 or 9 of the 30 collections disagreeing at rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from aiohttp import ClientSession
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from access_service.repository import AccessRepository
from catalog_service.consumers import consume_visibility
from catalog_service.repository import CatalogRepository
from collections_hub.stack import EmbeddedStack
from shared.event_types import VisibilityChanged, event
from shared.events import STREAM_NAME, EventEnvelope
from shared.mongo import Document
from shared.outbox import OutboxRelay, new_document_outbox
from tests.support import Hub, running_stack

COLLECTIONS = 30
TOGGLES = 16
VISIBILITY_HISTORY = {"COLLECTION_MADE_PUBLIC": True, "COLLECTION_MADE_PRIVATE": False}
ALREADY = {
    "public": {"error": "Collection is public already"},
    "private": {"error": "Collection is private already"},
}


@dataclass
class View:
    """What each party says about one collection's visibility at one moment."""

    access: bool
    access_pending: int
    catalog: bool
    stranger_reads: bool
    history_newest: bool | None
    history_count: int

    def agrees(self) -> bool:
        """Whether catalog, a stranger and history all show access_service's state."""
        history = False if self.history_newest is None else self.history_newest
        return self.catalog == self.access and self.stranger_reads == self.access and history == self.access


async def _poll(check: Callable[[], Awaitable[bool]], within: float) -> bool:
    """Call `check` until it holds or `within` seconds pass; whether it held."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.25)
    return await check()


@pytest.fixture(scope="module")
def replicated(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """A stack with two access and two catalog replicas: two relays drain one document's outbox and two
    visibility consumers share one durable, as under the production autoscaler."""
    with running_stack(
        tmp_path_factory.mktemp("convergence"),
        mongodb_url,
        nats_url,
        "conv",
        replicas={"access_service": 2, "catalog_service": 2},
    ) as stack:
        yield stack


@pytest.fixture
async def replicated_hub(replicated: EmbeddedStack) -> AsyncIterator[Hub]:
    """A client of the replicated stack's gateway."""
    async with ClientSession() as http:
        yield Hub(replicated.gateway_url, http, replicated.admin_api_key)


@pytest.fixture
async def stack_access_db(
    replicated: EmbeddedStack, mongodb_url: str
) -> AsyncIterator[AsyncDatabase[Document]]:
    """access_service's own database: the state the other services must converge on."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        yield client[f"{replicated.config.database_prefix}_access"]
    finally:
        await client.close()


@pytest.fixture
async def js(nats_url: str) -> AsyncIterator[JetStreamContext]:
    """JetStream on the session's nats-server."""
    nc: NatsClient = await nats.connect(nats_url)
    try:
        yield nc.jetstream()
    finally:
        await nc.close()


async def _view(
    hub: Hub, access_db: AsyncDatabase[Document], collection_id: str, owner: str, stranger: str
) -> View:
    """Ask access_service's store, catalog (as the owner), a stranger and history about one collection."""
    access = await access_db["collection_access"].find_one({"_id": collection_id}) or {}
    shown = await hub.call("GET", f"/api/v2/collections/{collection_id}", key=owner)
    assert shown.status == 200, await shown.text()
    read = await hub.call("GET", f"/api/v2/collections/{collection_id}", key=stranger)
    assert read.status in (200, 404), await read.text()
    page = await hub.call("GET", f"/api/v2/collections/{collection_id}/history/0", key=owner)
    assert page.status == 200, await page.text()
    visibility = [
        VISIBILITY_HISTORY[entry["event_type"]]
        for entry in (await page.json())["history"]["results"]
        if entry["event_type"] in VISIBILITY_HISTORY
    ]
    return View(
        access=bool(access.get("is_public", False)),
        access_pending=int(access.get("outbox_count", 0)),
        catalog=(await shown.json())["collection"]["isPublic"],
        stranger_reads=read.status == 200,
        history_newest=visibility[0] if visibility else None,
        history_count=len(visibility),
    )


async def test_concurrent_toggles_converge_everywhere(
    replicated_hub: Hub, stack_access_db: AsyncDatabase[Document]
) -> None:
    """16 concurrent public/private toggles on each of 30 collections: at rest, every party agrees."""
    hub = replicated_hub
    _, owner = await hub.user_with_key()
    _, stranger = await hub.user_with_key()
    ids = []
    for n in range(COLLECTIONS):
        created = await hub.call("POST", "/api/v2/collections", key=owner, json={"title": f"toggle {n}"})
        assert created.status == 200, await created.text()
        ids.append((await created.json())["collection"]["id"])
    seed = random.randrange(1 << 32)
    chooser = random.Random(seed)
    calls = [(cid, chooser.choice(("public", "private"))) for cid in ids for _ in range(TOGGLES)]

    async def toggle(collection_id: str, action: str) -> tuple[str, int]:
        response = await hub.call("POST", f"/api/v2/collections/{collection_id}/{action}", key=owner)
        body = await response.json()
        assert (response.status, body) in (
            (200, {"is_public": action == "public"}),
            (400, ALREADY[action]),
        ), (
            seed,
            action,
            response.status,
            body,
        )
        return collection_id, response.status

    answers = await asyncio.gather(*(toggle(cid, action) for cid, action in calls))
    changes = {
        cid: sum(1 for answered, status in answers if answered == cid and status == 200) for cid in ids
    }

    views: dict[str, View] = {}

    async def quiet() -> bool:
        """Every change published and recorded in history exactly once."""
        for cid in ids:
            views[cid] = await _view(hub, stack_access_db, cid, owner, stranger)
        return all(views[cid].access_pending == 0 and views[cid].history_count == changes[cid] for cid in ids)

    assert await _poll(quiet, within=90), {cid: (changes[cid], views[cid]) for cid in ids}

    async def agreed() -> bool:
        # Decisions may be cached as an allow for up to a second after the last change.
        for cid in ids:
            views[cid] = await _view(hub, stack_access_db, cid, owner, stranger)
        return all(view.agrees() for view in views.values())

    await _poll(agreed, within=10)
    disagreeing = {cid: view for cid, view in views.items() if not view.agrees()}
    assert disagreeing == {}, (seed, disagreeing)
    assert {cid: view.history_count for cid, view in views.items()} == changes


async def test_concurrent_writers_get_consecutive_entity_versions(mongo_db: AsyncDatabase[Document]) -> None:
    """Concurrent flips of one access document all answer; their events carry versions 1..n in write order."""
    repository = AccessRepository(mongo_db)
    await repository.ensure_indexes()
    collection_id = f"c-{uuid.uuid4().hex}"
    await repository.ensure_access(collection_id, "2026-01-01T00:00:00.000Z")
    wanted = [bool(n % 3) for n in range(TOGGLES)]

    async def flip(is_public: bool) -> bool:
        made = event(
            "access.collection.made_public" if is_public else "access.collection.made_private",
            VisibilityChanged(is_public=is_public),
            actor=1,
            collection_id=collection_id,
        )
        return await repository.set_public(collection_id, is_public, "2026-01-01T00:00:00.000Z", made)

    versions = await asyncio.gather(*(flip(is_public) for is_public in wanted))
    written = sum(map(bool, versions))
    # Each writer that changed something was told the version it wrote: 1..n, each once.
    assert sorted(version for version in versions if version) == list(range(1, written + 1))
    document = await mongo_db["collection_access"].find_one({"_id": collection_id})
    assert document is not None
    pending = sorted(document["outbox"].values(), key=lambda entry: entry["entity_version"])
    assert [entry["entity_version"] for entry in pending] == list(range(1, written + 1))
    assert document["version"] == written
    # Each write flipped the state the previous one left: public, private, public, ...
    assert [entry["data"]["is_public"] for entry in pending] == [n % 2 == 0 for n in range(written)]
    assert pending[-1]["data"]["is_public"] == document["is_public"]


async def _stream_events(
    js: JetStreamContext, start_seq: int, collection_id: str, count: int
) -> list[dict[str, Any]]:
    """The first `count` events about this collection stored from `start_seq` on, in stream order."""
    sub = await js.pull_subscribe(
        "hub.access.collection.>",
        stream=STREAM_NAME,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq),
    )
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    try:
        while len(found) < count and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
                for message in await sub.fetch(100, timeout=0.5):
                    await message.ack()
                    envelope = EventEnvelope.model_validate_json(message.data)
                    if envelope.ids.get("collection_id") == collection_id:
                        found.append(envelope.model_dump(mode="json"))
    finally:
        await sub.unsubscribe()
    return found


def _visibility(collection_id: str, is_public: bool, entity_version: int | None) -> EventEnvelope:
    """A made_public/made_private event for the collection at this entity version."""
    made = event(
        "access.collection.made_public" if is_public else "access.collection.made_private",
        VisibilityChanged(is_public=is_public),
        actor=1,
        collection_id=collection_id,
    )
    return made if entity_version is None else made.at_entity_version(entity_version)


async def test_relay_publishes_a_documents_events_in_entity_version_order(
    replicated: EmbeddedStack, mongo_db: AsyncDatabase[Document], js: JetStreamContext
) -> None:
    """Events stamped in the opposite order to their writes still reach the stream in version order."""
    collection_id = f"relay-{uuid.uuid4().hex}"
    # Built (and stamped) newest first, as two racing writers may: the clock says 3, 2, 1.
    third = _visibility(collection_id, True, 3)
    second = _visibility(collection_id, False, 2)
    first = _visibility(collection_id, True, 1)
    await mongo_db["pending"].insert_one({"_id": collection_id, **new_document_outbox(third, second, first)})
    start_seq = (await js.stream_info(STREAM_NAME)).state.last_seq + 1  # a running stack declared it

    assert await OutboxRelay([mongo_db["pending"]], js).drain() == 3

    published = await _stream_events(js, start_seq, collection_id, 3)
    assert [e["entity_version"] for e in published] == [1, 2, 3]
    assert [e["id"] for e in published] == [first.id, second.id, third.id]
    assert (await mongo_db["pending"].find_one({"_id": collection_id}) or {})["outbox"] == {}


async def test_catalog_ignores_an_older_visibility_event_after_a_newer_one(
    replicated: EmbeddedStack, mongo_db: AsyncDatabase[Document], js: JetStreamContext
) -> None:
    """A reordered or redelivered older event leaves catalog's flag at the newer state; a newer one wins."""
    repository = CatalogRepository(mongo_db)
    await repository.ensure_indexes()
    target, marker = f"target-{uuid.uuid4().hex}", f"marker-{uuid.uuid4().hex}"
    for collection_id in (target, marker):
        created = event("access.collection.made_private", VisibilityChanged(is_public=False), actor=1)
        await repository.insert_collection({"_id": collection_id, "is_public": False}, created)
    durable = f"convergence_{uuid.uuid4().hex[:8]}"
    # Created at the stream's end, so the consumer sees this test's events, not the session's.
    await js.add_consumer(
        STREAM_NAME,
        ConsumerConfig(
            name=durable,
            durable_name=durable,
            filter_subject="hub.access.collection.>",
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    consumer = asyncio.create_task(consume_visibility(js, repository, durable))

    async def publish(envelope: EventEnvelope) -> None:
        await js.publish(
            envelope.subject, envelope.model_dump_json().encode(), headers={"Nats-Msg-Id": envelope.id}
        )

    async def state(collection_id: str) -> tuple[Any, Any]:
        doc = await mongo_db["collections"].find_one({"_id": collection_id}) or {}
        return doc.get("is_public"), doc.get("visibility_version")

    marks = 0

    async def settle() -> None:
        """Wait until the consumer has handled everything published so far (it handles in stream order)."""
        nonlocal marks
        marks += 1
        await publish(_visibility(marker, marks % 2 == 1, marks))

        async def marked() -> bool:
            return await state(marker) == (marks % 2 == 1, marks)

        assert await _poll(marked, within=10)

    try:
        newer = _visibility(target, True, 2)  # version 2 of access_service's record of the collection
        await publish(newer)
        await publish(_visibility(target, False, 1))  # older, arriving after the newer one
        await publish(_visibility(target, False, None))  # from before versions: older than any versioned
        await settle()
        assert await state(target) == (True, 2)

        await publish(_visibility(target, False, 3))
        # Version 2 again after version 3, as a redelivery brings it (JetStream would drop a republish
        # under the same id, so it rides under a new one).
        await publish(newer.model_copy(update={"id": uuid.uuid4().hex}))
        await settle()
        assert await state(target) == (False, 3)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await js.delete_consumer(STREAM_NAME, durable)

"""Nothing acknowledged is missing from history, nothing appears twice: kill -9 under load, poison, outages.

Each test drives real processes through the gateway (POST /admin/users, which emits access.user.created)
and compares, by e-mail, the writes the gateway acknowledged with the records history holds; events a test
publishes itself are followed by their sequence in HUB_EVENTS, never by a count of all there is.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from collections_hub.stack import EmbeddedStack
from shared.events import EventEnvelope
from shared.principal import internal_headers
from tests.faults.conftest import FaultStack, emails, reconcile, running


@dataclass
class Progress:
    """Counts acknowledged writes; once `kill_at` are done, later writes wait until `resumed` is set.

    So the fault always lands mid-writes, however fast the writes or slow the kill: the writes in flight
    meet it, and the rest come after it.
    """

    kill_at: int
    done: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: asyncio.Event = field(default_factory=asyncio.Event)

    def update(self, done: int) -> None:
        """Called after each acknowledged write with the count so far."""
        self.done = done
        if done >= self.kill_at:
            self.reached.set()

    async def hold(self) -> None:
        """Awaited before each write: past `kill_at`, wait for the fault to be in place."""
        if self.reached.is_set():
            await self.resumed.wait()


@pytest.mark.timeout(240)
async def test_kill_nats_mid_writes_loses_and_duplicates_nothing(faults: FaultStack) -> None:
    """kill -9 nats-server a third into 1,000 writes, restart it: each acknowledged write recorded once."""
    total = 1000
    progress = Progress(kill_at=total // 3)
    writing = asyncio.create_task(
        faults.write_users(emails(total, "nk"), progress=progress.update, hold=progress.hold)
    )
    await progress.reached.wait()
    await faults.kill_nats()
    progress.resumed.set()
    await asyncio.sleep(1.0)  # how long NATS stays down while writes go on, not a wait for anything
    await faults.restart_nats()
    writes = await writing

    records = await faults.wait_for_users(set(writes.acknowledged), within=90)

    result = reconcile(writes, records)
    assert (result.lost, result.duplicated, result.unexpected) == (set(), set(), set())
    assert len(writes.acknowledged) + len(writes.failed) == total
    assert len(writes.acknowledged) >= total * 0.9, f"{len(writes.failed)} writes failed"


@pytest.mark.timeout(180)
async def test_kill_history_mid_stream_resumes_without_gap_or_duplicate(faults: FaultStack) -> None:
    """kill -9 history_service while events flow, restart it: it resumes, no gap, no duplicate."""
    total = 400
    progress = Progress(kill_at=total // 4)
    writing = asyncio.create_task(
        faults.write_users(emails(total, "hk"), progress=progress.update, hold=progress.hold)
    )
    await progress.reached.wait()
    await faults.kill_service("history_service")
    progress.resumed.set()
    await asyncio.sleep(0.5)  # how long history stays down while writes go on, not a wait for anything
    await faults.restart_service("history_service")
    writes = await writing

    records = await faults.wait_for_users(set(writes.acknowledged), within=60)

    result = reconcile(writes, records)
    assert (result.lost, result.duplicated, result.unexpected) == (set(), set(), set())
    assert writes.failed == set()
    assert len({record["seq"] for record in records}) == len(records)


@pytest.mark.timeout(180)
async def test_kill_access_before_its_relay_publishes_then_event_is_published_after_restart(
    faults: FaultStack,
) -> None:
    """Writes acknowledged while NATS is down wait in the outbox; kill -9 of access_service loses none."""
    await faults.kill_nats()
    writes = await faults.write_users(emails(20, "ak"), concurrency=4)
    assert len(writes.acknowledged) == 20
    pending = await faults.service_db("access")["users"].count_documents(
        {"email": {"$in": list(writes.acknowledged)}, "outbox_count": {"$gt": 0}}
    )
    assert pending == 20  # written and acknowledged, not yet published
    await faults.kill_service("access_service")
    await faults.restart_nats()
    await faults.restart_service("access_service")

    records = await faults.wait_for_users(set(writes.acknowledged), within=60)

    result = reconcile(writes, records)
    assert (result.lost, result.duplicated, result.unexpected) == (set(), set(), set())


@pytest.mark.timeout(180)
async def test_kill_catalog_before_its_relay_publishes_then_history_shows_the_collections(
    faults: FaultStack,
) -> None:
    """Collections created while NATS is down survive kill -9 of catalog_service and show in their history."""
    await faults.kill_nats()
    created: dict[str, str] = {}
    for n in range(10):
        response = await faults.hub.call("POST", "/api/v2/collections", json={"title": f"fault {n}"})
        assert response.status == 200, await response.text()
        collection = (await response.json())["collection"]
        created[collection["id"]] = collection["title"]
    pending = await faults.service_db("catalog")["collections"].count_documents(
        {"_id": {"$in": list(created)}, "outbox_count": {"$gt": 0}}
    )
    assert pending == len(created)  # acknowledged, not yet published
    await faults.kill_service("catalog_service")
    await faults.restart_nats()
    await faults.restart_service("catalog_service")

    deadline = time.monotonic() + 60
    while True:
        records = await faults.records_of("catalog.collection.created")
        recorded = Counter(record["collection_id"] for record in records)
        if set(created) <= set(recorded) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)

    assert set(created) - set(recorded) == set()  # lost
    assert {cid for cid, count in recorded.items() if count > 1} == set()  # duplicated
    assert set(recorded) - set(created) == set()  # unexpected
    for collection_id, title in created.items():
        response = await faults.hub.call("GET", f"/api/v2/collections/{collection_id}/history/0")
        results = (await response.json())["history"]["results"]
        assert [(r["event_type"], r["event_targets"][-1]["target"]["title"]) for r in results] == [
            ("COLLECTION_CREATED", title)
        ]


@pytest.mark.timeout(120)
async def test_malformed_messages_are_dead_lettered_and_the_consumer_keeps_going(faults: FaultStack) -> None:
    """Raw garbage and an envelope with bad data are dead-lettered at once; a later write is recorded."""
    not_json = await faults.publish("hub.access.user.created", b"not json", uuid.uuid4().hex)
    bad = EventEnvelope(type="access.user.created", ids={"user_id": 999_999}, data={"email": 5})
    invalid_data = await faults.publish(bad.subject, bad.model_dump_json().encode(), bad.id)
    writes = await faults.write_users(emails(3, "mm"))

    records = await faults.wait_for_users(set(writes.acknowledged), within=30)
    letters = await faults.wait_for_dead_letters({not_json, invalid_data}, within=30)

    result = reconcile(writes, records)
    assert (result.lost, result.duplicated, result.unexpected) == (set(), set(), set())
    assert letters == {not_json: ["not_json"], invalid_data: ["invalid_data"]}
    assert await faults.history_db["events"].count_documents({"ids.user_id": 999_999}) == 0


@pytest.mark.timeout(180)
async def test_mongo_outage_past_max_deliver_is_dead_lettered_then_replayed(
    stack_factory: Callable[[dict[str, str]], EmbeddedStack],
) -> None:
    """Events failing max_deliver times while MongoDB is down are dead-lettered once; replay records them."""
    async with running(stack_factory, HUB_CONSUMER_MAX_DELIVER="3") as faults:
        await faults.kill_mongo()
        parked = [
            EventEnvelope(
                type="access.user.created",
                actor=1,
                ids={"user_id": 500_000 + n},
                data={"email": email, "role": "user"},
            )
            for n, email in enumerate(emails(5, "mo"))
        ]
        at = [await faults.publish(e.subject, e.model_dump_json().encode(), e.id) for e in parked]
        once = {sequence: ["max_deliver"] for sequence in at}

        assert await faults.wait_for_dead_letters(set(at), within=90) == once
        await faults.restart_mongo()
        await asyncio.to_thread(faults.stack.wait_ready, "history_service")
        # The outage may also have caught the stack's own first events (access publishes its bootstrap
        # admin a moment after the stack is ready): once history is idle no letter is still to come, so
        # the replay must take exactly the letters held now, ours among them, still once each.
        await faults.wait_until_history_idle()
        held = await faults.dead_letters()
        assert {sequence: held.get(sequence) for sequence in at} == once

        async with faults.hub.http.post(
            f"{faults.stack.service_urls['history_service']}/internal/history/dead-letters/replay",
            headers=internal_headers(faults.stack.internal_secret, None, None),
        ) as response:
            assert response.status == 200
            replayed = sum(len(reasons) for reasons in held.values())
            assert json.loads(await response.read()) == {"replayed": replayed, "kept": 0}

        assert await faults.dead_letters() == {}
        wanted = {event.data["email"] for event in parked}
        records = [record for record in await faults.user_records() if record["data"]["email"] in wanted]
        assert sorted(record["_id"] for record in records) == sorted(event.id for event in parked)

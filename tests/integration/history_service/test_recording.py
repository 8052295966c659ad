"""How the projection records a batch: one MongoDB command at steady state, each event once, in the order
the events happened."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from history_service.api.keys import HISTORY_KEY
from history_service.repository import TIE_SLOTS, order_key
from history_service.service import Incoming
from shared.clock import now
from shared.event_types import validate_event
from shared.events import EventEnvelope
from tests.integration.history_service.conftest import OWNER, HistoryClient, Peers, as_caller, history_db


def incoming(event_type: str, collection_id: str, data: dict[str, object], **fields: object) -> Incoming:
    """A validated event of the collection, as the consumer hands it to the projection."""
    stream_seq = int(str(fields.pop("stream_seq", 0)))
    envelope = EventEnvelope(
        type=event_type,
        actor=42,
        ids={"collection_id": collection_id, "project_id": "p1"},
        data=data,
        **fields,
    )
    return Incoming(envelope, validate_event(envelope), stream_seq)


def members_added(collection_id: str, item: str, **fields: object) -> Incoming:
    """A members-added event of the collection."""
    return incoming(
        "catalog.collection.members_added", collection_id, {"kind": "node", "ids": [item]}, **fields
    )


async def api_commands(client: HistoryClient) -> float:
    """MongoDB commands sent through the app's request client (the one its HistoryService uses)."""
    text = await (await client.get("/metrics")).text()
    pattern = re.compile(r'^mongo_commands_total\{[^}]*client="api"[^}]*\} (\S+)$', re.M)
    return sum(float(value) for value in pattern.findall(text))


async def test_a_batch_on_a_known_collection_is_one_command_and_a_redelivery_records_nothing(
    history: HistoryClient,
) -> None:
    """50 events of a collection already met: one `insert_many`; the same batch again: none recorded."""
    service = history.app[HISTORY_KEY]
    cid = uuid.uuid4().hex[:20]
    created = incoming("catalog.collection.created", cid, {"name": "Known", "owner_id": 42})
    assert await service.record([created]) == 1
    batch = [members_added(cid, f"node-{n}", stream_seq=1000 + n) for n in range(50)]

    before = await api_commands(history)
    assert await service.record(batch) == 50
    first = await api_commands(history) - before
    assert await service.record(batch[:10]) == 0
    again = await api_commands(history) - before - first

    assert (first, again) == (1, 2)  # a redelivery costs the insert and a look-up of the duplicates
    assert await history_db(history)["events"].count_documents({"collection_id": cid}) == 52  # head too


async def test_events_of_one_millisecond_in_one_slot_are_both_recorded(
    history: HistoryClient, peers: Peers
) -> None:
    """Two events of one moment stored 1,024 positions apart share a key: the later moves up one slot."""
    service = history.app[HISTORY_KEY]
    cid = uuid.uuid4().hex[:20]
    peers.add_collection(cid, owner_id=OWNER.user_id)
    moment = now()
    first = members_added(cid, "a", occurred_at=moment, stream_seq=7)
    second = members_added(cid, "b", occurred_at=moment, stream_seq=7 + TIE_SLOTS)
    assert order_key(moment, 7, first.envelope.id) == order_key(moment, 7 + TIE_SLOTS, second.envelope.id)

    assert await service.record([first]) == 1
    assert await service.record([second, first]) == 1

    wanted = [first.envelope.id, second.envelope.id]
    records = await history_db(history)["events"].find({"_id": {"$in": wanted}}).to_list()
    seqs = {record["_id"]: record["seq"] for record in records}
    assert seqs[second.envelope.id] == seqs[first.envelope.id] + 1
    response = await history.get(f"/v1/collections/{cid}/history", headers=as_caller(OWNER))
    assert [entry["id"] for entry in (await response.json())["data"]] == [
        seqs[second.envelope.id],
        seqs[first.envelope.id],
    ]


async def test_order_follows_occurrence_whatever_the_recording_order(
    history: HistoryClient, peers: Peers
) -> None:
    """Events recorded newest first come back newest first by when they happened, not by recording."""
    service = history.app[HISTORY_KEY]
    cid = uuid.uuid4().hex[:20]
    peers.add_collection(cid, owner_id=OWNER.user_id)
    start = now()
    events = [members_added(cid, f"n{n}", occurred_at=start + timedelta(milliseconds=n)) for n in range(6)]
    for event in reversed(events):
        assert await service.record([event]) == 1

    response = await history.get(f"/v1/collections/{cid}/history", headers=as_caller(OWNER))
    data = (await response.json())["data"]
    assert [entry["event_targets"][0]["target"]["id"] for entry in data] == [
        f"n{n}" for n in range(5, -1, -1)
    ]

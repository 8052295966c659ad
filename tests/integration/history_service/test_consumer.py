"""The consumer on the real stream: once per event, poison dead-lettered, replicas sharing one durable."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from nats.js import JetStreamContext

from history_service.consumer import (
    DEAD_LETTER_STREAM,
    REASON_HEADER,
    SEQUENCE_HEADER,
    SUBJECT_HEADER,
    ensure_consumer,
)
from history_service.settings import HistorySettings
from shared.events import STREAM_NAME, EventEnvelope
from shared.principal import internal_headers
from tests.integration.conftest import INTERNAL_SECRET
from tests.integration.history_service.conftest import (
    HistoryClient,
    Publish,
    dead_letters,
    envelope_json,
    history_db,
    wait_recorded,
)


def user_created(user_id: int) -> dict[str, object]:
    """Fields of a valid `access.user.created` event."""
    return {"ids": {"user_id": user_id}, "data": {"email": f"u{user_id}@example.com", "role": "user"}}


async def test_event_published_twice_is_recorded_once(history: HistoryClient, publish: Publish) -> None:
    """The same event stored twice in the stream (republished past the dedupe window) gets one record."""
    envelope = await publish("access.user.created", actor=1, **user_created(9001))
    await publish(
        "access.user.created",
        actor=1,
        id=envelope.id,
        occurred_at=envelope.occurred_at,
        msg_id=f"{envelope.id}-again",
        **user_created(9001),
    )
    marker = await publish("access.user.created", actor=1, **user_created(9002))
    db = history_db(history)
    await wait_recorded(db, [envelope.id, marker.id])
    await asyncio.sleep(0.3)

    assert await db["events"].count_documents({"_id": envelope.id}) == 1
    assert await db["events"].count_documents({"ids.user_id": 9001}) == 1


async def test_poison_is_dead_lettered_at_once_and_the_consumer_keeps_going(
    history: HistoryClient, history_settings: HistorySettings, js: JetStreamContext, publish: Publish
) -> None:
    """Not JSON, a broken envelope, a wrong subject, an unknown type, bad data: each dead-lettered."""
    poison = {
        "not_json": ("hub.access.user.created", b"not json"),
        "invalid_envelope": ("hub.access.user.created", envelope_json(data={"email": "x@example.com"})),
        "subject_mismatch": (
            "hub.access.user.created",
            envelope_json(type="access.api_key.created", ids={"key_id": "k"}, data={}),
        ),
        "unknown_type": ("hub.access.user.exploded", envelope_json(type="access.user.exploded", data={})),
        "invalid_data": (
            "hub.access.user.created",
            envelope_json(type="access.user.created", ids={"user_id": 5}, data={"email": 5, "role": "user"}),
        ),
    }
    sequences = {}
    for reason, (subject, payload) in poison.items():
        ack = await js.publish(subject, payload, headers={"Nats-Msg-Id": uuid.uuid4().hex})
        sequences[reason] = ack.seq
    good = await publish("access.user.created", actor=1, **user_created(9101))

    await wait_recorded(history_db(history), [good.id])
    letters = await dead_letters(js, history_settings.dead_letter_subject, expected=len(poison))

    by_reason = {letter.headers[REASON_HEADER]: letter for letter in letters if letter.headers}
    assert set(by_reason) == set(poison)
    for reason, (subject, payload) in poison.items():
        letter = by_reason[reason]
        assert letter.data == payload
        assert letter.headers is not None
        assert letter.headers[SUBJECT_HEADER] == subject
        assert letter.headers[SEQUENCE_HEADER] == str(sequences[reason])
    assert await history_db(history)["events"].count_documents({}) == 1


async def test_replicas_share_the_durable_and_record_each_event_once(
    history_app: Callable[[], AbstractAsyncContextManager[HistoryClient]], publish: Publish
) -> None:
    """Two replicas on one durable consumer record 300 events exactly once, with distinct integer ids."""
    async with history_app() as first, history_app() as second:
        events = await asyncio.gather(
            *(publish("access.user.created", actor=1, **user_created(20_000 + n)) for n in range(300))
        )
        records = await wait_recorded(history_db(first), [event.id for event in events], within=30)
        await asyncio.sleep(0.5)  # a duplicate, if any, would land now
        db = history_db(second)
        assert await db["events"].count_documents({}) == 300
    assert len({record["seq"] for record in records}) == 300
    assert {record["ids"]["user_id"] for record in records} == {20_000 + n for n in range(300)}


async def test_event_a_dead_replica_held_until_max_deliver_is_dead_lettered(
    history_app: Callable[[], AbstractAsyncContextManager[HistoryClient]],
    history_settings: HistorySettings,
    js: JetStreamContext,
    publish: Publish,
) -> None:
    """An event delivered max_deliver times, never acknowledged, is dead-lettered from the advisory."""
    await ensure_consumer(js, history_settings)
    stuck = await publish("access.user.created", actor=1, **user_created(9201))
    # Act as replicas that die holding the event: fetch it max_deliver times, never acknowledge it.
    holder = await js.pull_subscribe_bind(durable=history_settings.consumer_durable, stream=STREAM_NAME)
    for _ in range(history_settings.consumer_max_deliver):
        [message] = await holder.fetch(1, timeout=history_settings.consumer_backoff_seconds[0] + 3)
        assert json.loads(message.data)["id"] == stuck.id
    await holder.unsubscribe()

    async with history_app() as history:
        after = await publish("access.user.created", actor=1, **user_created(9202))
        letters = await dead_letters(js, history_settings.dead_letter_subject, expected=1, within=15)
        await wait_recorded(history_db(history), [after.id])
        assert await history_db(history)["events"].count_documents({"_id": stuck.id}) == 0

    [letter] = letters
    assert letter.headers is not None
    assert letter.headers[REASON_HEADER] == "max_deliver"
    assert json.loads(letter.data)["id"] == stuck.id


async def test_replay_records_the_dead_letters_that_validate_and_keeps_poison(
    history: HistoryClient, history_settings: HistorySettings, js: JetStreamContext
) -> None:
    """After an outage, replaying the dead letters records the valid ones, removes them and keeps the rest."""
    parked = EventEnvelope(
        type="access.user.created",
        actor=1,
        ids={"user_id": 9301},
        data={"email": "p@example.com", "role": "user"},
    )
    for payload in (parked.model_dump_json().encode(), b"still not json"):
        await js.publish(
            history_settings.dead_letter_subject,
            payload,
            headers={SUBJECT_HEADER: parked.subject, SEQUENCE_HEADER: "1", REASON_HEADER: "max_deliver"},
        )

    response = await history.post(
        "/internal/history/dead-letters/replay", headers=internal_headers(INTERNAL_SECRET, None, None)
    )

    assert response.status == 200
    assert await response.json() == {"replayed": 1, "kept": 1}
    await wait_recorded(history_db(history), [parked.id], within=1)
    [left] = await dead_letters(js, history_settings.dead_letter_subject, expected=1)
    assert left.data == b"still not json"
    info = await js.stream_info(DEAD_LETTER_STREAM)
    assert info.config.subjects == ["hub_dlq.>"]

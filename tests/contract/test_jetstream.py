"""The JetStream behaviours the outbox relay and the event consumers rely on, against a real nats-server.

Each test declares its own file-backed stream on `ct.<uuid>.>` and deletes it afterwards, so tests never
see each other's messages.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StorageType, StreamConfig

Connect = Callable[[], Awaitable[NatsClient]]


@dataclass(frozen=True)
class Stream:
    """A stream of the test's own: its name and the subject prefix it captures."""

    name: str
    prefix: str

    def subject(self, suffix: str = "event") -> str:
        """A subject inside the stream."""
        return f"{self.prefix}.{suffix}"

    @property
    def wildcard(self) -> str:
        """Every subject of the stream."""
        return f"{self.prefix}.>"


@pytest.fixture
async def connect(nats_url: str) -> AsyncIterator[Connect]:
    """Open NATS connections on demand (one per simulated service instance); all closed afterwards."""
    opened: list[NatsClient] = []

    async def open_connection() -> NatsClient:
        nc = await nats.connect(nats_url, connect_timeout=5)
        opened.append(nc)
        return nc

    try:
        yield open_connection
    finally:
        for nc in opened:
            await nc.close()


@pytest.fixture
async def stream(connect: Connect) -> AsyncIterator[Stream]:
    """A file-backed stream with a 10-minute duplicate window, as the hub's stream is; deleted afterwards."""
    token = uuid.uuid4().hex
    created = Stream(name=f"CT_{token}", prefix=f"ct.{token}")
    js = (await connect()).jetstream()
    await js.add_stream(
        StreamConfig(
            name=created.name,
            subjects=[created.wildcard],
            storage=StorageType.FILE,
            duplicate_window=600,
        )
    )
    try:
        yield created
    finally:
        await js.delete_stream(created.name)


async def _js(connect: Connect) -> JetStreamContext:
    """A JetStream context on a connection of its own."""
    return (await connect()).jetstream()


async def _fetch_or_none(sub: JetStreamContext.PullSubscription, within: float) -> Msg | None:
    """The next message of a pull subscription, or None when none arrives `within` seconds."""
    try:
        [msg] = await sub.fetch(1, timeout=within)
    except TimeoutError:  # nats.errors.TimeoutError, or asyncio.TimeoutError from fetch
        return None
    return msg


async def test_publish_with_same_msg_id_is_stored_once(connect: Connect, stream: Stream) -> None:
    """A second publish with the same Nats-Msg-Id is acked as a duplicate and not stored again."""
    js = await _js(connect)

    first = await js.publish(stream.subject(), b"first", headers={"Nats-Msg-Id": "event-1"})
    again = await js.publish(stream.subject(), b"again", headers={"Nats-Msg-Id": "event-1"})
    other = await js.publish(stream.subject(), b"other", headers={"Nats-Msg-Id": "event-2"})

    assert not first.duplicate
    assert again.duplicate is True
    assert again.seq == first.seq
    assert not other.duplicate
    assert other.seq == first.seq + 1
    info = await js.stream_info(stream.name)
    assert info.state.messages == 2
    stored = await js.get_msg(stream.name, first.seq)
    assert stored.data == b"first"


async def test_durable_pull_consumer_shared_by_two_subscriptions(connect: Connect, stream: Stream) -> None:
    """Two subscriptions on one durable pull consumer, on two connections, each get a share, none twice."""
    js_a, js_b = await _js(connect), await _js(connect)
    sub_a = await js_a.pull_subscribe(stream.wildcard, durable="workers", stream=stream.name)
    sub_b = await js_b.pull_subscribe(stream.wildcard, durable="workers", stream=stream.name)
    published = {f"m{i}".encode() for i in range(40)}
    for payload in sorted(published):
        await js_a.publish(stream.subject(), payload)

    async def work(sub: JetStreamContext.PullSubscription) -> list[bytes]:
        received: list[bytes] = []
        while True:
            try:
                batch = await sub.fetch(4, timeout=0.5)
            except TimeoutError:  # nats.errors.TimeoutError, or asyncio.TimeoutError from fetch
                return received
            for msg in batch:
                received.append(msg.data)
                await msg.ack_sync()

    got_a, got_b = await asyncio.gather(work(sub_a), work(sub_b))

    assert got_a, "the first subscription got no share"
    assert got_b, "the second subscription got no share"
    assert len(got_a) + len(got_b) == len(published), "a message was delivered twice"
    assert set(got_a) | set(got_b) == published
    info = await sub_a.consumer_info()
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_unacked_message_is_redelivered_after_ack_wait(connect: Connect, stream: Stream) -> None:
    """A message not acked comes back once ack_wait has passed (not before), and not again once acked."""
    js = await _js(connect)
    sub = await js.pull_subscribe(
        stream.wildcard, durable="slow", stream=stream.name, config=ConsumerConfig(ack_wait=0.5)
    )
    ack = await js.publish(stream.subject(), b"payload")

    first = await _fetch_or_none(sub, within=1)
    early = await _fetch_or_none(sub, within=0.2)
    second = await _fetch_or_none(sub, within=2)
    assert second is not None
    await second.ack_sync()
    after_ack = await _fetch_or_none(sub, within=1.2)

    assert first is not None
    assert (first.metadata.sequence.stream, first.metadata.num_delivered) == (ack.seq, 1)
    assert early is None
    assert (second.metadata.sequence.stream, second.metadata.num_delivered) == (ack.seq, 2)
    assert second.data == b"payload"
    assert after_ack is None


async def test_max_deliver_bounds_redeliveries(connect: Connect, stream: Stream) -> None:
    """A message never acked is delivered at most max_deliver times, then left alone."""
    js = await _js(connect)
    sub = await js.pull_subscribe(
        stream.wildcard,
        durable="poison",
        stream=stream.name,
        config=ConsumerConfig(ack_wait=0.3, max_deliver=3),
    )
    ack = await js.publish(stream.subject(), b"poison")

    deliveries: list[tuple[int, int]] = []
    while (msg := await _fetch_or_none(sub, within=1.2)) is not None:
        deliveries.append((msg.metadata.sequence.stream, msg.metadata.num_delivered))

    assert deliveries == [(ack.seq, 1), (ack.seq, 2), (ack.seq, 3)]

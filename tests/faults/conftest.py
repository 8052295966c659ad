"""Fault tests: a whole stack of real processes per test, owning its nats-server and nx-27017.

The stack starts its own infrastructure (no MONGODB_URL/NATS_URL), so a test can kill -9 any process:
`infrastructure[0]` is nats-server, `[1]` nx-27017, `services[name]` a service. Assertions are on sets:
the writes the gateway acknowledged against the records history holds, and the dead letters of the
events a test published, by their place in HUB_EVENTS. A stack publishes events of its own (access's
bootstrap admin and its key, a moment after it is ready), so no assertion counts everything there is.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from collections_hub.processes import free_port
from collections_hub.servers import start_mongo, start_nats
from collections_hub.stack import EmbeddedStack, StackConfig
from history_service.consumer import DEAD_LETTER_STREAM, REASON_HEADER, SEQUENCE_HEADER
from shared.events import STREAM_NAME
from shared.mongo import Document
from tests.support import UNLIMITED_RATES, Hub, unique_email

BOOTSTRAP_ADMIN = "admin@localhost"
DEAD_LETTER_SUBJECT = "hub_dlq.history"
# Quick redelivery so a killed history replica's events come back in seconds (production: 10 s).
FAST_CONSUMER = {
    "HUB_CONSUMER_BACKOFF_SECONDS": "[3]",
    "HUB_CONSUMER_RETRY_BASE_SECONDS": "0.2",
    "HUB_CONSUMER_RETRY_CAP_SECONDS": "2",
}


def _port(url: str) -> int:
    """The port of a `scheme://host:port` URL."""
    return int(url.rsplit(":", 1)[1])


@dataclass
class Writes:
    """Outcome of writes through the gateway: acknowledged ones by e-mail (with their ids), and the rest."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


@dataclass
class FaultStack:
    """A running stack, a client of its gateway and direct reads of the history database."""

    stack: EmbeddedStack
    hub: Hub
    mongo: AsyncMongoClient[Document]

    @property
    def history_db(self) -> AsyncDatabase[Document]:
        """history_service's own database."""
        return self.mongo[f"{self.stack.config.database_prefix}_history"]

    def service_db(self, service: str) -> AsyncDatabase[Document]:
        """A service's own database (`access`, `catalog`, `history`)."""
        return self.mongo[f"{self.stack.config.database_prefix}_{service}"]

    async def kill_nats(self) -> None:
        """kill -9 nats-server."""
        await asyncio.to_thread(self.stack.infrastructure[0].kill)

    async def restart_nats(self) -> None:
        """Start nats-server again on its port and JetStream store."""
        proc, _ = await asyncio.to_thread(
            start_nats, self.stack.config.data_dir, _port(self.stack.nats_url), sync_interval="always"
        )
        self.stack.infrastructure[0] = proc

    async def kill_mongo(self) -> None:
        """kill -9 nx-27017."""
        await asyncio.to_thread(self.stack.infrastructure[1].kill)

    async def restart_mongo(self) -> None:
        """Start nx-27017 again on its port and data directory."""
        proc, _ = await asyncio.to_thread(
            start_mongo, self.stack.config.data_dir, _port(self.stack.mongodb_url)
        )
        self.stack.infrastructure[1] = proc

    async def kill_service(self, name: str) -> None:
        """kill -9 one service process."""
        await asyncio.to_thread(self.stack.services[name].kill)

    async def restart_service(self, name: str) -> None:
        """Start a service again on its port and wait until it is ready."""
        self.stack.start_service(name)
        await asyncio.to_thread(self.stack.wait_ready, name)

    async def keep_killing(self, name: str, times: int, stop: asyncio.Event) -> None:
        """kill -9 a service `times` times at random moments, restarting it each time; then set `stop`."""
        for _ in range(times):
            await asyncio.sleep(random.uniform(0.3, 0.9))
            await self.kill_service(name)
            await self.restart_service(name)
        await asyncio.sleep(0.5)
        stop.set()

    async def write_users(
        self,
        emails: list[str],
        *,
        concurrency: int = 16,
        progress: Callable[[int], None] | None = None,
        hold: Callable[[], Awaitable[None]] | None = None,
    ) -> Writes:
        """Create a user per e-mail through the gateway; 201 answers are acknowledged writes.

        `progress` hears the acknowledged count after each; `hold` is awaited before each write starts.
        """
        writes = Writes()
        gate = asyncio.Semaphore(concurrency)

        async def create(email: str) -> None:
            async with gate:
                if hold is not None:
                    await hold()
                try:
                    response = await self.hub.call(
                        "POST", "/admin/users", json={"email": email, "role": "user"}
                    )
                    body: Any = await response.json() if response.status == 201 else None
                except (ClientError, TimeoutError):
                    body = None
                if body is None:
                    writes.failed.add(email)
                else:
                    writes.acknowledged[email] = int(body["id"])
                    if progress is not None:
                        progress(len(writes.acknowledged))

        await asyncio.gather(*(create(email) for email in emails))
        return writes

    async def user_records(self) -> list[Document]:
        """Every `access.user.created` record history holds."""
        return await self.records_of("access.user.created")

    async def records_of(self, event_type: str) -> list[Document]:
        """Every record of one event type history holds."""
        return await self.history_db["events"].find({"type": event_type}).to_list()

    async def wait_for_users(self, emails: set[str], within: float = 60.0) -> list[Document]:
        """The user records once every e-mail in `emails` has one (or the deadline passes)."""
        deadline = time.monotonic() + within
        while True:
            try:
                records = await self.user_records()
            except Exception:  # MongoDB may still be coming back after a fault
                records = []
            if emails <= {record["data"]["email"] for record in records} or time.monotonic() > deadline:
                return records
            await asyncio.sleep(0.25)

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> int:
        """Publish to JetStream as a producer would; the message's sequence in HUB_EVENTS."""
        nc = await nats.connect(self.stack.nats_url)
        try:
            ack = await nc.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        finally:
            await nc.close()
        return ack.seq

    async def dead_letters(self) -> dict[int, list[str]]:
        """history's dead letters held now: each one's reason, by its event's sequence in HUB_EVENTS."""
        nc = await nats.connect(self.stack.nats_url)
        try:
            return await _dead_letters(nc.jetstream())
        finally:
            await nc.close()

    async def wait_for_dead_letters(self, sequences: set[int], within: float) -> dict[int, list[str]]:
        """The dead letters of the events at these HUB_EVENTS sequences, once each has one (or the
        deadline passes); letters of any other event are left out."""
        nc = await nats.connect(self.stack.nats_url)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + within
            while True:
                letters = await _dead_letters(js)
                if sequences <= letters.keys() or time.monotonic() > deadline:
                    return {sequence: letters.get(sequence, []) for sequence in sequences}
                await asyncio.sleep(0.25)
        finally:
            await nc.close()

    async def wait_until_history_idle(self, within: float = 60.0) -> None:
        """Wait until history's durable has delivered every event and holds none unacknowledged.

        Then no event in HUB_EVENTS is still on its way to a record or a dead letter.
        """
        durable = self.stack.service_env("history_service", 0)["HUB_CONSUMER_DURABLE"]
        nc = await nats.connect(self.stack.nats_url)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + within
            while True:
                info = await js.consumer_info(STREAM_NAME, durable)
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"history not idle after {within}s: {info.num_pending} events undelivered, "
                        f"{info.num_ack_pending} unacknowledged"
                    )
                await asyncio.sleep(0.25)
        finally:
            await nc.close()


async def _dead_letters(js: JetStreamContext) -> dict[int, list[str]]:
    """Read history's dead-letter subject message by message (a snapshot: no consumer, no waiting)."""
    state = (await js.stream_info(DEAD_LETTER_STREAM)).state
    letters: dict[int, list[str]] = {}
    for sequence in range(max(state.first_seq, 1), state.last_seq + 1):
        try:
            letter = await js.get_msg(DEAD_LETTER_STREAM, sequence)
        except nats.js.errors.NotFoundError:  # deleted by a replay
            continue
        if letter.subject != DEAD_LETTER_SUBJECT:
            continue
        headers = letter.headers or {}
        letters.setdefault(int(headers[SEQUENCE_HEADER]), []).append(headers.get(REASON_HEADER, ""))
    return letters


@dataclass(frozen=True)
class Reconciliation:
    """Acknowledged writes against history records, by e-mail."""

    lost: set[str]
    duplicated: set[str]
    unexpected: set[str]


def reconcile(writes: Writes, records: list[Document]) -> Reconciliation:
    """lost: acknowledged, no record; duplicated: more than one record; unexpected: a record nobody wrote.

    A write that got an error is not acknowledged: it may or may not have a record, and counts neither way.
    """
    seen = Counter(record["data"]["email"] for record in records)
    ids = {record["data"]["email"]: record["ids"]["user_id"] for record in records}
    allowed = set(writes.acknowledged) | writes.failed | {BOOTSTRAP_ADMIN}
    mismatched = {
        email for email, user_id in writes.acknowledged.items() if ids.get(email, user_id) != user_id
    }
    return Reconciliation(
        lost=set(writes.acknowledged) - set(seen),
        duplicated={email for email, count in seen.items() if count > 1} | mismatched,
        unexpected=set(seen) - allowed,
    )


def emails(count: int, prefix: str) -> list[str]:
    """`count` e-mail addresses no other write uses."""
    return [unique_email(f"{prefix}{n}") for n in range(count)]


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], EmbeddedStack]]:
    """Start a stack that owns its nats-server and nx-27017 (extra `HUB_*` settings given); stopped after."""
    started: list[EmbeddedStack] = []

    def start(extra_env: dict[str, str]) -> EmbeddedStack:
        config = StackConfig(
            data_dir=tmp_path / f"stack{len(started)}",
            port=free_port(),
            admin_api_key=f"faults-admin-{secrets.token_urlsafe(16)}",
            database_prefix="faults",
            extra_env={**UNLIMITED_RATES, **extra_env},
        )
        stack = EmbeddedStack(config)
        started.append(stack)
        stack.start()
        return stack

    try:
        yield start
    finally:
        for stack in started:
            stack.stop()


@asynccontextmanager
async def running(
    start: Callable[[dict[str, str]], EmbeddedStack], **settings: str
) -> AsyncIterator[FaultStack]:
    """A fresh stack with FAST_CONSUMER and these extra `HUB_*` settings, and clients of it."""
    stack = await asyncio.to_thread(start, {**FAST_CONSUMER, **settings})
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    await mongo.admin.command("ping")
    try:
        async with ClientSession(timeout=ClientTimeout(total=30)) as http:
            yield FaultStack(stack, Hub(stack.gateway_url, http, stack.admin_api_key), mongo)
    finally:
        await mongo.close()


@pytest.fixture
async def faults(stack_factory: Callable[[dict[str, str]], EmbeddedStack]) -> AsyncIterator[FaultStack]:
    """A fresh stack with quick redelivery, and clients of it."""
    async with running(stack_factory) as fault_stack:
        yield fault_stack

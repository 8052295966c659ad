"""The transactional outbox: events ride in the changed document and a relay publishes them.

A state change and its events are one single-document update (no multi-document transaction, which the
stand-in server cannot isolate). Pending events sit in a map keyed by event id (`outbox.<id>`) with a
counter beside it; the relay publishes each with `Nats-Msg-Id` = event id, waits for JetStream's ack and
only then unsets it, so a crash anywhere leads to a republish that JetStream deduplicates, never a loss.

One document's events are published one after another in entity-version order, each only after the
previous one's ack, and an event leaves the outbox only once acknowledged: so even with several relays
(replicas) draining the same document, the stream holds a document's events in the order its writes
happened (a republish of an earlier one is a duplicate JetStream drops, keeping its first position).

Tracing: an event written while a traced request is served keeps that request's W3C context beside it in
the outbox (`trace_context`, about 80 bytes, in the same update: no extra command), and the relay publishes
it under a PRODUCER span in that trace with the context in the message headers, so the trace runs on to
the consumers. Without tracing nothing is stored. The relay's own polling (the `find` and the removal) is
left out of traces: it serves many requests' events at once, and would otherwise be a trace every second.

Publishing from the write (issue 12): a repository that has stored events calls `written(*events)`; the
request's middleware (`shared/web.py`) hands them to the relay, which publishes them at once from memory,
with no read. The polling pass (every `poll_interval`) is then the crash-recovery path and the clean-up:
it removes what was published from the outboxes, in one bulk write per collection for all the requests
of the interval, and publishes only what no process has published (a write whose process died, an event
whose publish failed). An event in flight in this process is left to it; a republish by mistake would be
a duplicate JetStream drops (same `Nats-Msg-Id`) and consumers ignore (event id unique, versions).

What it reports (`shared/metrics.py`): events published, failed publishes, and after each pass the events
still pending and the age of the oldest; a pass that stops at a failure has not looked past its batch of
200 documents, so the count is then a lower bound (the age keeps growing from the last pass that saw it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from nats.js import JetStreamContext
from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from shared.clock import now
from shared.events import EventEnvelope
from shared.messaging import publish_span
from shared.metrics import Metrics
from shared.mongo import Document
from shared.tasks import raise_if_cancelling
from shared.tracing import current_carrier, untraced

log = logging.getLogger(__name__)

OUTBOX_FIELD = "outbox"
OUTBOX_COUNT_FIELD = "outbox_count"
# Beside an event in its outbox entry, never published in the envelope: the W3C context of its request.
TRACE_FIELD = "trace_context"


# Events the current request's writes stored, in the order they were written (None: nobody collects).
_WRITTEN: ContextVar[list[tuple[EventEnvelope, dict[str, str]]] | None] = ContextVar("written", default=None)
# Event ids remembered as published by this process until the polling pass removes them.
ACKED_LIMIT = 100_000


def written(*events: EventEnvelope) -> None:
    """Say that a write has stored these events (call it only once the write succeeded): the relay
    publishes them right after the request, from memory."""
    collected = _WRITTEN.get()
    if collected is not None:
        carrier = current_carrier()
        collected.extend((event, carrier) for event in events)


@contextlib.contextmanager
def collecting() -> Iterator[list[tuple[EventEnvelope, dict[str, str]]]]:
    """Collect what `written` is told while the block runs (one request)."""
    collected: list[tuple[EventEnvelope, dict[str, str]]] = []
    token = _WRITTEN.set(collected)
    try:
        yield collected
    finally:
        _WRITTEN.reset(token)


def _entries(events: tuple[EventEnvelope, ...]) -> dict[str, Document]:
    """The outbox entries of these events, each with the current trace context when a request is traced."""
    carrier = current_carrier()
    entries = {}
    for event in events:
        entry = event.outbox_entry()
        if carrier:
            entry[TRACE_FIELD] = carrier
        entries[event.id] = entry
    return entries


def with_events(update: dict[str, Any], *events: EventEnvelope) -> dict[str, Any]:
    """Add the events to a MongoDB update document, so they are written in the same operation."""
    merged = {op: dict(fields) for op, fields in update.items()}
    merged.setdefault("$set", {}).update(
        {f"{OUTBOX_FIELD}.{event_id}": entry for event_id, entry in _entries(events).items()}
    )
    merged.setdefault("$inc", {})[OUTBOX_COUNT_FIELD] = len(events)
    return merged


def publish_order(entry: Document) -> tuple[bool, int, str, str]:
    """Where a pending event goes among its document's: by entity version, the order the writes happened.

    `occurred_at` is the writer's clock when it built the event, which two concurrent writers may take in
    the opposite order to their writes; it only orders events without a version (written before versions
    existed, so before every versioned one).
    """
    version = entry.get("entity_version")
    return version is not None, version or 0, entry["occurred_at"], entry["id"]


def new_document_outbox(*events: EventEnvelope) -> Document:
    """Outbox fields for a document inserted together with its first events."""
    return {OUTBOX_FIELD: _entries(events), OUTBOX_COUNT_FIELD: len(events)}


async def ensure_outbox_index(collection: AsyncCollection[Document]) -> None:
    """The relay looks documents up by their pending-event count."""
    await collection.create_index(OUTBOX_COUNT_FIELD)


class OutboxRelay:
    """Publishes pending events from the watched collections to JetStream, then removes them."""

    def __init__(
        self,
        collections: list[AsyncCollection[Document]],
        js: JetStreamContext,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._collections = collections
        self._js = js
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self._metrics = metrics
        # `occurred_at` of the events the current pass could not publish, and the oldest after the last pass.
        self._left: list[str] = []
        self._oldest_left: datetime | None = None
        # Published from memory: acknowledged (until the polling pass removes them), and still in flight.
        self._acked: OrderedDict[str, None] = OrderedDict()
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, events: list[tuple[EventEnvelope, dict[str, str]]]) -> None:
        """Publish events a request has written, now, in their order (the polling pass removes them)."""
        if not events:
            return
        self._in_flight.update(event.id for event, _ in events)
        task = asyncio.create_task(self._publish_written(events), name="outbox-publish")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish_submitted(self) -> None:
        """Wait for what requests handed over to be published (at shutdown; bound it with a timeout)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _publish_written(self, events: list[tuple[EventEnvelope, dict[str, str]]]) -> None:
        try:
            for index, (event, carrier) in enumerate(events):
                try:
                    await self._publish(event, carrier or None)
                except Exception as exc:  # noqa: BLE001 - the polling pass publishes what is left
                    log.info("publish from memory failed, the polling pass retries: %s", exc)
                    if self._metrics is not None:
                        self._metrics.outbox_publish_failures.labels(self._metrics.service).inc()
                    self._in_flight.difference_update(left.id for left, _ in events[index:])
                    return
                self._in_flight.discard(event.id)
                self._acked[event.id] = None
                if len(self._acked) > ACKED_LIMIT:
                    self._acked.popitem(last=False)
                if self._metrics is not None:
                    self._metrics.outbox_published.labels(self._metrics.service).inc()
        finally:
            self._in_flight.difference_update(event.id for event, _ in events)

    async def _publish(self, event: EventEnvelope, carrier: dict[str, str] | None) -> None:
        """One event to JetStream, deduplicated by its id, under a PRODUCER span in its request's trace."""
        headers = {"Nats-Msg-Id": event.id}
        with publish_span(event.subject, event.id, carrier, headers):
            await self._js.publish(
                event.subject,
                event.model_dump_json().encode(),
                timeout=self._publish_timeout,
                headers=headers,
            )

    def notify(self) -> None:
        """Tell the relay that a write just added events, so it need not wait for the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Drain forever: on every notification and at least once per poll interval."""
        backoff = self._poll_interval
        while True:
            raise_if_cancelling()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            try:
                await self.drain()
                raise_if_cancelling()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any broker or database outage
                log.warning("outbox relay failed, will retry: %s", exc)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = self._poll_interval

    async def drain(self) -> int:
        """Publish every pending event once; return how many were published."""
        published = 0
        self._left = []
        try:
            for collection in self._collections:
                while True:
                    documents, removed = await self._publish_batch(collection)
                    published += removed
                    # A full batch that removed nothing is all in flight from memory: reading it again at
                    # once would only spin until those publishes end; the next pass takes it.
                    if documents < self._batch_size or not removed:
                        break
        except Exception:
            # A failed publish says what it left; a failed read says nothing: keep the last pass's figures.
            if self._left:
                self._record_backlog()
            raise
        self._record_backlog()
        return published

    def _record_backlog(self) -> None:
        """After a pass: how many events it left pending, and since when."""
        self._oldest_left = datetime.fromisoformat(min(self._left)) if self._left else None
        if self._metrics is not None:
            self._metrics.outbox_pending.labels(self._metrics.service).set(len(self._left))

    def oldest_pending_age(self) -> float:
        """Seconds since the oldest event the last pass left pending was written; 0 when none."""
        if self._oldest_left is None:
            return 0.0
        return max(0.0, (now() - self._oldest_left).total_seconds())

    async def _publish_batch(self, collection: AsyncCollection[Document]) -> tuple[int, int]:
        """Publish the events of one batch of documents; return (documents read, events published).

        Documents are independent, so they are published concurrently; one document's events go out in
        order, each after the previous one's ack. Whatever was acknowledged is removed from the outboxes
        even when another document's publish failed; that failure is raised afterwards (the relay backs off).
        """
        cursor = collection.find({OUTBOX_COUNT_FIELD: {"$gt": 0}}, {OUTBOX_FIELD: 1}, limit=self._batch_size)
        docs = await untraced(cursor.to_list)()
        results = await asyncio.gather(*(self._publish_document(doc) for doc in docs))
        done = [(doc_id, event_id) for published, _ in results for doc_id, event_id in published]
        if done:
            removals = [_removal(doc_id, event_id) for doc_id, event_id in done]
            await untraced(lambda: collection.bulk_write(removals, ordered=False))()
            for _, event_id in done:  # forgotten only once removed: a failed removal is retried as such
                self._acked.pop(event_id, None)
        for _, failure in results:
            if failure is not None:
                raise failure
        return len(docs), len(done)

    async def _publish_document(self, doc: Document) -> tuple[list[tuple[Any, str]], Exception | None]:
        """Publish one document's pending events in order, stopping at the first failure.

        Returns (document, event) of the acknowledged events, to remove from its outbox, and the failure.
        """
        entries = sorted((doc.get(OUTBOX_FIELD) or {}).values(), key=publish_order)
        acks: list[tuple[Any, str]] = []
        for index, entry in enumerate(entries):
            if entry["id"] in self._in_flight:
                break  # this process is publishing it from memory: the next pass removes it
            if entry["id"] in self._acked:  # published from memory already: only remove it
                acks.append((doc["_id"], entry["id"]))
                continue
            stored = entry.get(TRACE_FIELD)
            event = EventEnvelope.model_validate({k: v for k, v in entry.items() if k != TRACE_FIELD})
            try:
                await self._publish(event, stored)
            except Exception as exc:  # noqa: BLE001 - kept and raised once the acknowledged ones are removed
                self._left += [str(left["occurred_at"]) for left in entries[index:]]
                if self._metrics is not None:
                    self._metrics.outbox_publish_failures.labels(self._metrics.service).inc()
                return acks, exc
            acks.append((doc["_id"], event.id))
            if self._metrics is not None:
                self._metrics.outbox_published.labels(self._metrics.service).inc()
        return acks, None


def _removal(document_id: Any, event_id: str) -> UpdateOne:
    """The update that takes a published event out of its document's outbox (once)."""
    return UpdateOne(
        {"_id": document_id, f"{OUTBOX_FIELD}.{event_id}": {"$exists": True}},
        {"$unset": {f"{OUTBOX_FIELD}.{event_id}": ""}, "$inc": {OUTBOX_COUNT_FIELD: -1}},
    )

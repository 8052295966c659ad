"""The durable JetStream consumer that feeds the projection, and the dead-letter stream beside it.

Every replica binds the same durable pull consumer on `HUB_EVENTS`, so JetStream hands each event to
one of them. A batch is acknowledged only after its records are written; a redelivery is harmless
because a record's `_id` is its event id.

- A poison event (not JSON, not an envelope, published on the wrong subject, an unknown type, data the
  catalogue's model refuses) can never succeed: it is published to the dead-letter subject at once and
  terminated, and the consumer moves on.
- A failed write is retried: nak'ed with a growing delay, and the fetch loop pauses while MongoDB is
  unreachable so an outage burns few deliveries. On its `max_deliver`-th delivery a still failing
  event is dead-lettered too. One that reached `max_deliver` while its replica died holding it is
  announced by JetStream's MAX_DELIVERIES advisory and dead-lettered from there.
- Dead letters keep the original payload and say why in headers; `replay_dead_letters` projects the
  ones that validate now (after a long outage) and removes them from the dead-letter stream.
- Traced (`shared/tracing.py`), each batch is processed under a CONSUMER span in its first event's trace,
  linked to every event's: with one event a batch (the usual case below saturation) the projection's
  writes end the trace of the request that caused the event.
- Its lag is read from JetStream every `LAG_POLL_SECONDS`: messages the durable has not delivered yet and
  messages delivered but not acknowledged, as every replica sees them (take the max across replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WriteConcernError

from history_service.repository import HEAD_PREFIX
from history_service.schemas import DeadLetterReplay
from history_service.service import HistoryService, Incoming
from history_service.settings import HistorySettings
from shared.clock import now
from shared.event_types import EventData, UnknownEventType, validate_event
from shared.events import STREAM_NAME, SUBJECT_PREFIX, EventEnvelope
from shared.messaging import consume_span, ensure_stream, runs_by_trace, stream_config
from shared.requests import describe

log = logging.getLogger(__name__)

DEAD_LETTER_STREAM = "HUB_DLQ"
DEAD_LETTER_SUBJECTS = ["hub_dlq.>"]
ADVISORY_QUEUE = "history-dead-letters"
FETCH_WAIT_SECONDS = 1.0
# How long taking the events JetStream says are waiting behind the first may take (another replica may
# take some of them first: then this is how long the first waits for nothing).
READY_WAIT_SECONDS = 0.1
REASON_HEADER = "Hub-Dlq-Reason"
DETAIL_HEADER = "Hub-Dlq-Detail"
SUBJECT_HEADER = "Hub-Original-Subject"
SEQUENCE_HEADER = "Hub-Original-Stream-Seq"
DELIVERIES_HEADER = "Hub-Deliveries"
LAG_POLL_SECONDS = 5.0
# Batches in hand at once (fetched and decoded while earlier ones are written): two, and eight while a
# backlog waits. Eight drain a backlog faster (0.38-0.41x of raw pull-and-ack against 0.28-0.30x), but
# under steady load would take events one by one as they come: a command per event instead of per batch
# (bench/README.md, section 4).
PIPELINE_DEPTH = 2
BACKLOG_PIPELINE_DEPTH = 8


class Poison(Exception):
    """A message that can never be projected, whatever the number of attempts."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ProjectionPaused(Exception):
    """MongoDB did not answer: the batch was handed back, and fetching waits a while."""


def decode(subject: str, payload: bytes) -> tuple[EventEnvelope, EventData]:
    """The envelope and its validated data; raises `Poison` saying what is wrong."""
    try:
        envelope = EventEnvelope.model_validate_json(payload)  # one pass: half the time of json.loads first
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):  # not JSON, or not UTF-8
            raise Poison("not_json", describe(exc)) from exc
        raise Poison("invalid_envelope", describe(exc)) from exc
    if envelope.id.startswith(HEAD_PREFIX):
        raise Poison("invalid_envelope", f"event ids starting with {HEAD_PREFIX!r} are reserved")
    if subject != envelope.subject:
        raise Poison("subject_mismatch", f"{envelope.type} published on {subject}")
    try:
        data = validate_event(envelope)
    except UnknownEventType as exc:
        raise Poison("unknown_type", envelope.type) from exc
    except ValidationError as exc:
        raise Poison("invalid_data", describe(exc)) from exc
    return envelope, data


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is MongoDB (or the network) being away, rather than something about the event."""
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WriteConcernError | TimeoutError | OSError):
        return True
    return isinstance(exc, PyMongoError) and exc.has_error_label("RetryableWriteError")


def consumer_config(settings: HistorySettings, deliver_policy: DeliverPolicy | None = None) -> ConsumerConfig:
    """The shared durable: every `hub.>` subject, explicit acks, bounded deliveries with backoff."""
    policy = deliver_policy or (
        DeliverPolicy.ALL if settings.consumer_deliver_policy == "all" else DeliverPolicy.NEW
    )
    return ConsumerConfig(
        name=settings.consumer_durable,
        durable_name=settings.consumer_durable,
        filter_subject=f"{SUBJECT_PREFIX}.>",
        deliver_policy=policy,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.consumer_backoff_seconds[0],
        backoff=list(settings.consumer_backoff_seconds),
        max_deliver=settings.consumer_max_deliver,
        max_ack_pending=max(1000, settings.consumer_batch_size * (BACKLOG_PIPELINE_DEPTH + 2)),
    )


async def ensure_consumer(js: JetStreamContext, settings: HistorySettings) -> None:
    """Create the durable, or update its limits; where it starts in the stream is never changed."""
    try:
        info = await js.consumer_info(STREAM_NAME, settings.consumer_durable)
    except nats.js.errors.NotFoundError:
        try:
            await js.add_consumer(STREAM_NAME, consumer_config(settings))
        except nats.js.errors.BadRequestError:
            await js.consumer_info(STREAM_NAME, settings.consumer_durable)  # another replica won the race
        return
    try:
        await js.add_consumer(STREAM_NAME, consumer_config(settings, info.config.deliver_policy))
    except nats.js.errors.BadRequestError as exc:
        log.warning("keeping the existing consumer's configuration: %s", exc)


@dataclass
class HistoryMetrics:
    """What the consumer did: events recorded, dead letters by reason, and how far behind it runs."""

    recorded: Counter
    dead_lettered: Counter
    lag: Histogram
    redelivered: Counter
    pending: Gauge
    ack_pending: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> HistoryMetrics:
        """Counters in the app's own registry."""
        return cls(
            recorded=Counter(
                "history_events_recorded_total", "Events recorded in history", registry=registry
            ),
            dead_lettered=Counter(
                "history_events_dead_lettered_total",
                "Events sent to the dead-letter subject",
                ["reason"],
                registry=registry,
            ),
            lag=Histogram(
                "history_lag_seconds",
                "From an event's occurred_at to its record being written",
                registry=registry,
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            ),
            redelivered=Counter(
                "history_events_redelivered_total",
                "Deliveries of an event after its first (a nak, an ack timeout, a replica that died)",
                registry=registry,
            ),
            pending=Gauge(
                "history_consumer_pending_messages",
                "Events in HUB_EVENTS the durable consumer has not delivered yet (its lag in messages)",
                registry=registry,
            ),
            ack_pending=Gauge(
                "history_consumer_ack_pending_messages",
                "Events the durable consumer delivered that no replica has acknowledged yet",
                registry=registry,
            ),
        )


class HistoryConsumer:
    """Fetches events in batches, records them, acknowledges them; dead-letters what cannot be recorded."""

    def __init__(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        service: HistoryService,
        settings: HistorySettings,
        metrics: HistoryMetrics,
    ) -> None:
        self._nc = nc
        self._js = js
        self._service = service
        self._settings = settings
        self._metrics = metrics
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._advisories: Subscription | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._lag_task: asyncio.Task[None] | None = None
        # Batches being written: the next one is fetched and decoded meanwhile (see `_run`).
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Declare the dead-letter stream and the durable, bind to it and start fetching."""
        settings = self._settings
        await ensure_stream(self._js, stream_config(settings, DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECTS))
        await ensure_consumer(self._js, settings)
        subscription = await self._js.pull_subscribe_bind(
            durable=settings.consumer_durable, stream=STREAM_NAME
        )
        advisory = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM_NAME}.{settings.consumer_durable}"
        self._advisories = await self._nc.subscribe(
            advisory, queue=ADVISORY_QUEUE, cb=self._on_max_deliveries
        )
        self._subscription = subscription
        self._task = asyncio.create_task(self._run(subscription), name="history-consumer")
        self._lag_task = asyncio.create_task(self._watch_lag(), name="history-consumer-lag")

    def running(self) -> bool:
        """Whether the fetch loop is alive."""
        return self._task is not None and not self._task.done()

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the batches in hand (up to `grace` seconds), then stop; unacknowledged events come back."""
        self._stopping.set()
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self._advisories is not None:
            with contextlib.suppress(Exception):
                await self._advisories.unsubscribe()
        if self._task is not None:
            self._task.cancel()  # fetching or waiting for a write: the batches in hand run on
            await asyncio.wait({self._task})
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    async def _run(self, subscription: JetStreamContext.PullSubscription) -> None:
        """Fetch and handle batches until stopped; outlive any NATS or MongoDB outage.

        Up to `PIPELINE_DEPTH` batches are in hand at once (`BACKLOG_PIPELINE_DEPTH` while JetStream
        says a backlog waits): while one is written (MongoDB's work, in another process), the next is
        fetched and decoded. Each batch is acknowledged after its own write;
        two batches may be written in either order, which history's order does not depend on (a record's
        place is when its event happened) and every read-model change tolerates (see `record`).
        """
        pause = self._settings.consumer_retry_base_seconds
        depth = PIPELINE_DEPTH
        while not self._stopping.is_set():
            while self._in_flight and (
                len(self._in_flight) >= depth or any(t.done() for t in self._in_flight)
            ):
                done, _ = await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self._in_flight.discard(task)
                    pause = await self._after(task, pause)
            try:
                # Wait for one event, then take the ones JetStream says are waiting behind it (none: no
                # wait at all). A fetch of a whole batch would hold the first event until the batch
                # fills or the wait runs out, and so would one for more events than are waiting.
                messages = await subscription.fetch(1, timeout=FETCH_WAIT_SECONDS)
                waiting = messages[-1].metadata.num_pending if messages else 0
                messages += await self._ready(
                    subscription, min(waiting, self._settings.consumer_batch_size - 1)
                )
                # More in hand only while a backlog waits beyond this batch: steady traffic keeps
                # gathering into batches behind the two in hand (a command per batch, not per event).
                depth = (
                    BACKLOG_PIPELINE_DEPTH
                    if waiting >= self._settings.consumer_batch_size
                    else PIPELINE_DEPTH
                )
            except TimeoutError:  # nats.errors.TimeoutError, or asyncio.TimeoutError from fetch
                continue
            except Exception as exc:  # noqa: BLE001 - NATS away or reconnecting: wait and fetch again
                log.warning("history fetch failed, retrying: %r", exc)
                await self._sleep(pause)
                pause = min(pause * 2, self._settings.consumer_retry_cap_seconds)
                continue
            self._in_flight.add(asyncio.create_task(self.handle(messages), name="history-batch"))

    async def _after(self, batch: asyncio.Task[None], pause: float) -> float:
        """Take in how a batch ended: after a failure wait before fetching more. The next pause."""
        settings = self._settings
        exc = batch.exception()
        if isinstance(exc, ProjectionPaused):
            log.warning("history projection paused for %.1fs: %r", pause, exc.__cause__)
            await self._sleep(pause)
            return min(pause * 2, settings.consumer_retry_cap_seconds)
        if exc is not None:
            log.error("history batch failed; its events will be redelivered", exc_info=exc)
            await self._sleep(pause)
            return pause
        return settings.consumer_retry_base_seconds

    async def _watch_lag(self) -> None:
        """Read the durable's pending counts from JetStream now and then (one NATS request, no MongoDB)."""
        while not self._stopping.is_set():
            try:
                info = await self._js.consumer_info(STREAM_NAME, self._settings.consumer_durable)
            except Exception as exc:  # noqa: BLE001 - NATS away: the gauges keep their last reading
                log.debug("consumer lag unknown: %r", exc)
            else:
                self._metrics.pending.set(info.num_pending or 0)
                self._metrics.ack_pending.set(info.num_ack_pending or 0)
            await self._sleep(LAG_POLL_SECONDS)

    @staticmethod
    async def _ready(subscription: JetStreamContext.PullSubscription, most: int) -> list[Msg]:
        """Up to `most` events JetStream has waiting (within READY_WAIT_SECONDS)."""
        if most < 1:
            return []
        try:
            return await subscription.fetch(most, timeout=READY_WAIT_SECONDS)
        except Exception:  # noqa: BLE001 - nothing more now; what was not taken is delivered later
            return []

    async def _sleep(self, seconds: float) -> None:
        """Wait, but wake at once when stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def handle(self, messages: list[Msg]) -> None:
        """Record one fetched batch: dead-letter poison, write the rest, then acknowledge it.

        Traced, the batch is cut into runs of one sampled trace each (order kept), each written under its
        own CONSUMER span; once one pauses the projection, the later runs are handed back unwritten, so a
        document's events are never recorded out of order.
        """
        runs = runs_by_trace(messages, [m.headers for m in messages])
        for index, run in enumerate(runs):
            with consume_span([m.subject for m in run], [m.headers for m in run]):
                try:
                    await self._handle(run)
                except ProjectionPaused as paused:
                    await self._retry_later([m for later in runs[index + 1 :] for m in later], paused)
                    raise

    async def _handle(self, messages: list[Msg]) -> None:
        batch: list[tuple[Msg, Incoming]] = []
        for msg in messages:
            meta = msg.metadata  # parsed from the reply subject on every access: once
            if meta.num_delivered > 1:
                self._metrics.redelivered.inc()
            try:
                envelope, data = decode(msg.subject, msg.data)
            except Poison as poison:
                await self._dead_letter_delivery(msg, poison.reason, poison.detail)
                await msg.term()
                continue
            batch.append((msg, Incoming(envelope, data, meta.sequence.stream)))
        if not batch:
            return
        try:
            recorded = await self._service.record([incoming for _, incoming in batch])
        except Exception as exc:
            if is_transient(exc):
                await self._retry_later([msg for msg, _ in batch], exc)
                raise ProjectionPaused from exc
            log.warning("batch failed, recording its events one by one: %r", exc)
            await self._one_by_one(batch)
            return
        for msg, _ in batch:
            await msg.ack()
        self._observe(batch, recorded)

    async def _one_by_one(self, batch: list[tuple[Msg, Incoming]]) -> None:
        """Isolate the event a batch failed on: the others are recorded and acknowledged."""
        for index, (msg, incoming) in enumerate(batch):
            try:
                recorded = await self._service.record([incoming])
            except Exception as exc:
                if is_transient(exc):
                    await self._retry_later([m for m, _ in batch[index:]], exc)
                    raise ProjectionPaused from exc
                log.warning("event %s failed to record: %r", incoming.envelope.id, exc)
                await self._retry_later([msg], exc)
                continue
            await msg.ack()
            self._observe([(msg, incoming)], recorded)

    async def _retry_later(self, messages: list[Msg], exc: BaseException) -> None:
        """Nak each event with a delay growing with its deliveries; dead-letter it on its last one."""
        settings = self._settings
        for msg in messages:
            delivered = msg.metadata.num_delivered
            if delivered >= settings.consumer_max_deliver:
                await self._dead_letter_delivery(msg, "max_deliver", repr(exc))
                await msg.term()
                continue
            delay = settings.consumer_retry_base_seconds * 2 ** (delivered - 1)
            await msg.nak(delay=min(delay, settings.consumer_retry_cap_seconds))

    def _observe(self, batch: list[tuple[Msg, Incoming]], recorded: int) -> None:
        """Count what was recorded and how long after it happened."""
        self._metrics.recorded.inc(recorded)
        moment = now()
        for _, incoming in batch:
            self._metrics.lag.observe(max(0.0, (moment - incoming.envelope.occurred_at).total_seconds()))

    async def _dead_letter_delivery(self, msg: Msg, reason: str, detail: str) -> None:
        """Dead-letter a delivered message."""
        meta = msg.metadata
        await self.dead_letter(
            msg.subject,
            msg.data,
            stream_seq=meta.sequence.stream,
            deliveries=meta.num_delivered,
            reason=reason,
            detail=detail,
        )

    async def dead_letter(
        self, subject: str, payload: bytes, *, stream_seq: int, deliveries: int, reason: str, detail: str
    ) -> None:
        """Publish the original payload to the dead-letter subject, saying why in headers.

        `Nats-Msg-Id` names the durable and the stream position, so the same event dead-lettered twice
        (by the handler and by the advisory) is stored once.
        """
        headers = {
            "Nats-Msg-Id": f"{self._settings.consumer_durable}-dlq-{stream_seq}",
            REASON_HEADER: reason,
            DETAIL_HEADER: _header_value(detail),
            SUBJECT_HEADER: subject,
            SEQUENCE_HEADER: str(stream_seq),
            DELIVERIES_HEADER: str(deliveries),
        }
        await self._js.publish(self._settings.dead_letter_subject, payload, headers=headers, timeout=5.0)
        self._metrics.dead_lettered.labels(reason).inc()
        log.warning(
            "event dead-lettered",
            extra={"reason": reason, "subject": subject, "stream_seq": stream_seq, "detail": detail[:300]},
        )

    async def _on_max_deliveries(self, msg: Msg) -> None:
        """JetStream gave up on an event a replica died holding: dead-letter it unless it was recorded."""
        try:
            advisory: dict[str, Any] = json.loads(msg.data)
            stream_seq = int(advisory["stream_seq"])
            stored = await self._js.get_msg(STREAM_NAME, stream_seq)
            subject, payload = stored.subject or "", stored.data or b""
            with contextlib.suppress(Poison):
                envelope, _ = decode(subject, payload)
                if await self._service.is_recorded(envelope.id):
                    return
            deliveries = int(advisory.get("deliveries", self._settings.consumer_max_deliver))
            detail = f"delivered {deliveries} times without an acknowledgement"
            await self.dead_letter(
                subject,
                payload,
                stream_seq=stream_seq,
                deliveries=deliveries,
                reason="max_deliver",
                detail=detail,
            )
        except Exception:
            log.exception("could not dead-letter after a max-deliveries advisory")

    async def replay_dead_letters(self) -> DeadLetterReplay:
        """Record the dead letters that validate now and remove them; keep the poison ones."""
        settings = self._settings
        subscription = await self._js.pull_subscribe(
            settings.dead_letter_subject,
            stream=DEAD_LETTER_STREAM,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.EXPLICIT, inactive_threshold=60.0
            ),
        )
        replayed = kept = 0
        try:
            while True:
                try:
                    letters = await subscription.fetch(100, timeout=FETCH_WAIT_SECONDS)
                except TimeoutError:  # nats.errors.TimeoutError, or asyncio.TimeoutError from fetch
                    break
                for letter in letters:
                    headers = letter.headers or {}
                    subject = headers.get(SUBJECT_HEADER, "")
                    try:
                        envelope, data = decode(subject, letter.data)
                    except Poison:
                        kept += 1
                        await letter.ack()
                        continue
                    stream_seq = int(headers.get(SEQUENCE_HEADER, "0") or 0)
                    await self._service.record([Incoming(envelope, data, stream_seq)])
                    await self._js.delete_msg(DEAD_LETTER_STREAM, letter.metadata.sequence.stream)
                    await letter.ack()
                    replayed += 1
        finally:
            info = await subscription.consumer_info()
            await subscription.unsubscribe()
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(DEAD_LETTER_STREAM, info.name)
        return DeadLetterReplay(replayed=replayed, kept=kept)


def _header_value(text: str) -> str:
    """A header-safe one-line version of a message (no CR/LF, bounded length)."""
    return " ".join(text.split())[:300]

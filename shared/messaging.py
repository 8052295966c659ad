"""NATS and JetStream: connecting, declaring the `HUB_EVENTS` stream, and tracing what travels on it.

No maintained OpenTelemetry instrumentation covers nats-py, so the spans are opened here, as the messaging
semantic conventions describe them: a PRODUCER span per publish (a child of the request that wrote the
event, whose context the outbox kept) that puts its W3C context in the message headers, and a CONSUMER
span per fetched batch, a child of its first message's context and linked to every message's.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError
from opentelemetry import propagate, trace

from shared.events import STREAM_NAME, STREAM_SUBJECTS
from shared.settings import ServiceSettings
from shared.tracing import context_of, tracer, tracing_enabled

log = logging.getLogger(__name__)

T = TypeVar("T")


async def connect_nats(settings: ServiceSettings) -> NatsClient:
    """Connect with unlimited reconnects, so a restarted nats-server is picked up again."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    return await nats.connect(
        settings.nats_url,
        name=settings.service_name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        # Bounded, so a subscription cancelled mid-fetch cannot hold shutdown past the grace period.
        drain_timeout=5,
        error_cb=on_error,
    )


def stream_config(
    settings: ServiceSettings, name: str = STREAM_NAME, subjects: list[str] | None = None
) -> StreamConfig:
    """A stream as every hub stream is kept: file storage, replicas and duplicate window from settings.

    The default is `HUB_EVENTS` on `hub.>`; history's dead-letter stream uses the same settings.
    """
    return StreamConfig(
        name=name,
        subjects=subjects or STREAM_SUBJECTS,
        storage=StorageType.FILE,
        num_replicas=settings.nats_stream_replicas,
        duplicate_window=settings.nats_duplicate_window_seconds,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one up to date with the config."""
    try:
        await js.stream_info(config.name or "")
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Another service created it between our look-up and our add.
            await js.update_stream(config)
    else:
        await js.update_stream(config)


def _messaging_attributes(subject: str) -> dict[str, str]:
    return {"messaging.system": "nats", "messaging.destination.name": subject}


@contextlib.contextmanager
def publish_span(
    subject: str, message_id: str, stored: Mapping[str, str] | None, headers: dict[str, str]
) -> Iterator[None]:
    """Around one JetStream publish: a PRODUCER span under the stored context, whose context goes into
    `headers`. Untraced, the stored context is passed on as it is, so a traced consumer still joins it."""
    if not tracing_enabled():
        headers.update(stored or {})
        yield
        return
    with tracer().start_as_current_span(
        f"publish {subject}",
        context=context_of(stored),
        kind=trace.SpanKind.PRODUCER,
        attributes={**_messaging_attributes(subject), "messaging.message.id": message_id},
    ):
        propagate.inject(headers)
        yield


def sampled_trace(headers: Mapping[str, str] | None) -> str | None:
    """The trace id a message's `traceparent` names if that trace is sampled (else None)."""
    parts = (headers or {}).get("traceparent", "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32:
        return None
    try:
        sampled = int(parts[3], 16) & 1
    except ValueError:
        return None
    return parts[1] if sampled else None


def runs_by_trace(items: list[T], headers: list[Mapping[str, str] | None]) -> list[list[T]]:
    """The items cut into consecutive runs of one sampled trace (or of untraced ones), order kept.

    So a consumer can write each sampled event under a span of its own trace, and the trace ends with
    that write; untraced, it is one run (one write) as before.
    """
    if not tracing_enabled():
        return [items] if items else []
    runs: list[list[T]] = []
    previous: object = object()
    for item, header in zip(items, headers, strict=True):
        key = sampled_trace(header)
        if not runs or key != previous:
            runs.append([])
        runs[-1].append(item)
        previous = key
    return runs


@contextlib.contextmanager
def consume_span(subjects: list[str], headers: list[Mapping[str, str] | None]) -> Iterator[None]:
    """Around the processing of one fetched batch: a CONSUMER span in the first message's trace, linked
    to every traced message (one write serves the whole batch, so it can belong to one trace only)."""
    if not tracing_enabled() or not subjects:
        yield
        return
    contexts = [context_of(h) for h in headers if h and "traceparent" in h]
    links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in contexts]
    name = f"process {subjects[0]}" if len(subjects) == 1 else f"process {len(subjects)} events"
    with tracer().start_as_current_span(
        name,
        context=contexts[0] if contexts else None,
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes={**_messaging_attributes(STREAM_NAME), "messaging.batch.message_count": len(subjects)},
    ):
        yield

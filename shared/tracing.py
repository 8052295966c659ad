"""OpenTelemetry tracing: off unless the standard `OTEL_*` variables ask for it; then one provider a process.

On: `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`), or an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true` wins over
both. The SDK itself reads the rest: the sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`), the
exporter's endpoint, headers and protocol, the batch processor's delays, the resource attributes.

The maintained instrumentations do the work: aiohttp-server (a SERVER span per request, context taken from
`traceparent`), aiohttp-client (a CLIENT span per call to a peer, `traceparent` injected) and pymongo (a
CLIENT span per command, from a command listener: it sends no command of its own). NATS has no maintained
instrumentation, so the outbox relay and the history consumer open their PRODUCER and CONSUMER spans
themselves and carry the W3C context in message headers (`shared/messaging.py`).

Off, nothing is installed: no middleware, no listener, no provider; what remains is one check of the
current span per event written and per event published.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

log = logging.getLogger(__name__)

TRACER_NAME = "collections-hub"
# Probes and scrapes are not worth a trace each (the SDK's own exclusion setting, made the default here).
EXCLUDED_SERVER_URLS = "^/healthz$,^/readyz$,^/metrics$"

_provider: TracerProvider | None = None

T = TypeVar("T")


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether the standard variables ask for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracing_enabled() -> bool:
    """Whether this process traces."""
    return _provider is not None


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    """The exporters `OTEL_TRACES_EXPORTER` names (default `otlp`), OTLP over the protocol the env says."""
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",") if n.strip()]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol.strip() == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
                    OTLPSpanExporter as GrpcExporter,
                )

                exporters.append(GrpcExporter())
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
                    OTLPSpanExporter as HttpExporter,
                )

                exporters.append(HttpExporter())
        elif name != "none":
            log.warning("unknown OTEL_TRACES_EXPORTER %r ignored", name)
    return exporters


def configure_tracing(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Set up the process's provider and instrumentations once, if the env asks; whether tracing is on.

    A process runs one service, so the provider is the global one and the instrumentations are installed
    process-wide, as OpenTelemetry intends (they apply to apps, sessions and clients created afterwards).
    """
    global _provider  # noqa: PLW0603 - one provider per process, as OpenTelemetry's API has it
    environ = os.environ if env is None else env
    if _provider is not None or not tracing_requested(environ):
        return _provider is not None
    # Imported only when tracing is on: an untraced process loads none of the instrumentations.
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor  # noqa: PLC0415

    # OTEL_SERVICE_NAME (read by Resource.create) overrides the service's own name.
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in _exporters(environ):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    os.environ.setdefault("OTEL_PYTHON_AIOHTTP_SERVER_EXCLUDED_URLS", EXCLUDED_SERVER_URLS)
    AioHttpServerInstrumentor().instrument(tracer_provider=provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)
    PymongoInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    log.info("tracing on", extra={"sampler": environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on")})
    return True


def flush_spans(timeout_millis: int = 5000) -> None:
    """Export what is buffered (at shutdown), so the last requests' spans are not lost."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def tracer() -> trace.Tracer:
    """This code's tracer (a no-op one when tracing is off)."""
    return trace.get_tracer(TRACER_NAME)


def current_trace_id() -> str | None:
    """The current trace id in hex, when a span (sampled or not) is current."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_carrier() -> dict[str, str]:
    """The current W3C trace context (`traceparent`, `tracestate`) to store or send; empty when none."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_of(carrier: Mapping[str, str] | None) -> Context | None:
    """The OpenTelemetry context a stored or received carrier names (the current one when empty)."""
    return propagate.extract(dict(carrier)) if carrier else None


def untraced(check: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """The check, with its MongoDB and HTTP calls left out of traces (a probe would be a trace each time)."""

    async def run() -> T:
        with suppress_instrumentation():
            return await check()

    return run

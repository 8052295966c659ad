"""Prometheus metrics, one registry per app: requests, MongoDB commands, the outbox, caches, upstreams.

Every metric an alert or the dashboard uses (`deploy/monitoring/`) is defined here or beside the history
consumer, with help text; `tests/e2e/test_observability.py` holds the two to each other.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pymongo import monitoring

# The public API dialects by mount (README): a request's dialect is read off its path, as routing does.
DIALECT_PREFIXES = (
    ("/namespaces/", "a"),
    ("/api/v2/", "b"),
    ("/v1/", "c"),
    ("/admin/", "admin"),
    ("/internal/", "internal"),
)


def dialect_of(path: str) -> str:
    """`a`, `b`, `c`, `admin`, `internal`, or `none` (probes, `/metrics`, unknown paths)."""
    for prefix, dialect in DIALECT_PREFIXES:
        if path.startswith(prefix):
            return dialect
    return "none"


def status_class(status: int) -> str:
    """`2xx`, `3xx`, `4xx` or `5xx`: bounded, where the exact status is in `http_requests_total`."""
    return f"{status // 100}xx"


# The request series every service exposes (the gateway tallies its own: gateway.middleware.RequestMetrics).
REQUESTS_HELP = "HTTP requests answered"
LATENCY_HELP = "HTTP request latency by route template, dialect and status class (its _count is the rate)"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The metrics of one service instance, in a registry of its own so apps in one process don't clash."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            REQUESTS_HELP,
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            LATENCY_HELP,
            ["service", "method", "route", "dialect", "code"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.mongo_commands = Counter(
            "mongo_commands_total",
            "MongoDB commands sent, by client (api = request path, relay = outbox relay) and command",
            ["service", "client", "command"],
            registry=self.registry,
        )
        self.outbox_published = Counter(
            "outbox_events_published_total",
            "Events the outbox relay published to JetStream (acknowledged)",
            ["service"],
            registry=self.registry,
        )
        self.outbox_publish_failures = Counter(
            "outbox_publish_failures_total",
            "Outbox relay publishes that failed (no JetStream ack); the event stays pending and is retried",
            ["service"],
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "outbox_pending_events",
            "Events left in the outbox after the relay's last pass (a lower bound past 200 documents)",
            ["service"],
            registry=self.registry,
        )
        self.outbox_oldest_age = Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest event the relay's last pass left pending; 0 when none",
            ["service"],
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "auth_cache_lookups_total",
            "Look-ups in an authentication or authorization cache, by cache and result (hit, miss)",
            ["service", "cache", "result"],
            registry=self.registry,
        )
        self.view_repairs = Counter(
            "catalog_view_repairs_total",
            "Collections a list view held wrongly (missing, extra, twice), found and repaired by the"
            " verifier; any repair means a bug let derived state drift",
            ["service", "drift"],
            registry=self.registry,
        )
        self.upstream_failures = Counter(
            "upstream_failures_total",
            "Calls to a peer service replica that got no answer (connection refused, reset, timeout)",
            ["service", "upstream"],
            registry=self.registry,
        )

    def command_listener(self, client: str) -> monitoring.CommandListener:
        """A pymongo listener that counts every command this client starts."""
        return _CommandCounter(self, client)

    def render(self) -> web.Response:
        """The exposition-format body for `/metrics`."""
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


# Commands the driver sends on its own, not on behalf of a request.
_HOUSEKEEPING = frozenset(
    {"endSessions", "hello", "isMaster", "ismaster", "ping", "saslStart", "saslContinue"}
)


class _CommandCounter(monitoring.CommandListener):
    def __init__(self, metrics: Metrics, client: str) -> None:
        self._counter = metrics.mongo_commands
        self._service = metrics.service
        self._client = client

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in _HOUSEKEEPING:
            self._counter.labels(self._service, self._client, event.command_name).inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are counted."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are counted."""


METRICS_KEY = web.AppKey("metrics", Metrics)
# The app serving the current request: code below the handlers (caches, clients) counts into its metrics.
current_metrics: ContextVar[Metrics | None] = ContextVar("current_metrics", default=None)


def count_cache_lookup(cache: str, *, hit: bool) -> None:
    """Count one look-up in a named cache, for the app serving the current request (if any)."""
    if (metrics := current_metrics.get()) is not None:
        metrics.cache_lookups.labels(metrics.service, cache, "hit" if hit else "miss").inc()


def count_upstream_failure(upstream: str) -> None:
    """Count one failed call to a peer replica (its base URL), for the app serving the current request."""
    if (metrics := current_metrics.get()) is not None:
        metrics.upstream_failures.labels(metrics.service, upstream).inc()


# A handler may name its route more usefully than its pattern does (the gateway's catch-all proxy does).
ROUTE_LABEL_KEY = web.RequestKey("route_label", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each request and time it, labelled by route pattern (not raw path, to bound cardinality)."""
    metrics = request.app[METRICS_KEY]
    started = time.perf_counter()
    status = 500
    token = current_metrics.set(metrics)
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        current_metrics.reset(token)
        resource = request.match_info.route.resource
        route = request.get(ROUTE_LABEL_KEY) or (resource.canonical if resource is not None else "unmatched")
        metrics.requests.labels(metrics.service, request.method, route, str(status)).inc()
        metrics.latency.labels(
            metrics.service, request.method, route, dialect_of(request.path), status_class(status)
        ).observe(time.perf_counter() - started)

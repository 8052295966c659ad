"""Prometheus metrics: request counts, a latency histogram and MongoDB commands, one registry per app."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pymongo import monitoring


class Metrics:
    """The metrics of one service instance, in a registry of its own so apps in one process don't clash."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.mongo_commands = Counter(
            "mongo_commands_total",
            "MongoDB commands sent, by client (api = request path, relay = outbox relay) and command",
            ["service", "client", "command"],
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
# A handler may name its route more usefully than its pattern does (the gateway's catch-all proxy does).
ROUTE_LABEL_KEY = web.RequestKey("route_label", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each request and time it, labelled by route pattern (not raw path, to bound cardinality)."""
    metrics = request.app[METRICS_KEY]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = request.get(ROUTE_LABEL_KEY) or (resource.canonical if resource is not None else "unmatched")
        metrics.requests.labels(metrics.service, request.method, route, str(status)).inc()
        metrics.latency.labels(metrics.service, request.method, route).observe(time.perf_counter() - started)

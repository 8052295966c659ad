"""Assembling a service's aiohttp app: middlewares, health, metrics and the Mongo/NATS resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import ClientSession, ClientTimeout, TCPConnector, hdrs, web, web_protocol
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.errors import Dialect, Unauthorized, error_middleware, error_response
from shared.health import READINESS_KEY, ReadinessCheck, add_health_routes
from shared.internal import InternalClient
from shared.logs import request_id_var
from shared.messaging import connect_nats, ensure_stream, stream_config
from shared.metrics import METRICS_KEY, Metrics, metrics_middleware
from shared.mongo import Document, create_mongo_client, ping
from shared.outbox import OutboxRelay, collecting
from shared.principal import (
    EXCHANGE_HEADER,
    FORWARDED_HEADER,
    PRINCIPAL_HEADER,
    PRINCIPAL_KEY,
    REQUEST_ID_HEADER,
    SECRET_HEADER,
    parse_principal,
    secret_matches,
)
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing, current_trace_id, flush_spans, untraced

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SETTINGS_KEY = web.AppKey("settings", ServiceSettings)
MONGO_KEY = web.AppKey("mongo", AsyncMongoClient[Document])
DB_KEY = web.AppKey("db", AsyncDatabase[Document])
NATS_KEY = web.AppKey("nats", NatsClient)
JS_KEY = web.AppKey("jetstream", JetStreamContext)

RELAY_KEY = web.AppKey("outbox_relay", OutboxRelay)
HTTP_KEY = web.AppKey("internal_http", ClientSession)

# Paths answered without the internal secret: probes and scraping stay inside the cluster network.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
INTERNAL_PREFIX = "/internal/"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id_for(incoming: str | None) -> str:
    """Keep a well-formed incoming request id, otherwise make a new one."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Carry the request id into logs, events and the response; when traced, it is the trace id."""
    request_id = current_trace_id() or request_id_for(request.headers.get(REQUEST_ID_HEADER))
    token = request_id_var.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        request_id_var.reset(token)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


@web.middleware
async def internal_auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Trust the principal header only with a credential; internal routes only with the internal one.

    A request the gateway forwarded carries the forwarding credential: it may reach the public routes,
    never `/internal/...`, the probes or `/metrics` (404, as if they did not exist), whatever its path.
    """
    secret = request.app[SETTINGS_KEY].internal_secret.get_secret_value()
    forwarded = FORWARDED_HEADER in request.headers
    path = request.path
    if forwarded and (path in OPEN_PATHS or path.startswith(INTERNAL_PREFIX)):
        raise web.HTTPNotFound
    if path in OPEN_PATHS:
        return await handler(request)
    internal = secret_matches(request.headers.get(SECRET_HEADER), secret, "internal")
    if path.startswith(INTERNAL_PREFIX) and not internal:
        raise Unauthorized("internal credentials required")
    if not internal and not secret_matches(request.headers.get(FORWARDED_HEADER), secret, "forwarded"):
        raise Unauthorized("internal credentials required")
    raw = request.headers.get(PRINCIPAL_HEADER)
    if raw:
        request[PRINCIPAL_KEY] = parse_principal(raw)
    return await handler(request)


@web.middleware
async def relay_wakeup_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hand the events the request's writes stored to the outbox relay, which publishes them from memory at
    once (shared/outbox.py). Whatever a write stored without saying so waits for the polling pass."""
    with collecting() as events:
        try:
            return await handler(request)
        finally:  # a handler that fails after a write has stored its events all the same
            if events and (relay := request.app.get(RELAY_KEY)) is not None:
                if request.app[SETTINGS_KEY].outbox_publish_from_memory:
                    relay.submit(events)
                else:
                    relay.notify()


SERVER_NAME = "collections-hub"


async def hide_server_banner(_request: web.Request, response: web.StreamResponse) -> None:
    """No version banner: aiohttp would otherwise announce its and Python's versions."""
    response.headers["Server"] = SERVER_NAME


async def discard_head_body(request: web.Request, _response: web.StreamResponse) -> None:
    """To HEAD, drop whatever the handler writes with `write`: the answer is the head alone.

    aiohttp frames a `StreamResponse` to HEAD with neither a length nor chunks and still sends what
    `write` is given; a client that rightly reads no body after a HEAD head would take those bytes for
    the start of its next answer on the connection. Here, after aiohttp has set the body's length (it
    runs between preparing the headers and sending them), the writer is told the body is empty: aiohttp
    discards what a write would put past it. `web.Response` needs none of this (aiohttp sends no body
    of its own to HEAD); `write_eof(data)` and compression bypass it, and no service uses either:
    `catalog_service.streaming` writes nothing to HEAD in the first place, and `tests/e2e/test_head.py`
    sends HEAD to every route of every service.
    """
    if request.method == hdrs.METH_HEAD:
        request.writer.length = 0


# The gateway's exchange tokens: a counter in hex.
_EXCHANGE_TOKEN = re.compile(r"[0-9a-f]{1,16}")


async def echo_exchange(request: web.Request, response: web.StreamResponse) -> None:
    """Echo the gateway's exchange token on every answer, streamed ones included: the gateway refuses an
    answer that does not carry its request's token, so bytes a broken service sends after an answer can
    never pass for the next request's answer (gateway/upstream.py)."""
    token = request.headers.get(EXCHANGE_HEADER)
    if token is not None and _EXCHANGE_TOKEN.fullmatch(token):
        response.headers[EXCHANGE_HEADER] = token


_aiohttp_handle_error = web_protocol.RequestHandler.handle_error


def _quiet_handle_error(
    self: web_protocol.RequestHandler,
    request: web.BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    """aiohttp's answer to a request it could not parse (a header over 8 KB, a malformed method...).

    aiohttp answers those before any middleware or signal runs, in plain text that quotes the offending
    bytes (a bearer token among them) under a `Server: Python/... aiohttp/...` banner. This keeps its
    logging and its connection handling, and answers a JSON error that names no version and echoes nothing.
    """
    _aiohttp_handle_error(self, request, status, exc, None)  # logs; raises if a response was already sent
    response = error_response(
        status, "internal server error" if status >= 500 else "bad request", Dialect.PLAIN
    )
    response.headers["Server"] = SERVER_NAME
    response.force_close()
    return response


def quiet_low_level_errors() -> None:
    """Install `_quiet_handle_error` (idempotent): aiohttp offers no hook for errors raised before routing."""
    web_protocol.RequestHandler.handle_error = _quiet_handle_error  # type: ignore[method-assign]


TRACE_HEADERS = ("traceparent", "tracestate", "baggage")


@web.middleware
async def edge_trace_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """At the edge a client's trace context is dropped: which requests are sampled is the operator's
    choice (`OTEL_TRACES_SAMPLER`), not something a caller may force on every request."""
    if any(name in request.headers for name in TRACE_HEADERS):
        headers = request.headers.copy()
        for name in TRACE_HEADERS:
            headers.popall(name, None)
        request = request.clone(headers=headers)
    return await handler(request)


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus exposition of this instance's metrics."""
    return request.app[METRICS_KEY].render()


def create_service_app(settings: ServiceSettings, *, internal_auth: bool = True) -> web.Application:
    """An app with the shared middlewares, `/healthz`, `/readyz`, `/metrics`, settings and metrics set."""
    middlewares: list[Handler] = [
        request_context_middleware,  # type: ignore[list-item]
        metrics_middleware,  # type: ignore[list-item]
        error_middleware,  # type: ignore[list-item]
        relay_wakeup_middleware,  # type: ignore[list-item]
    ]
    if internal_auth:
        middlewares.append(internal_auth_middleware)  # type: ignore[arg-type]
    quiet_low_level_errors()
    # Before the app exists: the server instrumentation puts its middleware first in every new app.
    traced = configure_tracing(settings.service_name)
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)  # type: ignore[arg-type]
    if traced and not internal_auth:
        app.middlewares.insert(0, edge_trace_middleware)
    if traced:
        app.on_cleanup.append(_flush_spans)
    app.on_response_prepare.append(hide_server_banner)
    if internal_auth:
        # The services only. The gateway writes no body to HEAD itself (it relays the service's answer as
        # bodiless), and a prepare signal would turn off its direct path (gateway/front.py).
        app.on_response_prepare.append(discard_head_body)
        app.on_response_prepare.append(echo_exchange)
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = Metrics(settings.service_name)
    app[READINESS_KEY] = {}
    add_health_routes(app)
    app.router.add_get("/metrics", metrics_handler)
    return app


async def _flush_spans(_app: web.Application) -> None:
    """Export the last spans before the process exits (the batch processor would otherwise drop them)."""
    await asyncio.to_thread(flush_spans)


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    """Register a dependency that `/readyz` must find answering (its calls are never traced)."""
    app[READINESS_KEY][name] = untraced(check)


async def mongo_resource(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the Mongo client and this service's database, closed on shutdown."""
    settings = app[SETTINGS_KEY]
    client = create_mongo_client(settings, app[METRICS_KEY])
    # Open the topology now: a first open deferred into request handling was seen to stall (pymongo 4.20).
    await ping(client)
    app[MONGO_KEY] = client
    app[DB_KEY] = client[settings.mongo_database]
    add_readiness_check(app, "mongo", lambda: ping(client))
    yield
    await client.close()


async def nats_resource(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the NATS connection and JetStream with `HUB_EVENTS` declared; drained on shutdown."""
    settings = app[SETTINGS_KEY]
    nc = await connect_nats(settings)
    js = nc.jetstream()
    await ensure_stream(js, stream_config(settings))
    app[NATS_KEY] = nc
    app[JS_KEY] = js

    async def nats_ready() -> None:
        if not nc.is_connected:
            raise ConnectionError("nats not connected")

    add_readiness_check(app, "nats", nats_ready)
    yield
    await nc.drain()


def outbox_relay_resource(
    collection_names: list[str],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """cleanup_ctx: a relay publishing the outboxes of these collections, on a Mongo client of its own.

    Its commands are counted under `client="relay"`, apart from the request path's.
    """

    async def relay_resource(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS_KEY]
        client = create_mongo_client(settings, app[METRICS_KEY], label="relay")
        db = client[settings.mongo_database]
        metrics = app[METRICS_KEY]
        relay = OutboxRelay(
            [db[name] for name in collection_names],
            app[JS_KEY],
            metrics=metrics,
            poll_interval=settings.outbox_poll_interval_seconds,
        )
        metrics.outbox_oldest_age.labels(metrics.service).set_function(relay.oldest_pending_age)
        metrics.outbox_pending.labels(metrics.service).set(0)
        app[RELAY_KEY] = relay
        task = asyncio.create_task(relay.run(), name="outbox-relay")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # Publish what the last requests wrote; anything left is published after the next start.
        try:
            await asyncio.wait_for(relay.finish_submitted(), timeout=2.0)
            await asyncio.wait_for(relay.drain(), timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - best effort; the outbox keeps what was not published
            log.info("outbox left for next start: %s", exc)
        await client.close()

    return relay_resource


async def internal_http_resource(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: one pooled HTTP session for calls to peer services."""
    session = ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=5))
    app[HTTP_KEY] = session
    yield
    await session.close()


def peer(app: web.Application, base_urls: str) -> InternalClient:
    """A client for a peer service (one URL, or its replicas' comma-separated), with the internal secret."""
    return InternalClient(app[HTTP_KEY], base_urls, app[SETTINGS_KEY].internal_secret.get_secret_value())

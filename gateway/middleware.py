"""The gateway's one middleware: request id, metrics, errors and the gate, in one coroutine per request.

The services nest four shared middlewares (request id, metrics, errors, relay wake-up; `shared.web`); in
the gateway, which does the least per request of all, each layer was a measurable share of its time
(bench/README.md, section 2). This one does what those did, in the same order and with the same results,
plus the gate (canonical path, rate limits, credentials, admin role). Failures still go through the one
error mapping, `shared.errors.error_middleware`, so every error body stays what the services answer.
"""

from __future__ import annotations

import itertools
import secrets
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from typing import NoReturn

from aiohttp import HttpVersion11, web
from aiohttp.hdrs import EXPECT, SERVER, TRANSFER_ENCODING
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.authenticator import AUTHENTICATOR_KEY, FORWARDING_LINES_KEY, Authenticator, Caller
from gateway.credentials import Credentials, extract_credentials
from gateway.openapi.pages import public_docs_path
from gateway.proxy import no_route
from gateway.ratelimit import RateLimits
from gateway.routing import admin_only, canonical_path
from shared.errors import Forbidden, Unauthorized, error_middleware
from shared.logs import request_id_var
from shared.metrics import (
    LATENCY_BUCKETS,
    LATENCY_HELP,
    REQUESTS_HELP,
    ROUTE_LABEL_KEY,
    Metrics,
    current_metrics,
    dialect_of,
    status_class,
)
from shared.principal import PRINCIPAL_KEY, REQUEST_ID_HEADER
from shared.tracing import current_trace_id
from shared.web import SERVER_NAME, request_id_for

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The path as received, once accepted: what the gateway routes, authorises and forwards.
CANONICAL_PATH_KEY = web.RequestKey("canonical_path", str)
# The route label of a request no route matched.
UNMATCHED = "unmatched"
# The probes answer anyone; `/metrics` needs the admin role here (services keep theirs in-cluster).
PROBES = frozenset({"/healthz", "/readyz"})
# The method label's values: anything else is counted as `other`.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestIds:
    """Request ids for requests that bring none: a random per-process prefix and a counter (32 hex digits,
    like a UUID's). An id only has to be unique, and a callers' own ids are accepted anyway: no need for
    the 16 random bytes (a `getrandom` call) a `uuid4()` costs per request."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count()

    def next(self) -> str:
        """A fresh id."""
        return f"{self._prefix}{next(self._counter):016x}"


class RequestMetrics(Collector):
    """`http_requests_total` and `http_request_duration_seconds`, the same series
    `shared.metrics.metrics_middleware` counts, tallied in plain integers and handed to the registry when
    it is scraped: a prometheus_client child takes a lock per `inc` and walks its buckets in Python per
    `observe` (~4 µs a request here, bench/README.md section 2). The method label is one of HTTP's
    methods or `other`, so no client can grow the label sets without bound."""

    def __init__(self, metrics: Metrics) -> None:
        self._service = metrics.service
        self._bounds = list(LATENCY_BUCKETS)
        # (method, route, dialect, status) -> [count, sum of seconds, then a count per bucket, +Inf last]
        self._tallies: dict[tuple[str, str, str, int], list[float]] = {}
        metrics.registry.unregister(metrics.requests)
        metrics.registry.unregister(metrics.latency)
        metrics.registry.register(self)

    def observe(self, method: str, route: str, path: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (method if method in METHODS else "other", route, dialect_of(path), status)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = [0.0] * (len(self._bounds) + 3)
        tally[0] += 1
        tally[1] += seconds
        tally[2 + bisect_left(self._bounds, seconds)] += 1

    def collect(self) -> Iterator[Metric]:
        """The two families as the registry exposes them (buckets cumulative, as Prometheus has them)."""
        requests = CounterMetricFamily(
            "http_requests", REQUESTS_HELP, labels=["service", "method", "route", "status"]
        )
        latency = HistogramMetricFamily(
            "http_request_duration_seconds",
            LATENCY_HELP,
            labels=["service", "method", "route", "dialect", "code"],
        )
        counts: dict[tuple[str, str, str], float] = {}
        histograms: dict[tuple[str, str, str, str], list[float]] = {}
        for (method, route, dialect, status), tally in list(self._tallies.items()):
            counter_key = (method, route, str(status))
            counts[counter_key] = counts.get(counter_key, 0.0) + tally[0]
            histogram = histograms.setdefault(
                (method, route, dialect, status_class(status)), [0.0] * len(tally)
            )
            for n, value in enumerate(tally):
                histogram[n] += value
        for (method, route, status_label), count in counts.items():
            requests.add_metric([self._service, method, route, status_label], count)
        bounds = [*(str(b) for b in self._bounds), "+Inf"]  # as prometheus_client writes them: "0.001", "1.0"
        for labels, histogram in histograms.items():
            cumulative = list(itertools.accumulate(histogram[2:]))
            latency.add_metric(
                [self._service, *labels], list(zip(bounds, cumulative, strict=True)), histogram[1]
            )
        yield requests
        yield latency


class GatewayMiddleware:
    """Request id, metrics, error mapping and the gate: the gateway's only middleware."""

    __middleware_version__ = 1  # aiohttp's mark of a new-style middleware, as `@web.middleware` sets it

    def __init__(
        self,
        app: web.Application,
        metrics: Metrics,
        limits: RateLimits,
        *,
        metrics_port: int | None,
        traced: bool,
    ) -> None:
        self._app = app  # its authenticator, once started (`gateway.front` calls this without the router)
        self._metrics = metrics
        self._counts = RequestMetrics(metrics)
        self._limits = limits
        self._metrics_port = metrics_port
        self._traced = traced
        self._ids = RequestIds()

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Answer the request, or its error in the dialect's shape; count it; tag it with its id."""
        # When traced, the request id is the trace id (as `shared.web.request_context_middleware` has it).
        trace_id = current_trace_id() if self._traced else None
        request_id = trace_id or self._request_id(request)
        id_token = request_id_var.set(request_id)
        metrics_token = current_metrics.set(self._metrics)
        started = time.perf_counter()
        status = 500
        try:
            try:
                response = await self._gate(request, handler)
            except Exception as exc:  # noqa: BLE001 - mapped (or re-raised) by the one error mapping
                response = await error_middleware(request, _raising(exc))
            status = response.status
            headers = response.headers
            headers[REQUEST_ID_HEADER] = request_id
            headers[SERVER] = SERVER_NAME  # here, not in a prepare signal: every answer passes this way
            if TRANSFER_ENCODING in request.headers:  # one lookup per request, no parsing
                _last_on_its_connection(request, response)
            return response
        except web.HTTPException as exc:  # what the error mapping passes on (redirects, JSON bodies)
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            exc.headers[SERVER] = SERVER_NAME
            if TRANSFER_ENCODING in request.headers:
                _last_on_its_connection(request, exc)
            raise
        finally:
            request_id_var.reset(id_token)
            current_metrics.reset(metrics_token)
            route = request.get(ROUTE_LABEL_KEY) or _pattern(request)
            self._counts.observe(
                request.method, route, request.rel_url.raw_path, status, time.perf_counter() - started
            )

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """Every route's `Expect` handler: `100-continue` is answered as aiohttp does; anything else is a 417
        in the dialect's JSON, through this middleware (aiohttp's own is plain text naming the server and
        quoting the value, and bypasses every middleware)."""
        if not unmet_expectation(request):
            if request.version == HttpVersion11:  # HTTP/1.0 clients never wait for it (RFC 9110 10.1.1)
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0  # the answer's own bytes start after this interim one
            return None
        return await self(request, refuse_expectation)

    def _request_id(self, request: web.Request) -> str:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        return request_id_for(incoming) if incoming else self._ids.next()

    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """One gate for every request: a canonical path, rate limits, valid credentials, the admin role."""
        path = canonical_path(request.rel_url.raw_path)
        request[CANONICAL_PATH_KEY] = path
        if self._metrics_port is not None and local_port(request) == self._metrics_port:
            if path != "/metrics":
                raise no_route()
            return await handler(request)
        limits = self._limits
        address = limits.client_address(request)
        limits.admit(limits.per_address, address)
        # The probes, the API description and its page answer anyone (after the per-address limit), and so
        # does a refused `Expect` (aiohttp refused it before anything else).
        if path in PROBES or public_docs_path(path) or handler is refuse_expectation:
            return await handler(request)
        limits.admit_failures(address)
        authenticator = self._app[AUTHENTICATOR_KEY]
        try:
            credentials = extract_credentials(request.headers)
        except Unauthorized:
            limits.charge_failure(address)
            raise
        caller = authenticator.cached(credentials) or await self._resolve(authenticator, credentials, address)
        principal = caller.principal
        limits.admit(limits.per_credential, f"{principal.user_id}:{principal.key_id or principal.auth}")
        if admin_only(path) and not principal.is_admin:
            raise Forbidden("admin role required")
        request[PRINCIPAL_KEY] = principal
        request[FORWARDING_LINES_KEY] = caller.forwarding_lines
        return await handler(request)

    async def _resolve(self, authenticator: Authenticator, credentials: Credentials, address: str) -> Caller:
        """Credentials not proved a moment ago, checked with access_service. A new check takes a failure token
        before it starts and gives it back once the credentials prove valid (charged only once answered,
        guesses sent in parallel all passed the check while none was charged yet: issue 22). Joining the
        check of the same credentials already under way is no new guess; its failure is charged when known.
        """
        limits = self._limits
        if authenticator.resolving(credentials):
            try:
                return await authenticator.resolve(credentials)
            except Unauthorized:
                limits.charge_failure(address)
                raise
        limits.reserve_failure(address)
        try:
            caller = await authenticator.resolve(credentials)
        except BaseException as exc:
            if not isinstance(exc, Unauthorized):  # access_service away, or the client gone: no failed guess
                limits.refund_failure(address)
            raise
        limits.refund_failure(address)
        return caller


def _last_on_its_connection(request: web.Request, response: web.StreamResponse) -> None:
    """Close the connection after this chunked request's answer, unread what follows it.

    aiohttp's C parser (3.14.5, the newest) keeps a chunked request's last trailer line and makes it a
    header line of the next request on the connection: an `X-API-KEY` or `X-Request-ID` for whoever sends
    next (issue 22; docs/security.md, "Request framing"). Its Python parser drops trailers, but reads a
    request head about 4x slower. So no request after a chunked one is answered: one already read
    (pipelined) is dropped with the connection, and nothing more is read once the body is whole.
    """
    response.force_close()  # `Connection: close`, and aiohttp ends the connection after the answer
    if request.content.is_eof():
        # Stop reading now, so nothing pipelined behind it is parsed at all (`force_close` alone ends the
        # connection only after the answer). With the body unread, reading goes on so aiohttp can drain it.
        request.protocol.close()


def unmet_expectation(request: web.BaseRequest) -> bool:
    """Whether the request's `Expect` asks for anything but `100-continue` (every line of it counts)."""
    expectation = ",".join(request.headers.getall(EXPECT, ())).strip().lower()
    return bool(expectation) and expectation != "100-continue"


async def refuse_expectation(_request: web.Request) -> NoReturn:
    """The handler of a request that expects something other than `100-continue`: 417."""
    raise web.HTTPExpectationFailed


def _pattern(request: web.Request) -> str:
    """The route label of a request the router matched: its resource's pattern."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def local_port(request: web.Request) -> int | None:
    """The port this request came in on."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else None


def _raising(exc: Exception) -> Handler:
    """A handler that fails with `exc`: how a caught failure is handed to the one error mapping."""

    async def fail(_request: web.Request) -> NoReturn:
        raise exc

    return fail

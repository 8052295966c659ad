"""Forwarding an authenticated request to the service that owns it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, web
from aiohttp.hdrs import SERVER
from opentelemetry import propagate, trace

from gateway.answer import answer
from gateway.upstream import UpstreamError, UpstreamPool, UpstreamResponse, header_lines
from shared.errors import Invalid, NotFound, Unavailable
from shared.logs import request_id_var
from shared.metrics import count_upstream_failure
from shared.principal import REQUEST_ID_HEADER
from shared.tracing import tracer, tracing_enabled
from shared.web import SERVER_NAME

log = logging.getLogger(__name__)

# Only what services need travels inward; credentials never leave the gateway.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept")
# Answers up to this size are read whole and sent in one write; longer ones, and those of unknown length
# (dialect A's member streams), are passed on as their bytes arrive, never held whole here.
BUFFERED_MAX_BYTES = 64 * 1024
# Bodies are relayed as they come, with their content type only: no compressed answer is invited.
IDENTITY = "Accept-Encoding: identity\r\n"


def upstream_session(timeout_seconds: float) -> ClientSession:
    """The session for the gateway's own calls (access_service's principal lookups, readiness checks):
    kept-alive connections, no cookie jar."""
    return ClientSession(
        connector=TCPConnector(limit=0, keepalive_timeout=30),
        timeout=ClientTimeout(total=None, sock_connect=timeout_seconds, sock_read=timeout_seconds),
        cookie_jar=DummyCookieJar(),
    )


def upstream_pool(timeout_seconds: float) -> UpstreamPool:
    """Kept-alive connections to every service replica (`gateway.upstream`): the services keep theirs
    open 75 s, so the gateway, at 30 s, is always the side that closes an idle one. Nothing an answer
    sets (cookies) is kept. Each request carries an exchange token the services echo
    (`shared.web.echo_exchange`): an answer without its request's token is refused. The timeout bounds
    connecting and each wait for the upstream's next bytes, not the whole answer: a streamed answer
    (dialect A lists every member; 1,000,000 take the stand-in about 45 s) keeps flowing as long as its
    bytes do."""
    return UpstreamPool(timeout_seconds, idle_seconds=30.0, correlate=True)


async def forward(
    pool: UpstreamPool,
    base_url: str,
    path: str,
    request: web.Request,
    forwarding_lines: str,
) -> web.StreamResponse:
    """Send the request on, its path byte for byte as checked, with the caller's forwarding header lines
    (`gateway.authenticator.Caller`, serialised once per cached caller); relay status, body and content
    type."""
    body = await request.read() if request.body_exists else None
    headers = {}
    for name in FORWARDED_REQUEST_HEADERS:
        if value := request.headers.get(name):
            headers[name] = value
    if request_id := request_id_var.get():
        headers[REQUEST_ID_HEADER] = request_id
    query = request.rel_url.raw_query_string
    # The path goes out as it came in and was checked: nothing re-normalises it on the way.
    target = f"{path}?{query}" if query else path
    with _client_span(request.method, base_url, headers) as span:
        try:
            lines = forwarding_lines + IDENTITY + header_lines(headers)
            upstream = await pool.request(base_url, request.method, target, lines, body)
        except ValueError as exc:  # a header value or query the gateway cannot write as one line
            raise Invalid("malformed request") from exc
        except UpstreamError as exc:
            raise _unavailable(base_url, exc) from exc
        if span is not None:
            span.set_attribute("http.response.status_code", upstream.status)
        try:
            return await _relay(request, upstream, base_url, request_id)
        finally:
            upstream.close()


async def _relay(
    request: web.Request, upstream: UpstreamResponse, base_url: str, request_id: str | None
) -> web.StreamResponse:
    """The upstream's answer to the caller: whole when short, else as its bytes arrive."""
    relayed = {"Content-Type": upstream.headers.get("content-type", "application/json")}
    if (allow := upstream.headers.get("allow")) is not None:
        relayed["Allow"] = allow  # a 405's list of the methods the route has
    if (retry := upstream.headers.get("retry-after")) is not None:
        relayed["Retry-After"] = retry  # a 429's or a 503's "try again after"
    length = upstream.length
    if length is not None and (length <= BUFFERED_MAX_BYTES or request.method == "HEAD"):
        try:
            body = await upstream.read()
        except UpstreamError as exc:
            raise _unavailable(base_url, exc) from exc
        return answer(request, upstream.status, relayed, body)
    streamed = web.StreamResponse(status=upstream.status, headers=relayed)
    if length is not None:
        streamed.content_length = length  # a long answer keeps its length: no chunked framing
    if request_id:
        streamed.headers[REQUEST_ID_HEADER] = request_id  # sent with prepare, before the body
    streamed.headers[SERVER] = SERVER_NAME  # likewise (the middleware sets it on every other answer)
    await streamed.prepare(request)
    try:
        async for chunk in upstream.pieces():
            await streamed.write(chunk)
    except (UpstreamError, ConnectionError) as exc:
        return _cut(request, streamed, base_url, exc)
    await streamed.write_eof()
    return streamed


def _unavailable(base_url: str, exc: UpstreamError) -> Unavailable:
    """The caller's 503 for an upstream that failed before any of its answer went out; logged, counted."""
    log.warning("upstream %s failed: %r", base_url, exc)
    count_upstream_failure(base_url)
    return Unavailable("service unavailable")


def _client_span(
    method: str, base_url: str, headers: dict[str, str]
) -> AbstractContextManager[trace.Span | None]:
    """When tracing is on, a CLIENT span around the call, its context in the `traceparent` sent on."""
    if not tracing_enabled():
        return nullcontext()
    return _traced_call(method, base_url, headers)


@contextmanager
def _traced_call(method: str, base_url: str, headers: dict[str, str]) -> Iterator[trace.Span]:
    with tracer().start_as_current_span(
        method,
        kind=trace.SpanKind.CLIENT,
        attributes={"http.request.method": method, "server.address": base_url},
    ) as span:
        propagate.inject(headers)
        yield span


def _cut(
    request: web.Request, streamed: web.StreamResponse, base_url: str, exc: Exception
) -> web.StreamResponse:
    """An answer failed after its status and part of its body went out: no other answer may follow it on
    this connection, and it must not look complete. Close the connection (aiohttp's closing `write_eof`
    then fails quietly), so the client sees the answer cut short."""
    if isinstance(exc, ConnectionResetError):
        log.info("client went away mid-answer")  # the caller's doing, not the upstream's
    else:
        log.warning("upstream %s failed mid-answer: %r", base_url, exc)
        count_upstream_failure(base_url)
    if request.transport is not None:
        request.transport.close()
    return streamed


def no_route() -> NotFound:
    """The answer for a path no service serves."""
    return NotFound("not found")

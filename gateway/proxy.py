"""Forwarding an authenticated request to the service that owns it."""

from __future__ import annotations

import logging

from aiohttp import ClientError, ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, web
from yarl import URL

from shared.errors import NotFound, Unavailable
from shared.logs import request_id_var
from shared.metrics import count_upstream_failure
from shared.principal import REQUEST_ID_HEADER

log = logging.getLogger(__name__)

# Only what services need travels inward; credentials never leave the gateway.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept")
# Answers up to this size are read whole and sent in one write; longer ones, and those of unknown length
# (dialect A's member streams), are passed on as their bytes arrive, never held whole here.
BUFFERED_MAX_BYTES = 64 * 1024


def upstream_session(timeout_seconds: float) -> ClientSession:
    """The one pooled session for every service replica: kept-alive connections per replica (the
    services keep theirs open 75 s, so the gateway, at 30 s, is always the side that closes an idle one),
    and no cookie jar, so nothing one answer sets can ride along on another caller's request.

    The timeout bounds connecting and each wait for the upstream's next bytes, not the whole answer: a
    streamed answer (dialect A lists every member; 1,000,000 take the stand-in about 45 s) keeps flowing
    as long as its bytes do."""
    return ClientSession(
        connector=TCPConnector(limit=0, keepalive_timeout=30),
        timeout=ClientTimeout(total=None, sock_connect=timeout_seconds, sock_read=timeout_seconds),
        auto_decompress=False,
        cookie_jar=DummyCookieJar(),
    )


async def forward(
    session: ClientSession,
    base_url: str,
    path: str,
    request: web.Request,
    forwarding_headers: dict[str, str],
) -> web.StreamResponse:
    """Send the request on, its path byte for byte as checked, with the caller's forwarding headers
    (`gateway.authenticator.Caller`); relay status, body and content type."""
    body = await request.read() if request.body_exists else None
    headers = forwarding_headers.copy()
    # Bodies are relayed as they come (auto_decompress=False) with their content type only, so no
    # compressed answer may be invited (aiohttp would ask for gzip). Set here: `skip_auto_headers` on the
    # session costs a sort and two header copies per request.
    headers["Accept-Encoding"] = "identity"
    for name in FORWARDED_REQUEST_HEADERS:
        if value := request.headers.get(name):
            headers[name] = value
    if request_id := request_id_var.get():
        headers[REQUEST_ID_HEADER] = request_id
    query = request.rel_url.raw_query_string
    # encoded=True: the client must not re-normalise what the gateway routed and authorised on.
    url = URL(f"{base_url}{path}{'?' + query if query else ''}", encoded=True)
    try:
        async with session.request(
            request.method,
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
        ) as upstream:
            relayed = {"Content-Type": upstream.headers.get("Content-Type", "application/json")}
            if (allow := upstream.headers.get("Allow")) is not None:
                relayed["Allow"] = allow  # a 405's list of the methods the route has
            length = upstream.content_length
            if length is not None and (length <= BUFFERED_MAX_BYTES or request.method == "HEAD"):
                return web.Response(body=await upstream.read(), status=upstream.status, headers=relayed)
            streamed = web.StreamResponse(status=upstream.status, headers=relayed)
            if length is not None:
                streamed.content_length = length  # a long answer keeps its length: no chunked framing
            if request_id:
                streamed.headers[REQUEST_ID_HEADER] = request_id  # sent with prepare, before the body
            await streamed.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await streamed.write(chunk)
            except (ClientError, TimeoutError, ConnectionError) as exc:
                return _cut(request, streamed, base_url, exc)
            await streamed.write_eof()
            return streamed
    except (ClientError, TimeoutError) as exc:
        log.warning("upstream %s failed: %r", base_url, exc)
        count_upstream_failure(base_url)
        raise Unavailable("service unavailable") from exc


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

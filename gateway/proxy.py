"""Forwarding an authenticated request to the service that owns it."""

from __future__ import annotations

import logging

from aiohttp import ClientError, ClientSession, web
from yarl import URL

from shared.errors import NotFound, Unavailable
from shared.logs import request_id_var
from shared.metrics import count_upstream_failure
from shared.principal import Principal, forwarded_headers

log = logging.getLogger(__name__)

# Only what services need travels inward; credentials never leave the gateway.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept")
STREAM_CHUNK = 64 * 1024


async def forward(
    session: ClientSession,
    base_url: str,
    path: str,
    request: web.Request,
    *,
    principal: Principal,
    secret: str,
) -> web.StreamResponse:
    """Send the request on, its path byte for byte as checked, with the principal in forwarding headers;
    relay status, body and content type."""
    body = await request.read() if request.body_exists else None
    headers = {name: value for name in FORWARDED_REQUEST_HEADERS if (value := request.headers.get(name))}
    headers.update(forwarded_headers(secret, principal, request_id_var.get()))
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
            if upstream.content_length is not None:
                return web.Response(body=await upstream.read(), status=upstream.status, headers=relayed)
            # A streamed answer (dialect A's members) is passed on as it comes, never held whole here.
            streamed = web.StreamResponse(status=upstream.status, headers=relayed)
            await streamed.prepare(request)
            async for chunk in upstream.content.iter_chunked(STREAM_CHUNK):
                await streamed.write(chunk)
            await streamed.write_eof()
            return streamed
    except (ClientError, TimeoutError) as exc:
        log.warning("upstream %s failed: %r", base_url, exc)
        count_upstream_failure(base_url)
        raise Unavailable("service unavailable") from exc


def no_route() -> NotFound:
    """The answer for a path no service serves."""
    return NotFound("not found")

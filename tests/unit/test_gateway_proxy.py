"""`gateway.proxy.forward` against a real upstream: short answers whole, long ones streamed with their
length, unknown-length ones as they come; one kept-alive connection reused; no cookie carried over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.proxy import BUFFERED_MAX_BYTES, forward, upstream_pool
from gateway.upstream import UpstreamPool
from shared.errors import error_middleware
from shared.web import echo_exchange

LONG = bytes(range(256)) * (4 * BUFFERED_MAX_BYTES // 256)
SESSION_KEY = web.AppKey("pool", UpstreamPool)
UPSTREAM_KEY = web.AppKey("upstream", str)


async def short(_request: web.Request) -> web.Response:
    """A small JSON answer that also tries to set a cookie."""
    response = web.json_response({"ok": True})
    response.set_cookie("sticky", "from-upstream")
    return response


async def long(_request: web.Request) -> web.Response:
    """A long answer with a Content-Length."""
    return web.Response(body=LONG, content_type="application/octet-stream")


async def unknown_length(request: web.Request) -> web.StreamResponse:
    """An answer of unknown length, written in pieces."""
    response = web.StreamResponse()
    response.content_type = "application/x-ndjson"
    await response.prepare(request)
    for n in range(3):
        await response.write(b'{"n": %d}\n' % n)
    await response.write_eof()
    return response


async def echo(request: web.Request) -> web.Response:
    """What reached the upstream: the peer port, the cookie and the encodings asked for."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return web.json_response(
        {
            "port": peer[1] if peer else None,
            "cookie": request.headers.get("Cookie"),
            "accept_encoding": request.headers.get("Accept-Encoding"),
            "principal": request.headers.get("X-Hub-Principal"),
        }
    )


async def relay(request: web.Request) -> web.StreamResponse:
    """The gateway's forwarding, alone: the path as received, fixed forwarding headers."""
    return await forward(
        request.app[SESSION_KEY],
        request.app[UPSTREAM_KEY],
        request.rel_url.raw_path,
        request,
        'X-Hub-Principal: {"user_id": 1}\r\n',
    )


async def busy(_request: web.Request) -> web.Response:
    """A service whose database is away: 503 with when to try again."""
    return web.json_response({"error": "database unavailable"}, status=503, headers={"Retry-After": "1"})


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    """An upstream with the four routes, and an app forwarding everything to it: the app's URL."""
    upstream_app = web.Application()
    upstream_app.on_response_prepare.append(echo_exchange)  # as every service does
    upstream_app.router.add_get("/short", short)
    upstream_app.router.add_get("/long", long)
    upstream_app.router.add_get("/unknown", unknown_length)
    upstream_app.router.add_get("/echo", echo)
    upstream_app.router.add_get("/busy", busy)
    async with TestServer(upstream_app) as upstream:
        app = web.Application()
        app[UPSTREAM_KEY] = str(upstream.make_url("")).rstrip("/")
        app.router.add_route("*", "/{tail:.*}", relay)
        session = upstream_pool(10)
        app[SESSION_KEY] = session
        try:
            async with TestServer(app) as front:
                yield str(front.make_url("")).rstrip("/")
        finally:
            await session.close()


async def test_short_answer_is_relayed_whole(gateway: str) -> None:
    """A short answer arrives with its length, body and type, and without the upstream's cookie."""
    async with ClientSession() as http, http.get(f"{gateway}/short") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert await response.json() == {"ok": True}
        assert "Set-Cookie" not in response.headers


async def test_long_answer_streams_with_its_length(gateway: str) -> None:
    """A long answer keeps its Content-Length (no chunked framing) and arrives byte for byte."""
    async with ClientSession() as http, http.get(f"{gateway}/long") as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(LONG))
        assert "Transfer-Encoding" not in response.headers
        assert await response.read() == LONG


async def test_unknown_length_answer_is_passed_on_as_it_comes(gateway: str) -> None:
    """An answer without a length is relayed chunked, whole."""
    async with ClientSession() as http, http.get(f"{gateway}/unknown") as response:
        assert response.headers["Transfer-Encoding"] == "chunked"
        assert await response.read() == b'{"n": 0}\n{"n": 1}\n{"n": 2}\n'


async def test_a_services_retry_after_reaches_the_client(gateway: str) -> None:
    """A 503 from a service whose database is away keeps its `Retry-After` (docs/security.md)."""
    async with ClientSession() as http, http.get(f"{gateway}/busy") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert await response.json() == {"error": "database unavailable"}


async def test_one_kept_alive_connection_carries_every_request(gateway: str) -> None:
    """Ten requests in a row reach the upstream from one connection, with no cookie and no compression
    asked for, and with the forwarding headers."""
    async with ClientSession() as http:
        await (await http.get(f"{gateway}/short")).read()  # the upstream tries to set a cookie
        seen = []
        for _ in range(10):
            async with http.get(f"{gateway}/echo") as response:
                seen.append(await response.json())
    assert len({s["port"] for s in seen}) == 1
    assert {s["cookie"] for s in seen} == {None}
    assert {s["accept_encoding"] for s in seen} == {"identity"}
    assert {s["principal"] for s in seen} == {'{"user_id": 1}'}


async def slow(request: web.Request) -> web.StreamResponse:
    """An answer that keeps flowing for longer than the gateway's upstream timeout."""
    response = web.StreamResponse()
    response.content_type = "application/json"
    await response.prepare(request)
    for n in range(6):
        await asyncio.sleep(0.3)
        await response.write(b"%d," % n)
    await response.write_eof()
    return response


async def test_an_answer_longer_than_the_timeout_arrives_whole_while_it_flows() -> None:
    """The upstream timeout (1 s here) bounds each wait for bytes, not the answer: 1.8 s of streaming
    arrive whole (dialect A's member lists of large collections stream for minutes)."""
    upstream_app = web.Application()
    upstream_app.on_response_prepare.append(echo_exchange)  # as every service does
    upstream_app.router.add_get("/slow", slow)
    async with TestServer(upstream_app) as upstream:
        app = web.Application()
        app[UPSTREAM_KEY] = str(upstream.make_url("")).rstrip("/")
        app.router.add_route("*", "/{tail:.*}", relay)
        app[SESSION_KEY] = session = upstream_pool(1)
        try:
            async with (
                TestServer(app) as front,
                ClientSession() as http,
                http.get(f"{str(front.make_url('')).rstrip('/')}/slow") as response,
            ):
                assert response.status == 200
                assert await response.read() == b"0,1,2,3,4,5,"
        finally:
            await session.close()


async def started(request: web.Request) -> web.StreamResponse:
    """An answer of unknown length whose status and first line are sent."""
    response = web.StreamResponse()
    response.content_type = "application/x-ndjson"
    await response.prepare(request)
    await response.write(b'{"n": 0}\n')
    return response


async def stalls(request: web.Request) -> web.StreamResponse:
    """An answer that starts, then stops sending for longer than the gateway's upstream timeout."""
    response = await started(request)
    await asyncio.sleep(3)
    await response.write_eof()
    return response


async def dies(request: web.Request) -> web.StreamResponse:
    """An answer that starts, then loses its connection (the upstream crashed)."""
    response = await started(request)
    await asyncio.sleep(0.1)
    assert request.transport is not None
    request.transport.abort()
    return response


@pytest.mark.parametrize("route", ["/stalls", "/dies"])
async def test_an_answer_that_fails_half_way_is_cut_never_completed_or_followed_by_another(
    route: str,
) -> None:
    """Once an answer's status and part of its body are out, a failing upstream cuts the connection: the
    client sees a truncated answer, never a complete-looking one, and never a second answer (a 503)
    inside the first one's body on a connection it would reuse."""
    upstream_app = web.Application()
    upstream_app.on_response_prepare.append(echo_exchange)  # as every service does
    upstream_app.router.add_get("/stalls", stalls)
    upstream_app.router.add_get("/dies", dies)
    async with TestServer(upstream_app) as upstream:
        app = web.Application(middlewares=[error_middleware])  # as in the gateway: errors become answers
        app[UPSTREAM_KEY] = str(upstream.make_url("")).rstrip("/")
        app.router.add_route("*", "/{tail:.*}", relay)
        app[SESSION_KEY] = session = upstream_pool(1)
        try:
            async with TestServer(app) as front:
                reader, writer = await asyncio.open_connection(front.host, front.port)
                writer.write(f"GET {route} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await writer.drain()
                received, closed = b"", False
                with contextlib.suppress(TimeoutError):
                    while chunk := await asyncio.wait_for(reader.read(65536), timeout=5):
                        received += chunk
                    closed = True
                writer.close()
        finally:
            await session.close()
    assert closed, f"the connection stayed open for another request after: {received!r}"
    assert received.startswith(b"HTTP/1.1 200")
    assert b'{"n": 0}' in received
    assert received.count(b"HTTP/1.1") == 1, received
    assert not received.endswith(b"0\r\n\r\n"), "the chunked answer was closed as if complete"

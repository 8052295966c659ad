"""`gateway.upstream`, the gateway's own HTTP/1.1 client, against upstreams that answer byte for byte what
each test scripts: well-formed answers of every framing arrive whole and leave a reusable connection;
malformed, ambiguous or cut-short ones are refused (a 503 through the gateway, never a 500, never a
guess) and their connection is never used again; nothing a request carries can start a line of its own;
a request that may have been seen is never sent twice."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import uvloop
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.proxy import forward
from gateway.upstream import UpstreamError, UpstreamPool, header_lines
from shared.errors import error_middleware

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

# A script: (connection number, request number on it, the request's bytes) -> what to send back, then
# whether to close the connection after it. None: close without answering.
Script = Callable[[int, int, bytes], "tuple[bytes, bool] | None"]


@dataclass
class Upstream:
    """A TCP server that answers as scripted, and what it received."""

    script: Script
    requests: list[tuple[int, bytes]] = field(default_factory=list)  # (connection number, request)
    connections: int = 0
    closed: int = 0  # connections that ended (either side closed)
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            for n in range(1000):
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + (await reader.readexactly(length) if length else b"")
                self.requests.append((number, request))
                answer = self.script(number, n, request)
                if answer is None:
                    return
                data, close = answer
                writer.write(data)
                await writer.drain()
                if close:
                    return
        finally:
            self.closed += 1
            writer.close()


Start = Callable[[Script], Awaitable["Upstream"]]


@pytest.fixture
async def upstream_factory() -> AsyncIterator[Start]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> Upstream:
        upstream = Upstream(script)
        upstream.server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
        servers.append(upstream.server)
        return upstream

    yield start
    for server in servers:
        server.close()


def always(data: bytes, close: bool = False) -> Script:
    return lambda _c, _n, _r: (data, close)


async def exchange(
    pool: UpstreamPool, upstream: Upstream, method: str = "GET", body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    answer = await pool.request(upstream.url, method, "/x", header_lines({"X-Test": "1"}), body)
    try:
        return answer.status, answer.headers, await answer.read()
    finally:
        answer.close()


MALFORMED = {
    "HTTP/2 status line": b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    "two-digit status": b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\n{}",
    "status 600": b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\n{}",
    "interim 100 before the answer": b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
    "bare LF line ends": b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
    "bare CR inside a value": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}",
    "NUL inside a value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
    "folded header line": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}",
    "space before the colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}",
    "line without a colon": b"HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\n{}",
    "Content-Length and Transfer-Encoding": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    "Content-Length twice": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "Content-Length list": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}",
    "Content-Length with a sign": b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
    "negative Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}",
    "hex Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\n{}",
    "huge Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999999\r\n\r\n{}",
    "gzip transfer coding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "Transfer-Encoding twice": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "chunk size not hex": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "chunk size with a sign": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\n{}\r\n0\r\n\r\n",
    "chunk data longer than its size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n"
    ),
    "head over 64 KB": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}",
    "not HTTP at all": b"hello\r\n\r\n",
}


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_answer_is_refused_and_its_connection_never_used_again(
    upstream_factory: Start, answer: bytes
) -> None:
    """Each malformed answer is an UpstreamError; the next request goes out on a new connection and gets
    the upstream's next (good) answer, never bytes left over from the bad one."""
    upstream = await upstream_factory(lambda c, _n, _r: (answer if c == 1 else OK, False))
    pool = UpstreamPool(timeout=1)
    with pytest.raises(UpstreamError):
        await exchange(pool, upstream)
    assert await exchange(pool, upstream) == (
        200,
        {"content-type": "application/json", "content-length": "2"},
        b"{}",
    )
    assert [c for c, _ in upstream.requests] == [1, 2]
    await pool.close()


CUT_SHORT = {
    "closed before answering": None,
    "closed mid-head": (b"HTTP/1.1 200 OK\r\nContent-Le", True),
    "closed mid-body": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", True),
    "closed mid-chunk": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}", True),
    "closed before the last chunk": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
        True,
    ),
}


@pytest.mark.parametrize("answer", CUT_SHORT.values(), ids=CUT_SHORT.keys())
async def test_an_answer_cut_short_is_an_error_not_a_shorter_answer(
    upstream_factory: Start, answer: tuple[bytes, bool] | None
) -> None:
    upstream = await upstream_factory(lambda _c, _n, _r: answer)
    pool = UpstreamPool(timeout=1)
    with pytest.raises(UpstreamError):
        await exchange(pool, upstream)
    await pool.close()


async def test_an_upstream_that_stalls_is_an_error_after_the_timeout(
    upstream_factory: Start,
) -> None:
    upstream = await upstream_factory(always(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}"))
    pool = UpstreamPool(timeout=0.3)
    with pytest.raises(UpstreamError, match="stalled"):
        await asyncio.wait_for(exchange(pool, upstream), timeout=5)
    await pool.close()


async def test_bytes_after_an_answer_are_never_read_as_the_next_answer(
    upstream_factory: Start,
) -> None:
    """An upstream that sends a second answer nobody asked for (response splitting): the first answer is
    read by its length, the connection is dropped, and the next request gets its own answer."""
    smuggled = b'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{"a": 1}\n'
    upstream = await upstream_factory(
        lambda c, _n, _r: (OK + smuggled if c == 1 else OK.replace(b"{}", b"[]"), False)
    )
    pool = UpstreamPool(timeout=1)
    assert (await exchange(pool, upstream))[2] == b"{}"
    await asyncio.sleep(0.05)
    assert (await exchange(pool, upstream))[2] == b"[]"
    assert upstream.connections == 2
    await pool.close()


FRAMINGS = {
    "by length": (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world", b"hello world", True),
    "no reason phrase": (b"HTTP/1.1 204\r\n\r\n", b"", True),
    "chunked with extensions and trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"hello world",
        True,
    ),
    "until the connection ends (HTTP/1.0)": (b"HTTP/1.0 200 OK\r\n\r\nhello world", b"hello world", False),
    "Connection: close": (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\nhello world",
        b"hello world",
        False,
    ),
    "no body on 304": (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 11\r\n\r\n", b"", True),
}


@pytest.mark.parametrize(("answer", "body", "reused"), FRAMINGS.values(), ids=FRAMINGS.keys())
async def test_every_framing_arrives_whole_and_only_a_finished_connection_is_reused(
    upstream_factory: Start, answer: bytes, body: bytes, reused: bool
) -> None:
    closes = not reused
    upstream = await upstream_factory(always(answer, close=closes))
    pool = UpstreamPool(timeout=1)
    for _ in range(3):
        assert (await exchange(pool, upstream))[2] == body
        await asyncio.sleep(0.02)
    assert upstream.connections == (1 if reused else 3)
    await pool.close()


async def test_a_head_answer_has_no_body_whatever_its_length_says(
    upstream_factory: Start,
) -> None:
    """A HEAD answer ends at its head, whatever its Content-Length says; its connection is never used
    again (where a head ends cannot be told from a body a broken service sends after it)."""
    upstream = await upstream_factory(always(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"))
    pool = UpstreamPool(timeout=1)
    for _ in range(2):
        status, headers, body = await exchange(pool, upstream, "HEAD")
        assert (status, headers["content-length"], body) == (200, "11", b"")
    assert upstream.connections == 2
    await pool.close()


async def test_a_body_sent_after_a_head_answer_never_reaches_the_next_request(
    upstream_factory: Start,
) -> None:
    """The audit's desync: a service answers HEAD with its head and then the body anyway (no length, no
    chunks). The HEAD gets its head; the next GET gets its own answer on a new connection."""
    streamed = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"members": [1, 2, 3]}' * 50
    upstream = await upstream_factory(
        lambda _c, _n, request: (streamed, False) if request.startswith(b"HEAD") else (OK, False)
    )
    pool = UpstreamPool(timeout=1)
    for _ in range(5):
        status, _, body = await exchange(pool, upstream, "HEAD")
        assert (status, body) == (200, b"")
        assert await exchange(pool, upstream) == (
            200,
            {"content-type": "application/json", "content-length": "2"},
            b"{}",
        )
    await pool.close()


async def test_an_idempotent_request_is_sent_again_only_when_a_kept_alive_connection_died_unanswered(
    upstream_factory: Start,
) -> None:
    """The upstream answers a connection's first request and closes on its second without answering (an
    idle connection it dropped just as the gateway reused it). A GET goes again on a new connection; a
    POST, which the upstream may have acted on, is an error and is never sent twice."""
    upstream = await upstream_factory(lambda _c, n, _r: (OK, False) if n == 0 else None)
    pool = UpstreamPool(timeout=1)
    await exchange(pool, upstream)
    assert (await exchange(pool, upstream))[0] == 200
    assert [c for c, _ in upstream.requests] == [1, 1, 2]
    with pytest.raises(UpstreamError):
        await exchange(pool, upstream, "POST", b'{"a": 1}')
    posts = [r for _, r in upstream.requests if r.startswith(b"POST")]
    assert len(posts) == 1
    await pool.close()


async def test_what_goes_out_is_one_request_with_its_length(
    upstream_factory: Start,
) -> None:
    upstream = await upstream_factory(always(OK))
    pool = UpstreamPool(timeout=1)
    await exchange(pool, upstream, "POST", b'{"a": 1}')
    await exchange(pool, upstream, "PUT")
    await exchange(pool, upstream, "GET")
    (_, post), (_, put), (_, get) = upstream.requests
    host = upstream.url.removeprefix("http://").encode()
    assert (
        post == b"POST /x HTTP/1.1\r\nHost: " + host + b'\r\nX-Test: 1\r\nContent-Length: 8\r\n\r\n{"a": 1}'
    )
    assert put.endswith(b"Content-Length: 0\r\n\r\n")
    assert b"Content-Length" not in get
    await pool.close()


@pytest.mark.parametrize(
    "value", ["a\r\nX-Hub-Principal: {}", "a\rb", "a\nb", "a\x00b", "a\x7fb", "\x1b[31m"]
)
def test_a_header_value_that_could_start_a_line_of_its_own_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="not writable"):
        header_lines({"Content-Type": value})
    assert header_lines({"Content-Type": "a\tb; c=d"}) == "Content-Type: a\tb; c=d\r\n"


@pytest.mark.parametrize("target", ["/x y", "/x\r\nHost: evil", "/x\ty", "/x\x00", "/x?a=\n"])
async def test_a_target_with_a_space_or_control_character_is_refused(
    upstream_factory: Start, target: str
) -> None:
    upstream = await upstream_factory(always(OK))
    pool = UpstreamPool(timeout=1)
    with pytest.raises(ValueError, match="not writable"):
        await pool.request(upstream.url, "GET", target, "", None)
    assert upstream.requests == []
    await pool.close()


async def test_an_unreachable_upstream_is_an_error() -> None:
    server = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = UpstreamPool(timeout=1)
    with pytest.raises(UpstreamError, match="cannot connect"):
        await pool.request(f"http://127.0.0.1:{port}", "GET", "/x", "", None)


def test_the_client_works_on_uvloop() -> None:
    """The gateway runs on uvloop (its transports are not asyncio's classes): a kept-alive exchange."""

    async def scenario() -> list[bytes]:
        server = await asyncio.start_server(Upstream(always(OK)).serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        pool = UpstreamPool(timeout=1)
        bodies = []
        for _ in range(3):
            answer = await pool.request(url, "GET", "/x", "", None)
            bodies.append(await answer.read())
        await pool.close()
        server.close()
        return bodies

    assert uvloop.run(scenario()) == [b"{}"] * 3


RELAY_KEY = web.AppKey("relay", str)
POOL_KEY = web.AppKey("pool", UpstreamPool)


async def relay(request: web.Request) -> web.StreamResponse:
    return await forward(request.app[POOL_KEY], request.app[RELAY_KEY], request.rel_url.raw_path, request, "")


@pytest.mark.parametrize("answer", list(MALFORMED.values())[:8], ids=list(MALFORMED.keys())[:8])
async def test_through_the_gateway_a_broken_upstream_is_a_503_in_the_dialects_error_format(
    upstream_factory: Start, answer: bytes
) -> None:
    upstream = await upstream_factory(always(answer))
    app = web.Application(middlewares=[error_middleware])
    app[RELAY_KEY] = upstream.url
    app[POOL_KEY] = pool = UpstreamPool(timeout=1)
    app.router.add_route("*", "/{tail:.*}", relay)
    async with TestServer(app) as front, ClientSession() as http:
        async with http.get(front.make_url("/v1/collections")) as response:
            assert response.status == 503
            assert await response.json() == {"error": "service unavailable"}
        async with http.get(front.make_url("/namespaces/n/projects/p/collections")) as response:
            assert response.status == 503
            assert await response.json() == {
                "statusCode": 503,
                "message": "service unavailable",
                "error": "Service Unavailable",
            }
    await pool.close()


@pytest.mark.parametrize("value", [b"a\x01b", b"a\x7fb", b"a\x1b[31m"])
async def test_through_the_gateway_a_control_character_in_a_forwarded_header_never_reaches_the_upstream(
    upstream_factory: Start, value: bytes
) -> None:
    """A client's Accept with a control character: a 400 (from aiohttp's parser or the gateway), and the
    upstream sees nothing."""
    upstream = await upstream_factory(always(OK))
    app = web.Application(middlewares=[error_middleware])
    app[RELAY_KEY] = upstream.url
    app[POOL_KEY] = pool = UpstreamPool(timeout=1)
    app.router.add_route("*", "/{tail:.*}", relay)
    async with TestServer(app) as front:
        reader, writer = await asyncio.open_connection(front.host, front.port)
        writer.write(b"GET /v1/collections HTTP/1.1\r\nHost: x\r\nAccept: " + value + b"\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=5)
        writer.close()
    assert status_line.split(b" ")[1] == b"400", status_line
    assert upstream.requests == []
    await pool.close()


async def test_connections_idle_past_the_limit_are_closed_by_the_gateway_even_with_no_traffic(
    upstream_factory: Start,
) -> None:
    """After a burst of 20 at once, the 20 kept-alive connections are closed by the gateway once idle past
    its limit, with no request coming to notice (the services keep theirs longer: the gateway closes)."""
    upstream = await upstream_factory(always(OK))
    pool = UpstreamPool(timeout=1, idle_seconds=0.2)
    await asyncio.gather(*(exchange(pool, upstream) for _ in range(20)))
    assert upstream.connections == 20
    await asyncio.sleep(0.05)
    assert upstream.closed == 0
    await asyncio.sleep(0.6)
    assert upstream.closed == 20
    assert (await exchange(pool, upstream))[0] == 200  # and a new one serves the next request
    await pool.close()


async def test_an_answer_without_a_length_that_ends_in_a_reset_is_an_error() -> None:
    """An answer framed by the connection's end that is cut by a reset (RST) is not taken as whole."""

    async def answer_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n{"n": 0}\n')
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        writer.close()

    server = await asyncio.start_server(answer_then_reset, "127.0.0.1", 0)
    pool = UpstreamPool(timeout=2)
    answer = await pool.request(
        f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", "GET", "/x", "", None
    )
    with pytest.raises(UpstreamError, match="reset"):
        await answer.read()
    answer.close()
    server.close()


async def test_a_head_that_trickles_in_past_the_timeout_is_an_error(upstream_factory: Start) -> None:
    """Each byte of the head comes within the timeout, the whole head does not: a head is not a stream."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        for byte in OK:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    pool = UpstreamPool(timeout=0.5)
    with pytest.raises(UpstreamError, match="stalled"):
        await pool.request(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", "GET", "/x", "", None)
    server.close()


async def test_endless_trailers_are_an_error(upstream_factory: Start) -> None:
    trailers = b"".join(b"X-T%d: v\r\n" % n for n in range(100))
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n" + trailers + b"\r\n"
    upstream = await upstream_factory(always(answer))
    pool = UpstreamPool(timeout=1)
    with pytest.raises(UpstreamError, match="trailer"):
        await exchange(pool, upstream)
    await pool.close()

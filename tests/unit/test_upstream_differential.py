"""`gateway.upstream` beside aiohttp's client session over a corpus of upstream answers, hostile ones
included: both clients send the same request to an upstream that answers byte for byte as scripted, then a
second request on the same pool. The first answer's verdict (its status and body, or an error) must be
aiohttp's, except where the gateway is stricter on purpose (listed, each with its reason); and the second
request must get its own answer, or an error, never a byte of the first answer or of anything the upstream
sent unasked (the gateway's pool correlates, as it does in production)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest

from gateway.upstream import EXCHANGE_HEADER, UpstreamError, UpstreamPool

OK2 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
LATE = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nnot-yours!!!"


@dataclass(frozen=True)
class Case:
    """What the upstream sends for the first request (its pieces written one by one), and then."""

    pieces: tuple[bytes, ...]
    close: bool = False  # close the connection after the pieces
    method: str = "GET"
    # Where the gateway's verdict differs from aiohttp's on purpose, and why: it refuses what aiohttp
    # reads (stricter), or it relays an answer whole by its own framing where aiohttp fails it because of
    # bytes after its end (the gateway drops those with the connection, as nginx does: lenient).
    stricter: str = ""
    lenient: str = ""


def one(data: bytes, **kwargs: object) -> Case:
    """A case whose answer is written in one piece."""
    return Case((data,), **kwargs)  # type: ignore[arg-type]


HEAD_ENDS = "RFC 9112 6.3: a HEAD answer ends at its head; the bytes after it close the connection"
BODILESS = "RFC 9112 6.3: a 204 or 304 ends at its head; the bytes after it close the connection"
WHOLE = "the answer is whole by its own framing; what came after it goes with the connection"
STRICT_LLHTTP = "llhttp's strict mode, as RFC 9112 writes the grammar"

CORPUS: dict[str, Case] = {
    # Well-formed answers of every framing
    "by length": one(OK2),
    "empty by length": one(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    "404 by length": one(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"),
    "no reason phrase": one(b"HTTP/1.1 201\r\nContent-Length: 2\r\n\r\n{}"),
    "chunked": one(CHUNKED + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
    "chunked, extensions and trailers": one(
        CHUNKED + b"5;a=b\r\nhello\r\n6;c\r\n world\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
    ),
    "chunked, upper-case hex": one(CHUNKED + b"A\r\n0123456789\r\n0\r\n\r\n"),
    "until the end (HTTP/1.0)": one(b"HTTP/1.0 200 OK\r\n\r\nhello world", close=True),
    "until the end (HTTP/1.1)": one(b"HTTP/1.1 200 OK\r\n\r\nhello world", close=True),
    "Connection: close": one(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", close=True
    ),
    "HTTP/1.0 keep-alive": one(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"),
    "obs-text in a value": one(b"HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9 \xff\r\nContent-Length: 2\r\n\r\n{}"),
    "204 with no body": one(b"HTTP/1.1 204 No Content\r\n\r\n"),
    "304 with a length and no body": one(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 11\r\n\r\n"),
    # Split anywhere: the clients must not care how bytes arrive
    "head split byte by byte": Case(tuple(bytes([b]) for b in OK2)),
    "split inside CRLF": Case((b"HTTP/1.1 200 OK\r", b"\nContent-Length: 2\r", b"\n\r", b"\n{}")),
    "chunked split everywhere": Case(
        tuple(bytes([b]) for b in CHUNKED + b"5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
    ),
    # Bodies where none may be
    "HEAD: a length and no body": one(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", method="HEAD"),
    "HEAD: a body after the head anyway": one(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"members": [1, 2]}' * 20,
        method="HEAD",
        lenient=HEAD_ENDS,
    ),
    "HEAD: a body with its length": one(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", method="HEAD", lenient=HEAD_ENDS
    ),
    "HEAD: chunked body": one(CHUNKED + b"2\r\n{}\r\n0\r\n\r\n", method="HEAD", lenient=HEAD_ENDS),
    "204 with a body": one(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", lenient=BODILESS),
    "304 with a body": one(b"HTTP/1.1 304 Not Modified\r\n\r\nhello", lenient=BODILESS),
    # Bytes after the answer's end
    "a second answer right after": one(OK2 + LATE),
    "a second answer in its own write": Case((OK2, LATE)),
    "garbage right after": one(OK2 + b"GARBAGE\r\n\r\n", lenient=WHOLE),
    "body longer than its length": one(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}xyz", lenient=WHOLE),
    "bytes after Connection: close": one(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}" + LATE,
        close=True,
        lenient=WHOLE,
    ),
    "bytes after the last chunk": one(CHUNKED + b"2\r\n{}\r\n0\r\n\r\n" + LATE),
    # Cut short
    "closed before answering": Case(
        (), close=True, stricter="a request the upstream may have seen is not sent again (aiohttp resends it)"
    ),
    "closed mid-head": one(
        b"HTTP/1.1 200 OK\r\nContent-Le",
        close=True,
        stricter="a request the upstream may have seen is not sent again (aiohttp resends it)",
    ),
    "closed mid-body": one(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", close=True),
    "closed mid-chunk": one(CHUNKED + b"5\r\n{}", close=True),
    "closed before the last chunk": one(CHUNKED + b"2\r\n{}\r\n", close=True),
    "closed in the trailers": one(CHUNKED + b"0\r\nX-T: 1\r\n", close=True),
    # Malformed
    "not HTTP at all": one(b"hello\r\n\r\n", close=True),
    "HTTP/2 status line": one(b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
    "HTTP/2.0 status line": one(
        b"HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", stricter="only HTTP/1.0 and 1.1 are HTTP/1"
    ),
    "two-digit status": one(b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\n{}"),
    "status 600": one(
        b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\n{}", stricter="no service answers outside 200-599"
    ),
    "interim 100 first": one(
        b"HTTP/1.1 100 Continue\r\n\r\n" + OK2, stricter="the gateway never asks for an interim answer"
    ),
    "bare LF line ends": one(b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", stricter=STRICT_LLHTTP),
    "bare CR inside a value": one(b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}"),
    "NUL inside a value": one(b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}"),
    "folded header line": one(
        b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\n{}", stricter=STRICT_LLHTTP
    ),
    "space before the colon": one(b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}", stricter=STRICT_LLHTTP),
    "line without a colon": one(b"HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\n{}"),
    "Content-Length and Transfer-Encoding": one(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    ),
    "Content-Length twice": one(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}"),
    "Content-Length list": one(b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n{}"),
    "Content-Length with a sign": one(b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}"),
    "negative Content-Length": one(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}"),
    "hex Content-Length": one(b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\n{}"),
    "huge Content-Length": one(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n{}"),
    "gzip transfer coding": one(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}",
        close=True,
        stricter="the gateway relays bodies as they are: only chunked framing",
    ),
    "gzip, chunked transfer coding": one(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        stricter="the gateway relays bodies as they are: only chunked framing",
    ),
    "Transfer-Encoding twice": one(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        stricter="which line frames the body would be a guess",
    ),
    "chunk size not hex": one(CHUNKED + b"zz\r\n{}\r\n0\r\n\r\n"),
    "chunk size with a sign": one(CHUNKED + b"+2\r\n{}\r\n0\r\n\r\n"),
    "chunk size overflow": one(CHUNKED + b"FFFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n"),
    "huge chunk size, then closed": one(CHUNKED + b"7FFFFFFFFFFFFFFF\r\n{}", close=True),
    "chunk longer than its size": one(CHUNKED + b"1\r\n{}\r\n0\r\n\r\n"),
    "chunk size with a space": one(CHUNKED + b"2 \r\n{}\r\n0\r\n\r\n", stricter=STRICT_LLHTTP),
    "chunk without its CRLF": one(CHUNKED + b"2\r\n{}0\r\n\r\n"),
    "head over 64 KB": one(
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "endless trailers": one(
        CHUNKED + b"0\r\n" + b"".join(b"X-T%d: v\r\n" % n for n in range(100)) + b"\r\n",
        stricter="at most 64 trailer lines",
    ),
}


@dataclass
class Upstream:
    """Answers the first request it reads as the case says, and every later one with a marker naming
    the connection and the request (echoing the exchange token, as the services do)."""

    case: Case
    served: int = 0
    markers: list[bytes] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                token = re.search(rb"\r\n" + EXCHANGE_HEADER.encode() + rb": (\w+)\r\n", head)
                echo = b"%s: %s\r\n" % (EXCHANGE_HEADER.encode(), token.group(1)) if token else b""
                self.served += 1
                if self.served == 1:
                    for piece in _with_echo(self.case.pieces, echo):
                        writer.write(piece)
                        await writer.drain()
                    if self.case.close:
                        return
                else:
                    marker = b"marker-%d" % self.served
                    self.markers.append(marker)
                    writer.write(
                        b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (echo, len(marker), marker)
                    )
                    await writer.drain()
        finally:
            writer.close()


def _with_echo(pieces: tuple[bytes, ...], echo: bytes) -> list[bytes]:
    """The pieces with the echo after the status line, cut where they were cut."""
    whole = b"".join(pieces)
    line_end = whole.find(b"\r\n")
    if line_end < 0:
        return list(pieces)
    at = line_end + 2
    whole = whole[:at] + echo + whole[at:]
    cuts, offset = [], 0
    for piece in pieces:
        offset += len(piece)
        cuts.append(offset if offset < at else offset + len(echo))
    return [whole[start:end] for start, end in zip([0, *cuts[:-1]], cuts, strict=True)]


Verdict = tuple[int, bytes] | str
Client = Callable[[str, str], Awaitable[Verdict]]


async def _served(
    case: Case, use: Callable[[str], Awaitable[list[Verdict]]]
) -> tuple[list[Verdict], Upstream]:
    upstream = Upstream(case)
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", 0)
    try:
        verdicts = await use(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    finally:
        server.close()
    return verdicts, upstream


async def gateway_client(case: Case) -> tuple[list[Verdict], Upstream]:
    """The gateway's pool, correlating as in production: the first request, then a GET."""

    async def use(url: str) -> list[Verdict]:
        pool = UpstreamPool(timeout=1, correlate=True)
        verdicts: list[Verdict] = []
        try:
            for method in (case.method, "GET"):
                try:
                    answer = await pool.request(url, method, "/x", "", None)
                    try:
                        verdicts.append((answer.status, await answer.read()))
                    finally:
                        answer.close()
                except UpstreamError:
                    verdicts.append("error")
        finally:
            await pool.close()
        return verdicts

    return await _served(case, use)


async def aiohttp_client(case: Case) -> tuple[list[Verdict], Upstream]:
    """aiohttp's client session with one kept-alive connection: the same two requests."""

    async def use(url: str) -> list[Verdict]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=1)
        connector = aiohttp.TCPConnector(limit=1)
        verdicts: list[Verdict] = []
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as http:
            for method in (case.method, "GET"):
                try:
                    async with http.request(method, f"{url}/x") as response:
                        verdicts.append((response.status, await response.read()))
                except (aiohttp.ClientError, TimeoutError):
                    verdicts.append("error")
        return verdicts

    return await _served(case, use)


@pytest.mark.parametrize("case", CORPUS.values(), ids=CORPUS.keys())
async def test_the_first_answer_gets_aiohttps_verdict_unless_the_gateway_is_stricter_on_purpose(
    case: Case,
) -> None:
    """Ours and aiohttp's client read the first answer alike: the same status and body, or both an error;
    where the gateway refuses what aiohttp accepts, that is one of the listed, reasoned cases."""
    ours, _ = await gateway_client(case)
    theirs, _ = await aiohttp_client(case)
    if case.stricter:
        assert ours[0] == "error", case.stricter
        assert theirs[0] != "error", f"aiohttp refuses it too now: drop the exception ({case.stricter})"
    elif case.lenient:
        assert ours[0] != "error", case.lenient
        assert theirs[0] == "error", f"aiohttp reads it too now: drop the exception ({case.lenient})"
    else:
        assert ours[0] == theirs[0]


@pytest.mark.parametrize("case", CORPUS.values(), ids=CORPUS.keys())
async def test_the_next_request_never_sees_a_byte_of_the_answer_before_it(case: Case) -> None:
    """Whatever the first answer was, the second request gets the upstream's own answer to it (a marker
    it sent for exactly that request), or an error: never the first answer's bytes, never bytes sent
    unasked."""
    verdicts, upstream = await gateway_client(case)
    second = verdicts[1]
    if second != "error":
        assert isinstance(second, tuple)
        status, body = second
        assert status == 200
        assert body in upstream.markers, body[:80]
        assert body == upstream.markers[-1]


async def test_late_bytes_after_the_next_request_went_out_are_refused_not_relayed() -> None:
    """The audit's late answer: an upstream that sends a complete answer, and a second one only after the
    next request was written on the reused connection. Without a way to pair answers with requests that
    second answer would be the next caller's; the exchange token refuses it, and the connection with it."""
    served = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            served += 1
            token = re.search(rb"X-Hub-Exchange: (\w+)", head)
            assert token is not None
            echo = b"X-Hub-Exchange: %s\r\n" % token.group(1)
            if served == 1:
                writer.write(b"HTTP/1.1 200 OK\r\n" + echo + b"Content-Length: 2\r\n\r\n{}")
            elif served == 2:  # the late answer of request 1 first, then the real one
                writer.write(LATE + b"HTTP/1.1 200 OK\r\n" + echo + b"Content-Length: 4\r\n\r\nmine")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\n" + echo + b"Content-Length: 5\r\n\r\nfresh")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    pool = UpstreamPool(timeout=1, correlate=True)
    first = await pool.request(url, "GET", "/a", "", None)
    assert await first.read() == b"{}"
    with pytest.raises(UpstreamError, match="exchange"):
        await pool.request(url, "GET", "/b", "", None)
    third = await pool.request(url, "GET", "/c", "", None)
    assert await third.read() == b"fresh"
    await pool.close()
    server.close()


async def test_an_answer_without_the_exchange_token_is_refused() -> None:
    """A correlating pool refuses an answer that echoes no token, or another request's."""
    for echo in (b"", b"X-Hub-Exchange: 999\r\n", b"X-Hub-Exchange: 1, 1\r\n"):

        async def serve(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, echo: bytes = echo
        ) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n" + echo + b"Content-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        pool = UpstreamPool(timeout=1, correlate=True)
        with pytest.raises(UpstreamError, match="exchange"):
            await pool.request(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", "GET", "/", "", None)
        await pool.close()
        server.close()

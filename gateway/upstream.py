"""Kept-alive HTTP/1.1 connections from the gateway to service replicas, and nothing else.

The gateway forwards every request and relays every answer; aiohttp's client session did that with a
request object, a response object, a connector lease, timers and trace hooks per call, which made up most
of what the gateway cost beyond the aiohttp server itself (bench/README.md, section 2). Here a request is
one write of bytes built in one pass, and an answer is read by llhttp (Node.js's HTTP parser, through
`httptools`, as uvicorn reads requests) straight from the socket: no HTTP framing is parsed by hand.

What an answer may be is strict, because anything unexpected is a broken upstream, never something to
guess at: whatever llhttp refuses in its strict mode (bare CR or LF, folded lines, an invalid token or
value byte, Content-Length beside Transfer-Encoding, a repeated or non-decimal Content-Length, a chunk
size that overflows), and besides: a version other than HTTP/1.0 or 1.1, a status outside 200-599, a
transfer coding other than `chunked` alone, a head over 64 KB, more than 64 trailer lines, and, when the
pool correlates (the gateway's does), an answer that does not echo the exchange token its request
carried. Anything else is `UpstreamError`, and the connection is closed.

Reuse follows nginx's rules, stricter where a broken service could make them guess (RFC 9112 section 6.3;
docs/security.md, "Upstream answers"):
- a connection goes back to the pool only after an answer framed by Content-Length or chunks (or bodiless
  by its status) was read to its last byte, with nothing after it, and the upstream keeps it alive;
- answers to HEAD, and 204 and 304 answers, have no body whatever their headers say; a connection that
  answered a HEAD is never used again (a service that wrongly sends a body after a HEAD's head would
  otherwise put it in front of the next answer, and where that head ends cannot be told from the bytes);
- any byte that arrives after an answer's end, or on an idle pooled connection, closes the connection;
- an answer framed by the connection's end (no length, not chunked) ends the connection.
Bytes a broken or hostile service sends late, after the gateway already wrote the next request on a
reused connection, would look like that request's answer; the exchange token rules them out: each
request carries a fresh `X-Hub-Exchange` value, the services echo it (`shared.web`), and an answer
without the right one is refused.
"""

from __future__ import annotations

import asyncio
import random
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import cast

import httptools
from yarl import URL

from shared.principal import EXCHANGE_HEADER

# An answer's status line and headers together: services send a few hundred bytes.
MAX_HEAD_BYTES = 64 * 1024
MAX_TRAILER_LINES = 64
# Bytes the parser may take without reporting a header, a chunk or body data (a chunk line, a trailer
# line): past this the answer is refused, so a never-ending line cannot grow memory.
MAX_FRAMING_BYTES = 64 * 1024
# Past this many unread body bytes the connection stops reading until the relay takes some (backpressure).
HIGH_WATER_BYTES = 256 * 1024
# Methods sent again on a fresh connection when a reused one turned out closed before any answer.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Methods that carry a body: sent with `Content-Length: 0` when the caller sent none.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Control characters other than tab: never in a request line or header value the gateway writes.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BODILESS_STATUSES = frozenset({204, 304})


class UpstreamError(Exception):
    """The upstream could not be reached, went away, stalled, or answered something that is not HTTP."""


class _HeadOnly(Exception):
    """Raised from the parser's callback when a HEAD answer's head is complete: nothing after it is read."""


class _Connection(asyncio.Protocol):
    """One TCP connection, and the answer being read on it: llhttp is fed every received byte, and its
    callbacks fill in the head and queue the body's pieces for the reader."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self._loop = loop
        self._read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.ended = False  # the peer closed (or the connection failed): no more bytes will come
        self.reset = False  # it ended in an error (a reset), not a clean close
        self.stray = False  # bytes came that no request asked for: never used again
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        # The answer being read (`expect` starts one).
        self._parser: httptools.HttpResponseParser | None = None
        self._method = ""
        self._token: str | None = None
        self.received = 0  # bytes of this answer so far
        self._unframed = 0  # bytes fed since the parser last reported progress
        self.head_done = False
        self.complete = False  # the answer's last byte was read (or, framed by the end, the end came)
        self.failure: UpstreamError | None = None
        self.status = 0
        self.keep_alive = False
        self.headers: dict[str, str] = {}
        self._trailers = 0
        self._head_size = 0  # the header lines' bytes (names, values, separators)
        self.body: deque[bytes] = deque()
        self.buffered = 0

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self.complete:  # after the answer's end, or on an idle connection
            self._refuse_stray()
            return
        self.received += len(data)
        self._unframed += len(data)
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:  # a callback's error: context
            cause = exc.__context__
            if isinstance(cause, _HeadOnly):
                pass  # a HEAD answer ends at its head; its connection is never used again
            elif self.complete:  # the answer was whole; what came after it was not asked for
                self._refuse_stray()
            elif isinstance(cause, UpstreamError):
                self._fail(cause)
            else:
                self._fail(UpstreamError(f"malformed answer from upstream: {exc}"))
        if self.failure is None and not self.complete:
            if not self.head_done and self.received > MAX_HEAD_BYTES:
                self._fail(UpstreamError("answer head too long from upstream"))
            elif self._unframed > MAX_FRAMING_BYTES:
                self._fail(UpstreamError("chunk or trailer line too long from upstream"))
        if self.buffered > HIGH_WATER_BYTES and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.reset = exc is not None
        self._wake()

    # llhttp's side (its callbacks)

    def on_message_begin(self) -> None:
        if self.complete:  # a second message after the answer: bytes nobody asked for
            raise UpstreamError("bytes after the answer from upstream")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._unframed = 0
        if self.head_done:
            self._trailers += 1  # trailer fields are read and dropped
            if self._trailers > MAX_TRAILER_LINES:
                raise UpstreamError("too many trailer lines from upstream")
            return
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD_BYTES:  # arrived in one piece with its body, so not refused before
            raise UpstreamError("answer head too long from upstream")
        key = name.decode("ascii").lower()  # llhttp admits only token characters in a name
        text = value.strip(b" \t").decode("utf-8", "surrogateescape")
        if key in self.headers:
            if key == "transfer-encoding":  # llhttp refuses a repeated Content-Length itself
                raise UpstreamError(f"{key} sent twice by upstream")
            self.headers[key] += ", " + text
        else:
            self.headers[key] = text

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        if parser.get_http_version() not in ("1.0", "1.1"):
            raise UpstreamError("malformed answer head from upstream: HTTP version")
        status = parser.get_status_code()
        if not 200 <= status <= 599:  # nothing the gateway sends asks for an interim answer
            raise UpstreamError(f"malformed answer head from upstream: status {status}")
        encoding = self.headers.get("transfer-encoding")
        if encoding is not None and encoding.lower() != "chunked":
            raise UpstreamError(f"transfer coding {encoding!r} from upstream")
        if self._token is not None and self.headers.get(EXCHANGE_FIELD) != self._token:
            raise UpstreamError("answer not for this request from upstream (exchange token)")
        self.status = status
        self.keep_alive = parser.should_keep_alive()
        self.head_done = True
        self._unframed = 0
        if self._method == "HEAD":
            self.complete = True
            raise _HeadOnly

    def on_body(self, piece: bytes) -> None:
        self._unframed = 0
        self.body.append(piece)
        self.buffered += len(piece)

    def on_chunk_header(self) -> None:
        self._unframed = 0

    def on_message_complete(self) -> None:
        self.complete = True

    # the reader's side

    def expect(self, method: str, token: str | None) -> None:
        """Start reading the answer to a request about to be written."""
        self._parser = httptools.HttpResponseParser(self)
        self._method = method
        self._token = token
        self.received = self._unframed = self._trailers = self._head_size = self.status = self.buffered = 0
        self.head_done = self.complete = self.keep_alive = False
        self.failure = None
        self.headers = {}
        self.body.clear()

    def done(self) -> None:
        """The answer was taken whole: the connection is idle, and any byte that comes now is stray."""
        self._parser = None

    def _refuse_stray(self) -> None:
        self.stray = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, failure: UpstreamError) -> None:
        self.failure = failure
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def usable(self) -> bool:
        """Open, and never sent a byte nobody asked for."""
        transport = self.transport
        return not self.ended and not self.stray and transport is not None and not transport.is_closing()

    def close(self) -> None:
        """Close the connection; whatever it was reading is abandoned."""
        self.ended = True
        self._parser = None
        if self.transport is not None:
            self.transport.close()

    def take(self) -> bytes:
        """The next received piece of the body (there is one)."""
        piece = self.body.popleft()
        self.buffered -= len(piece)
        if self._paused and self.buffered <= HIGH_WATER_BYTES // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return piece

    async def more(self, until: float | None = None) -> None:
        """Wait until something happens on the connection (bytes, its end); UpstreamError if nothing did in
        the read timeout (or by the loop time `until`, when given and sooner)."""
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        waiter = self._waiter = self._loop.create_future()
        deadline = self._loop.time() + self._read_timeout
        timer = self._loop.call_at(deadline if until is None else min(until, deadline), _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamError("upstream stalled"))


# The header that pairs an answer with its request (sent and checked by a correlating pool).
EXCHANGE_FIELD = EXCHANGE_HEADER.lower()


class UpstreamResponse:
    """An answer's status and headers, and its body to read whole or piece by piece, exactly once."""

    def __init__(self, pool: UpstreamPool, key: str, connection: _Connection, method: str) -> None:
        self.status = connection.status
        self.headers = connection.headers
        declared = self.headers.get("content-length")
        # The body's length when the upstream said it (None: chunked, or until the connection ends).
        self.length = int(declared) if declared is not None else None
        self._pool = pool
        self._key = key
        self._connection: _Connection | None = connection
        if method == "HEAD" or self.status in _BODILESS_STATUSES:
            self._framing = "none"
        elif "transfer-encoding" in self.headers:
            self._framing = "chunked"
        else:
            self._framing = "length" if self.length is not None else "close"
        # HEAD: where its head ended cannot be told from what a broken service sends after it.
        self._reusable = connection.keep_alive and self._framing != "close" and method != "HEAD"

    async def read(self) -> bytes:
        """The whole body (for answers of a known, bounded length)."""
        connection = self._connection
        if connection is not None and connection.complete:  # all here already: the usual case
            body = b"".join(connection.body) if len(connection.body) != 1 else connection.body[0]
            connection.body.clear()
            connection.buffered = 0
            self._finish()
            return body if self._framing != "none" else b""
        return b"".join([piece async for piece in self.pieces()])

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool after its last byte."""
        connection = self._connection
        if connection is None:
            return
        if self._framing != "none":
            while True:
                if connection.body:
                    yield connection.take()
                elif connection.complete:
                    break
                elif connection.failure is not None:
                    raise connection.failure
                elif connection.ended:
                    if self._framing == "close" and not connection.reset:
                        break  # framed by the connection's end, which came cleanly
                    raise UpstreamError(
                        "upstream connection reset mid-answer"
                        if connection.reset
                        else "upstream closed the connection mid-answer"
                    )
                else:
                    await connection.more()
        self._finish()

    def _finish(self) -> None:
        """The body was read to its end: the connection may serve another request."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.done()
            if self._reusable and connection.usable():
                self._pool.release(self._key, connection)
            else:
                connection.close()

    def close(self) -> None:
        """Done with the answer, read to its end or not: a connection with unread bytes is closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


class _Address:
    """Where a base URL points, and the request-line prefix parts it fixes."""

    def __init__(self, base_url: str) -> None:
        url = URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.host
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if url.scheme == "https" else None
        self.host_header = f"Host: {url.host_port_subcomponent}\r\n"
        self.prefix = url.raw_path.rstrip("/")


class UpstreamPool:
    """Kept-alive connections to every replica, no limit on how many; idle ones are used newest first and
    closed after `idle_seconds` (the services keep theirs 75 s, so the gateway is the side that closes).

    `timeout` bounds connecting and each wait for the upstream's next bytes, not a whole answer: a streamed
    answer keeps flowing as long as its bytes do. With `correlate`, each request carries a fresh
    `X-Hub-Exchange` token and an answer that does not echo it is refused (the module's docstring)."""

    def __init__(self, timeout: float, idle_seconds: float = 30.0, *, correlate: bool = False) -> None:
        self.timeout = timeout
        self._idle_seconds = idle_seconds
        # Per replica, oldest first: taken from the right (newest), expired from the left.
        self._idle: dict[str, deque[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._addresses: dict[str, _Address] = {}
        self._closed = False
        # Random, not a counter: tokens never leave the gateway and the services, so nobody who could make a
        # broken service send bytes of their choosing can name the token of another caller's request.
        self._tokens = random.Random() if correlate else None  # noqa: S311 - unguessable enough: unseen

    async def request(
        self, base_url: str, method: str, target: str, header_lines: str, body: bytes | None
    ) -> UpstreamResponse:
        """Send `method target` (path and query, as they go on the wire) with `header_lines` (built by
        `header_lines`) and `body`, and read the answer's head. A reused connection found closed before
        any answer came is replaced once for an idempotent method; otherwise UpstreamError. ValueError:
        the target cannot be written as it is."""
        address = self._addresses.get(base_url)
        if address is None:
            address = self._addresses[base_url] = _Address(base_url)
        token = None
        if self._tokens is not None:
            token = f"{self._tokens.getrandbits(64):x}"
            header_lines = f"{header_lines}{EXCHANGE_HEADER}: {token}\r\n"
        message = _message(address, method, target, header_lines, body)
        connection = self._acquire(base_url)
        if connection is not None:
            try:
                return await self._exchange(base_url, connection, method, token, message)
            except _NothingCame:
                if method not in IDEMPOTENT:
                    raise UpstreamError("upstream closed a kept-alive connection") from None
        connection = await self._connect(address)
        try:
            return await self._exchange(base_url, connection, method, token, message)
        except _NothingCame:
            raise UpstreamError("upstream closed the connection") from None

    async def _exchange(
        self, key: str, connection: _Connection, method: str, token: str | None, message: bytes
    ) -> UpstreamResponse:
        assert connection.transport is not None
        try:
            connection.expect(method, token)
            connection.transport.write(message)
            await _head(connection, asyncio.get_running_loop().time() + self.timeout)
        except BaseException:  # an error, a stall or a cancellation: the connection's state is unknown
            connection.close()
            raise
        return UpstreamResponse(self, key, connection, method)

    def _acquire(self, key: str) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        oldest = time.monotonic() - self._idle_seconds
        while idle:
            connection = idle.pop()
            if connection.idle_since >= oldest and connection.usable():
                return connection
            connection.close()
        return None

    def release(self, key: str, connection: _Connection) -> None:
        """A connection whose last answer was read whole, for the next request to the same replica."""
        if self._closed:
            connection.close()
            return
        connection.idle_since = now = time.monotonic()
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
        idle.append(connection)
        _expire_idle(idle, now - self._idle_seconds)
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self._idle_seconds, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle past `idle_seconds` when no request came to do it; again later while any
        connection is idle."""
        self._sweeper = None
        oldest = time.monotonic() - self._idle_seconds
        for idle in self._idle.values():
            _expire_idle(idle, oldest)
        if not self._closed and any(self._idle.values()):
            self._sweeper = asyncio.get_running_loop().call_later(self._idle_seconds, self._sweep)

    async def _connect(self, address: _Address) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop, self.timeout),
                    address.host,
                    address.port,
                    ssl=address.ssl,
                    server_hostname=address.host if address.ssl else None,
                )
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to {address.host}:{address.port}: {exc!r}") from exc
        return connection

    async def close(self) -> None:
        """Close every idle connection; later releases close theirs."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        await asyncio.sleep(0)


def _expire_idle(idle: deque[_Connection], oldest: float) -> None:
    """Close the connections at the old end of a replica's idle queue that have been idle too long."""
    while idle and (idle[0].idle_since < oldest or not idle[0].usable()):
        idle.popleft().close()


class _NothingCame(Exception):
    """The connection ended before any byte of an answer: the request may not have been seen."""


def header_lines(headers: Mapping[str, str]) -> str:
    """Header fields as the lines a request carries. A value with a line break or another control
    character (tab aside) is refused (ValueError): it would end its line and start another."""
    if _UNSAFE.search("".join(headers.values())):
        raise ValueError("header value not writable")
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


def _message(address: _Address, method: str, target: str, lines: str, body: bytes | None) -> bytes:
    """The request's bytes. A target with a space or control character is refused (ValueError): what
    the gateway checked is what the service reads."""
    if _UNSAFE.search(target) or " " in target or "\t" in target:
        raise ValueError("request target not writable")
    if body is not None:
        length = f"Content-Length: {len(body)}\r\n"
    else:
        length = "Content-Length: 0\r\n" if method in BODY_METHODS else ""
    head = f"{method} {address.prefix}{target} HTTP/1.1\r\n{address.host_header}{lines}{length}\r\n"
    data = head.encode("utf-8", "surrogateescape")
    return data + body if body else data


async def _head(connection: _Connection, until: float) -> None:
    """Wait for the answer's status line and headers, whole by the loop time `until` (a head is not a
    stream: bytes trickling in do not keep it going)."""
    while not connection.head_done:
        if connection.failure is not None:
            raise connection.failure
        if connection.ended:
            if not connection.received:
                raise _NothingCame
            raise UpstreamError("upstream closed the connection mid-answer")
        try:
            await connection.more(until)
        except UpstreamError:
            if connection.ended and not connection.received:  # closed before any byte of an answer
                raise _NothingCame from None
            raise

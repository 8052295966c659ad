"""Kept-alive HTTP/1.1 connections from the gateway to service replicas, and nothing else.

The gateway forwards every request and relays every answer; aiohttp's client session did that with a
request object, a response object, a connector lease, timers and trace hooks per call, which made up most
of what the gateway cost beyond the aiohttp server itself (bench/README.md, section 2). Here a request is
one write of bytes built in one pass, and an answer is read straight from the connection's buffer.

What an answer may be is strict, because anything unexpected is a broken upstream, never something to
guess at: HTTP/1.0 or 1.1, a three-digit status of 200-599, header lines of `name: value` separated by
CRLF (no bare CR or LF, no folded lines), at most one Content-Length (digits) or `Transfer-Encoding:
chunked`, never both. Anything else is `UpstreamError`, and the connection is closed: its bytes are never
read as the start of another answer. An answer is framed by its length, its chunks, or (HTTP/1.0 style)
the connection's end; only a connection whose answer was read to its last byte is used again.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import cast

from yarl import URL

# An answer's status line and headers together: services send a few hundred bytes.
MAX_HEAD_BYTES = 64 * 1024
MAX_CHUNK_LINE_BYTES = 4096
MAX_TRAILER_LINES = 64
# Past this many unread bytes the connection stops reading until the relay takes some (backpressure).
HIGH_WATER_BYTES = 256 * 1024
# Methods sent again on a fresh connection when a reused one turned out closed before any answer.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Methods that carry a body: sent with `Content-Length: 0` when the caller sent none.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
# Control characters other than tab: never in a request line or header value the gateway writes.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# An answer's head: the status line (a final status, 200-599), then header lines of a token, a colon
# and a value of anything but control characters (tab aside), each line ended by CRLF.
_HEAD = re.compile(
    rb"HTTP/1\.([01]) ([2-5][0-9][0-9])(?: [^\x00-\x08\x0a-\x1f\x7f]*)?"
    rb"((?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*)*)"
)


class UpstreamError(Exception):
    """The upstream could not be reached, went away, stalled, or answered something that is not HTTP."""


class _Connection(asyncio.Protocol):
    """One TCP connection: received bytes in a buffer, and a waiter for more."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self._loop = loop
        self._read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False  # the peer closed (or the connection failed): no more bytes will come
        self.reset = False  # it ended in an error (a reset), not a clean close
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > HIGH_WATER_BYTES and self.transport is not None and not self._paused:
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

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def usable(self) -> bool:
        """Open, and holding no stray bytes (an idle connection that received some is broken)."""
        transport = self.transport
        return not self.ended and not self.buffer and transport is not None and not transport.is_closing()

    def close(self) -> None:
        self.ended = True
        if self.transport is not None:
            self.transport.close()

    async def more(self, until: float | None = None) -> None:
        """Wait until more bytes arrive; UpstreamError if none will, or none came in the read timeout (or
        by the loop time `until`, when given and sooner)."""
        if self.ended:
            raise UpstreamError("upstream closed the connection")
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
        if not self.buffer and self.ended:
            raise UpstreamError("upstream closed the connection")

    def take(self, n: int) -> bytes:
        """Up to `n` buffered bytes, removed from the buffer."""
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        if self._paused and len(self.buffer) <= HIGH_WATER_BYTES // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamError("upstream stalled"))


class UpstreamResponse:
    """An answer's status and headers, and its body to read whole or piece by piece, exactly once."""

    def __init__(
        self,
        pool: UpstreamPool,
        key: str,
        connection: _Connection,
        *,
        status: int,
        headers: dict[str, str],
        length: int | None,
        framing: str,
        reusable: bool,
    ) -> None:
        self.status = status
        self.headers = headers
        # The body's length when the upstream said it (None: chunked, or until the connection ends).
        self.length = length
        self._pool = pool
        self._key = key
        self._connection: _Connection | None = connection
        self._framing = framing  # "length", "chunked", "close" (until the connection ends) or "none"
        self._reusable = reusable and framing != "close"
        self._remaining = length or 0  # of a sized body

    async def read(self) -> bytes:
        """The whole body (for answers of a known, bounded length)."""
        connection = self._connection
        if self._framing == "length" and connection is not None and len(connection.buffer) >= self._remaining:
            body = connection.take(self._remaining)  # all here already: the usual case for short answers
            self._remaining = 0
            self._finish()
            return body
        return b"".join([piece async for piece in self.pieces()])

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body as it arrives; the connection goes back to the pool after its last byte."""
        connection = self._connection
        if connection is None:
            return
        if self._framing == "chunked":
            async for piece in _chunks(connection):
                yield piece
        elif self._framing == "length":
            while self._remaining:
                if not connection.buffer:
                    await connection.more()
                piece = connection.take(self._remaining)
                self._remaining -= len(piece)
                yield piece
        elif self._framing == "close":
            async for piece in _until_end(connection):
                yield piece
        self._finish()

    def _finish(self) -> None:
        """The body was read to its end: the connection may serve another request."""
        connection, self._connection = self._connection, None
        if connection is not None:
            if self._reusable and connection.usable():
                self._pool.release(self._key, connection)
            else:
                connection.close()

    def close(self) -> None:
        """Done with the answer, read to its end or not: a connection with unread bytes is closed."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


async def _until_end(connection: _Connection) -> AsyncIterator[bytes]:
    """A body framed by the connection's end (HTTP/1.0 style): a reset is an error, not its end."""
    while True:
        if not connection.buffer:
            if connection.ended:
                if connection.reset:  # cut off, not ended: its length cannot be told
                    raise UpstreamError("upstream connection reset mid-answer")
                return
            try:
                await connection.more()
            except UpstreamError:
                if not connection.ended:  # stalled
                    raise
                continue  # it ended: the top of the loop tells a close from a reset
        yield connection.take(len(connection.buffer))


async def _chunks(connection: _Connection) -> AsyncIterator[bytes]:
    """A chunked body's data, its framing checked (RFC 9112 section 7.1); trailers are read and dropped."""
    while True:
        line = await _line(connection)
        size_field = line.split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(size_field):
            raise UpstreamError("malformed chunk size from upstream")
        size = int(size_field, 16)
        if size == 0:
            for _ in range(MAX_TRAILER_LINES):  # trailer fields, up to the empty line
                if not await _line(connection):
                    return
            raise UpstreamError("too many trailer lines from upstream")
        while size:
            if not connection.buffer:
                await connection.more()
            piece = connection.take(size)
            size -= len(piece)
            yield piece
        if await _line(connection):
            raise UpstreamError("malformed chunk from upstream")


async def _line(connection: _Connection) -> bytes:
    """One CRLF-terminated line, without its CRLF."""
    while (end := connection.buffer.find(b"\r\n")) < 0:
        if len(connection.buffer) > MAX_CHUNK_LINE_BYTES:
            raise UpstreamError("chunk line too long from upstream")
        await connection.more()
    if end > MAX_CHUNK_LINE_BYTES:
        raise UpstreamError("chunk line too long from upstream")
    line = connection.take(end + 2)[:-2]
    if b"\r" in line or b"\n" in line:
        raise UpstreamError("malformed chunk line from upstream")
    return line


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
    answer keeps flowing as long as its bytes do."""

    def __init__(self, timeout: float, idle_seconds: float = 30.0) -> None:
        self.timeout = timeout
        self._idle_seconds = idle_seconds
        # Per replica, oldest first: taken from the right (newest), expired from the left.
        self._idle: dict[str, deque[_Connection]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._addresses: dict[str, _Address] = {}
        self._closed = False

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
        message = _message(address, method, target, header_lines, body)
        connection = self._acquire(base_url)
        if connection is not None:
            try:
                return await self._exchange(base_url, connection, method, message)
            except _NothingCame:
                if method not in IDEMPOTENT:
                    raise UpstreamError("upstream closed a kept-alive connection") from None
        connection = await self._connect(address)
        try:
            return await self._exchange(base_url, connection, method, message)
        except _NothingCame:
            raise UpstreamError("upstream closed the connection") from None

    async def _exchange(
        self, key: str, connection: _Connection, method: str, message: bytes
    ) -> UpstreamResponse:
        assert connection.transport is not None
        try:
            connection.transport.write(message)
            head = await _head(connection, asyncio.get_running_loop().time() + self.timeout)
        except BaseException:  # an error, a stall or a cancellation: the connection's state is unknown
            connection.close()
            raise
        try:
            return _response(self, key, connection, method, head)
        except UpstreamError:
            connection.close()
            raise

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


async def _head(connection: _Connection, until: float) -> bytes:
    """An answer's status line and headers, without the empty line that ends them, whole by the loop
    time `until` (a head is not a stream: bytes trickling in do not keep it going)."""
    while (end := connection.buffer.find(b"\r\n\r\n")) < 0:
        if len(connection.buffer) > MAX_HEAD_BYTES:
            raise UpstreamError("answer head too long from upstream")
        if connection.ended:
            if not connection.buffer:
                raise _NothingCame
            raise UpstreamError("upstream closed the connection mid-answer")
        try:
            await connection.more(until)
        except UpstreamError:
            if connection.ended and not connection.buffer:  # closed before any byte of an answer
                raise _NothingCame from None
            raise
    if end > MAX_HEAD_BYTES:
        raise UpstreamError("answer head too long from upstream")
    return connection.take(end + 4)[:-4]


def _response(
    pool: UpstreamPool, key: str, connection: _Connection, method: str, head: bytes
) -> UpstreamResponse:
    """Read the head strictly (see the module's docstring) and frame the body."""
    match = _HEAD.fullmatch(head)
    if match is None:
        raise UpstreamError("malformed answer head from upstream")
    version, code, fields = match.groups()
    headers = _fields(fields)
    status = int(code)
    reusable = version == b"1" and "close" not in headers.get("connection", "").lower()
    encoding = headers.get("transfer-encoding")
    declared = headers.get("content-length")
    if encoding is not None and declared is not None:
        raise UpstreamError("both Content-Length and Transfer-Encoding from upstream")
    if declared is not None and (not declared.isascii() or not declared.isdigit() or len(declared) > 18):
        raise UpstreamError("malformed Content-Length from upstream")
    length = int(declared) if declared is not None else None
    if method == "HEAD" or status in (204, 304):
        framing = "none"
    elif encoding is not None:
        if encoding.lower() != "chunked":
            raise UpstreamError(f"transfer coding {encoding!r} from upstream")
        framing = "chunked"
    else:
        framing = "length" if length is not None else "close"
    return UpstreamResponse(
        pool,
        key,
        connection,
        status=status,
        headers=headers,
        length=length,
        framing=framing,
        reusable=reusable,
    )


def _fields(block: bytes) -> dict[str, str]:
    """Header lines (each after a CRLF; their shape checked by `_HEAD`) as lower-cased names to values,
    repeated ones joined by commas as RFC 9110 allows; a repeated Content-Length or Transfer-Encoding is
    refused."""
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("utf-8", "surrogateescape")
        if key in headers:
            if key in ("content-length", "transfer-encoding"):
                raise UpstreamError(f"{key} sent twice by upstream")
            headers[key] += ", " + text
        else:
            headers[key] = text
    return headers

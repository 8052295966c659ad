"""HTTP/1.1 over a bare socket, for tests that must see every byte a server sends.

Requests go out pipelined on one connection, the last one closing it, and the answers are read to the
end of the connection and split by their own framing (a length, chunks, or none for HEAD, 1xx, 204 and
304). A client library would hide exactly what these tests look for: bytes a server sends where no
answer should be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from multidict import CIMultiDict

# Bounds a server that never closes; no test depends on how long anything takes.
READ_LIMIT_SECONDS = 30.0


@dataclass(frozen=True)
class RawAnswer:
    """One answer as it came off the connection."""

    status: int
    headers: CIMultiDict[str]
    body: bytes


@dataclass(frozen=True)
class RawRequest:
    """One request to send: its method and target, and headers of its own."""

    method: str
    target: str
    headers: Mapping[str, str]


def request_bytes(request: RawRequest, host: str, *, closing: bool) -> bytes:
    """The request as it goes on the wire (no body: these tests only send HEAD and GET)."""
    lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    if closing:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunked(data: bytes, start: int) -> tuple[bytes, int]:
    """A chunked body from `start`: the body, and where the answer after it starts."""
    body = b""
    at = start
    while True:
        end = data.index(b"\r\n", at)
        size = int(data[at:end].split(b";", 1)[0], 16)
        at = end + 2
        if size == 0:
            # No trailers are sent here: the last chunk is followed by the blank line alone.
            assert data[at : at + 2] == b"\r\n", f"trailers or garbage after the last chunk: {data[at:]!r}"
            return body, at + 2
        body += data[at : at + size]
        assert data[at + size : at + size + 2] == b"\r\n", "a chunk not ended by CRLF"
        at += size + 2


def split_answers(data: bytes, methods: Sequence[str]) -> tuple[list[RawAnswer], bytes]:
    """The answers to requests of these methods, in order, and whatever bytes followed the last one.

    Fails when an answer does not start where the one before it ended: the sign of a body where the
    framing said there was none.
    """
    answers: list[RawAnswer] = []
    at = 0
    for n, method in enumerate(methods):
        assert data.startswith(b"HTTP/1.1 ", at), (
            f"answer {n} ({method}) does not start with a status line: {data[at : at + 200]!r}"
        )
        end = data.index(b"\r\n\r\n", at)
        status_line, *lines = data[at:end].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines:
            name, value = line.split(":", 1)
            headers.add(name.strip(), value.strip())
        at = end + 4
        if method == "HEAD" or status < 200 or status in (204, 304):
            body = b""
        elif headers.get("Transfer-Encoding", "").lower() == "chunked":
            body, at = _chunked(data, at)
        elif "Content-Length" in headers:
            length = int(headers["Content-Length"])
            body = data[at : at + length]
            assert len(body) == length, f"answer {n} ({method}) cut short: {len(body)} of {length} bytes"
            at += length
        else:  # no framing: the body runs to the end of the connection
            body, at = data[at:], len(data)
        answers.append(RawAnswer(status, headers, body))
    return answers, data[at:]


async def exchange(host: str, port: int, requests: Sequence[RawRequest]) -> tuple[list[RawAnswer], bytes]:
    """Send the requests pipelined on one new connection (the last asks to close it), read everything the
    server sends until it closes, and split it into answers; also the bytes after the last answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            b"".join(
                request_bytes(request, f"{host}:{port}", closing=n == len(requests) - 1)
                for n, request in enumerate(requests)
            )
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), READ_LIMIT_SECONDS)
    finally:
        writer.close()
        await writer.wait_closed()
    return split_answers(data, [request.method for request in requests])

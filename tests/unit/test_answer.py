"""`gateway.answer`: a short upstream answer reaches the caller exactly as `web.Response` would send it.

A real aiohttp server answers each request twice over, once through `answer` and once through
`web.Response`, behind a middleware that adds headers after the handler as the gateway's does; raw
sockets read both, and the bytes must be the same (the Date header's value aside). Requests come kept
alive and pipelined, closing, and in HTTP/1.0, with every method and a range of statuses and bodies, so
both of `answer`'s ways are exercised (the test checks which one served)."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.answer import answer

STATUSES = [200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503]
BODIES = {"empty": b"", "json": b'{"ok":true}', "utf8": '{"name":"caf\u00e9"}'.encode(), "64k": b"x" * 65536}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")
USED = web.AppKey("used", list[str])
PREPARED = "X-Prepared"


async def handler(request: web.Request) -> web.StreamResponse:
    """`/short/...` through `answer`, `/plain/...` through `web.Response`: status and body from the path."""
    status = int(request.match_info["status"])
    body = BODIES[request.match_info["body"]]
    headers = {"Content-Type": "application/json"}
    if status == 405:
        headers["Allow"] = "GET, POST"
    if status in (429, 503):
        headers["Retry-After"] = "1"
    if request.match_info["way"] == "short":
        response = answer(request, status, headers, body)
        request.app[USED].append(type(response).__name__)
    else:
        response = web.Response(body=body, status=status, headers=headers)
    if request.query.get("close"):  # what the gateway's middleware does after a chunked request
        response.force_close()
    return response


@web.middleware
async def tagging(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Headers set on the answer after the handler, as `GatewayMiddleware` sets its own."""
    response = await handler(request)
    response.headers["X-Request-ID"] = "r-1"
    response.headers["Server"] = "collections-hub"
    return response


async def mark_prepared(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers[PREPARED] = "yes"


async def serve(with_signal: bool) -> tuple[web.AppRunner, int, list[str]]:
    app = web.Application(middlewares=[tagging])
    app[USED] = []
    app.router.add_route("*", "/{way}/{status}/{body}", handler)
    if with_signal:
        app.on_response_prepare.append(mark_prepared)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, port, app[USED]


@pytest.fixture(params=[False, True], ids=["no-signal", "prepare-signal"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, list[str]]]:
    runner, port, used = await serve(request.param)
    yield port, used
    await runner.cleanup()


async def read_answer(reader: asyncio.StreamReader, method: str, closing: bool) -> bytes:
    """One answer off the connection: its head, then its body by Content-Length (none for HEAD, 204,
    304), or to the end of a closing connection that gave no length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status = int(head.split(b" ", 2)[1])
    length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    if method == "HEAD" or status in (204, 304):
        return head
    if length is not None:
        return head + await asyncio.wait_for(reader.readexactly(int(length.group(1))), timeout=10)
    assert closing, f"a kept-alive answer without a length: {head!r}"
    return head + await asyncio.wait_for(reader.read(), timeout=10)


async def exchange(
    port: int, version: str, connection: str | None, requests: list[tuple[str, str]]
) -> list[bytes]:
    """Send the requests on one connection at once (pipelined; only the first when it closes the connection)
    and read an answer for each. Date values are masked."""
    closing = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
    requests = requests[:1] if closing else requests  # nothing may follow a closing request
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = b""
    for method, target in requests:
        lines = [f"{method} {target} {version}", f"Host: 127.0.0.1:{port}"]
        if connection is not None:
            lines.append(f"Connection: {connection}")
        payload = b"{}" if method in ("POST", "PUT", "PATCH") else b""
        if payload:
            lines.append(f"Content-Length: {len(payload)}")
        sent += ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    writer.write(sent)
    await writer.drain()
    answers = []
    for method, _ in requests:
        answers.append(DATE.sub(b"\r\nDate: <date>\r\n", await read_answer(reader, method, closing)))
    writer.close()
    return answers


@pytest.mark.parametrize(
    ("version", "connection"),
    [
        ("HTTP/1.1", None),
        ("HTTP/1.1", "keep-alive"),
        ("HTTP/1.1", "close"),
        ("HTTP/1.0", None),
        ("HTTP/1.0", "keep-alive"),
    ],
)
async def test_the_short_answer_sends_the_bytes_web_response_sends(
    server: tuple[int, list[str]], version: str, connection: str | None
) -> None:
    port, used = server
    for method, status, body in itertools.product(METHODS, STATUSES, BODIES):
        # Two answers on one connection: the second shows the first left it ready to go on.
        targets = [f"/{status}/{body}", "/200/json"]
        short = await exchange(port, version, connection, [(method, f"/short{t}") for t in targets])
        plain = await exchange(port, version, connection, [(method, f"/plain{t}") for t in targets])
        assert short == plain, (method, status, body)
    if version == "HTTP/1.1" and connection != "close":
        assert "ShortAnswer" in used, "the kept-alive HTTP/1.1 requests never took the short way"
        assert "Response" in used, "HEAD, 204 and 304 must take aiohttp's own way"
    else:
        assert set(used) == {"Response"}, "only kept-alive HTTP/1.1 requests may take the short way"


async def test_a_forced_close_is_said_and_done_as_web_response_does(server: tuple[int, list[str]]) -> None:
    """An answer the middleware marks `force_close()` carries `Connection: close`, byte for byte what
    `web.Response` sends, and the connection ends after it."""
    port, _ = server
    for method, status, body in itertools.product(METHODS, STATUSES, BODIES):
        target = f"/{status}/{body}?close=1"
        short = await exchange(port, "HTTP/1.1", None, [(method, f"/short{target}")])
        plain = await exchange(port, "HTTP/1.1", None, [(method, f"/plain{target}")])
        assert short == plain, (method, status, body)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /short/200/json?close=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    answer_bytes = await asyncio.wait_for(reader.read(), timeout=10)  # to the end: the server closed
    assert b"\r\nConnection: close\r\n" in answer_bytes
    assert answer_bytes.endswith(b'{"ok":true}')
    writer.close()


async def test_a_caller_that_hangs_up_before_its_answer_harms_no_other(server: tuple[int, list[str]]) -> None:
    """The caller leaves before its short answer is written: the server goes on serving the next one."""
    port, used = server
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /short/200/64k HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    writer.close()
    await asyncio.sleep(0.05)
    [again] = await exchange(port, "HTTP/1.1", None, [("GET", "/short/200/json")])
    assert again.startswith(b"HTTP/1.1 200 OK\r\n")
    assert again.endswith(b'{"ok":true}')
    assert used[-1] == "ShortAnswer"

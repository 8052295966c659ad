"""HEAD answers of a service app carry no body, streamed ones included, and the connection stays in step.

A real aiohttp server built by `shared.web.create_service_app` serves a streamed JSON answer
(`catalog_service.streaming.stream_json`), a handler writing a `StreamResponse` by hand, and plain
`web.Response`s; raw sockets send HEAD and GET pipelined on one connection and read every byte back
(`tests/raw_http.py`), so a body sent to HEAD shows as bytes where the GET's answer should start.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import SecretStr

from catalog_service.streaming import Counted, stream_json
from shared.principal import internal_headers
from shared.settings import ServiceSettings
from shared.web import create_service_app
from tests.raw_http import RawRequest, exchange, split_answers

SECRET = "unit-head-secret"
MEMBERS = [f"node-{n}" for n in range(2000)]  # past one 64 KiB flush of the streaming writer
STREAMED = {"name": "c\u00e9", "members": MEMBERS, "added": 2, "total": len(MEMBERS)}
STARTED = web.AppKey("started", list[str])
WRITTEN = b'{"written":true}'


async def streamed(request: web.Request) -> web.StreamResponse:
    """A collection-like answer whose member list is an async iterator, its total computed at the end."""

    async def members() -> AsyncIterator[str]:
        request.app[STARTED].append(request.method)
        for member in MEMBERS:
            yield member

    counted = Counted(members())
    return await stream_json(
        request, {"name": "c\u00e9", "members": counted, "added": 2, "total": lambda: counted.count}
    )


async def written(_request: web.Request) -> web.StreamResponse:
    """A handler that writes its own `StreamResponse`, with no length: what a future handler might do."""
    response = web.StreamResponse()
    response.content_type = "application/json"
    await response.prepare(_request)
    await response.write(WRITTEN)
    await response.write_eof()
    return response


async def plain(_request: web.Request) -> web.Response:
    """A whole JSON body: aiohttp sends it with its length, and none of it to HEAD."""
    return web.json_response({"plain": True})


async def created(_request: web.Request) -> web.Response:
    """A route with no GET: HEAD to it is a 405."""
    return web.json_response({"created": True}, status=201)


def add_routes(app: web.Application) -> None:
    """The test routes (aiohttp answers HEAD on every GET route)."""
    app[STARTED] = []
    app.router.add_get("/streamed", streamed)
    app.router.add_get("/written", written)
    app.router.add_get("/plain", plain)
    app.router.add_post("/created", created)


async def serve(app: web.Application) -> AsyncIterator[tuple[int, web.Application]]:
    """The app on a real server on a free port, cleaned up after."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], app
    finally:
        await runner.cleanup()


@pytest.fixture
async def service() -> AsyncIterator[tuple[int, web.Application]]:
    """A service app as the services build theirs, with the test routes."""
    app = create_service_app(ServiceSettings(service_name="head-test", internal_secret=SecretStr(SECRET)))
    add_routes(app)
    async for served in serve(app):
        yield served


@pytest.fixture
async def bare() -> AsyncIterator[tuple[int, web.Application]]:
    """A bare aiohttp app (no service assembly) with the same routes."""
    app = web.Application()
    add_routes(app)
    async for served in serve(app):
        yield served


HEADERS = internal_headers(SECRET, None, None)


def request(method: str, target: str) -> RawRequest:
    """A request with the internal credential the service app requires."""
    return RawRequest(method, target, HEADERS)


async def test_head_to_a_streamed_answer_is_its_head_and_the_pipelined_get_gets_its_own_answer(
    service: tuple[int, web.Application],
) -> None:
    """HEAD to `stream_json`: 200, the GET's content type, zero body bytes, and its iterator never started;
    the GET right behind it on the same connection gets the whole, correct body, and nothing follows."""
    port, app = service
    (head, get), rest = await exchange(
        "127.0.0.1", port, [request("HEAD", "/streamed"), request("GET", "/streamed")]
    )
    assert (head.status, head.headers["Content-Type"]) == (200, "application/json; charset=utf-8")
    assert "Content-Length" not in head.headers
    assert "Transfer-Encoding" not in head.headers
    assert head.body == b""
    assert get.status == 200
    assert get.headers["Transfer-Encoding"] == "chunked"
    assert json.loads(get.body) == STREAMED
    assert rest == b""
    assert app[STARTED] == ["GET"]  # HEAD ran no query for members nobody reads


async def test_get_of_a_streamed_answer_is_unchanged(service: tuple[int, web.Application]) -> None:
    """GET's body is the compact ASCII JSON it always was, byte for byte."""
    port, _ = service
    (get,), rest = await exchange("127.0.0.1", port, [request("GET", "/streamed")])
    assert get.body == json.dumps(STREAMED, separators=(",", ":")).encode()
    assert rest == b""


@pytest.mark.parametrize(
    ("target", "status"), [("/streamed", 200), ("/written", 200), ("/plain", 200), ("/created", 405)]
)
async def test_every_head_is_bodiless_and_leaves_the_connection_in_step(
    service: tuple[int, web.Application], target: str, status: int
) -> None:
    """On every kind of route, HEAD, HEAD again and a GET pipelined: two heads without bodies, then the
    same GET answer as on a connection of its own."""
    port, _ = service
    (alone,), _ = await exchange("127.0.0.1", port, [request("GET", target)])
    answers, rest = await exchange(
        "127.0.0.1", port, [request("HEAD", target), request("HEAD", target), request("GET", target)]
    )
    first, second, get = answers
    assert (first.status, second.status) == (status, status)
    assert (first.body, second.body) == (b"", b"")
    assert (get.status, get.body) == (alone.status, alone.body)
    assert rest == b""
    if "Content-Length" in alone.headers:  # a whole body: HEAD states its length, as RFC 9110 allows
        assert first.headers["Content-Length"] == alone.headers["Content-Length"]


async def test_plain_responses_send_no_body_to_head_on_a_bare_app(bare: tuple[int, web.Application]) -> None:
    """aiohttp itself drops a `web.Response`'s body for HEAD (and keeps its length): plain answers need
    no help, on an app without the services' assembly."""
    port, _ = bare
    (head, get), rest = await exchange(
        "127.0.0.1", port, [RawRequest("HEAD", "/plain", {}), RawRequest("GET", "/plain", {})]
    )
    assert (head.status, head.body) == (200, b"")
    assert head.headers["Content-Length"] == str(len(get.body))
    assert json.loads(get.body) == {"plain": True}
    assert rest == b""


async def test_without_the_services_assembly_aiohttp_sends_a_written_body_to_head(
    bare: tuple[int, web.Application],
) -> None:
    """Why `shared.web.discard_head_body` exists: on a bare app, what a `StreamResponse` writes to HEAD
    goes out unframed after the head, where the client expects its next answer."""
    port, _ = bare
    (head,), data = await exchange("127.0.0.1", port, [RawRequest("HEAD", "/written", {})])
    assert (head.status, head.body) == (200, b"")
    assert data == WRITTEN
    # Pipelined with a GET, the stray bytes stand where the GET's answer should begin.
    with pytest.raises(AssertionError, match="does not start with a status line"):
        await exchange(
            "127.0.0.1", port, [RawRequest("HEAD", "/written", {}), RawRequest("GET", "/plain", {})]
        )


def test_split_answers_reads_chunks_lengths_and_heads() -> None:
    """The raw reader the tests above rely on frames each kind of answer and returns what follows."""
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\nrest"
    )
    answers, rest = split_answers(data, ["HEAD", "GET", "GET"])
    assert [(a.status, a.body) for a in answers] == [(200, b""), (200, b"abcde"), (204, b"")]
    assert rest == b"rest"

"""Slow and many connections: a body that stops coming gets 408 and a closed connection, and one address
holds at most `HUB_MAX_CONNECTIONS_PER_ADDRESS` connections at once (docs/security.md, "Slow and many
connections").

The gateway here is served the way its process serves it (`shared.runner.start_sites` after
`gateway.front.install_front`), in front of the session stack's real services.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from pydantic import SecretStr

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack
from gateway.app import create_app
from gateway.front import install_front
from gateway.server import connection_cap_share
from gateway.settings import GatewaySettings
from shared.runner import listen, service_runner, start_sites
from tests.support import Hub

# Every wait for the gateway is bounded: a test fails rather than hangs.
WAIT = 10.0

Served = Callable[..., AbstractAsyncContextManager[int]]


@pytest.fixture
def served_gateway(stack: EmbeddedStack) -> Served:
    """A gateway of its own (settings overridden) served as `gateway.server.serve_one` serves: its port."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[int]:
        port = free_port()
        settings = GatewaySettings(
            host="127.0.0.1",
            port=port,
            catalog_url=",".join(stack.replica_urls("catalog_service")),
            access_url=",".join(stack.replica_urls("access_service")),
            history_url=",".join(stack.replica_urls("history_service")),
            internal_secret=SecretStr(stack.internal_secret),
            jwt_secret=SecretStr(stack.jwt_secret),
            **overrides,
        )
        runner = service_runner(create_app(settings), settings)
        await runner.setup()
        try:
            assert install_front(runner)
            sock = listen("127.0.0.1", port)
            cap = connection_cap_share(settings)
            await start_sites(runner, settings, [sock], connections_per_address=cap)
            yield port
        finally:
            await runner.cleanup()

    return start


def head_of(target: str, key: str, length: int) -> bytes:
    """A POST's head announcing a body of `length` bytes, kept alive."""
    return (
        f"POST {target} HTTP/1.1\r\nHost: hub\r\nX-API-KEY: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One answer with a Content-Length: status, headers (lower-case names), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.strip().lower(): value.strip() for name, _, value in (ln.partition(":") for ln in lines)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), WAIT)
    return int(status_line.split()[1]), headers, body


async def test_a_stalled_body_gets_408_and_the_connection_closes(hub: Hub, served_gateway: Served) -> None:
    """100,000 bytes announced, 10 sent, then nothing: 408 in dialect C's shape, then the connection
    closes (before the deadline, the gateway waited on the body forever)."""
    _, key = await hub.user_with_key()
    async with served_gateway(body_timeout_seconds=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head_of("/v1/collections", key, 100_000) + b'{"name": "')
            await writer.drain()
            status, headers, body = await read_answer(reader)
            assert status == 408
            assert json.loads(body) == {"error": "request body not received in time"}
            assert headers["connection"] == "close"
            assert await asyncio.wait_for(reader.read(), WAIT) == b""  # closed, nothing more
        finally:
            writer.close()


async def test_a_body_that_trickles_in_within_the_deadline_is_served(
    hub: Hub, served_gateway: Served
) -> None:
    """A body sent in five pieces, each after a pause, but complete within the deadline: created, with
    every byte of it (the deadline is for the whole body, not for the head alone)."""
    _, key = await hub.user_with_key()
    name = f"trickled-{uuid.uuid4().hex}"
    body = json.dumps({"name": name}).encode()
    pieces = [body[n : n + len(body) // 5 + 1] for n in range(0, len(body), len(body) // 5 + 1)]
    async with served_gateway(body_timeout_seconds=5.0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head_of("/v1/collections", key, len(body)))
            for piece in pieces:
                await writer.drain()
                await asyncio.sleep(0.1)
                writer.write(piece)
            await writer.drain()
            status, headers, answer = await read_answer(reader)
            assert status == 200, answer
            assert json.loads(answer)["collection"]["name"] == name
            assert headers.get("connection") != "close"
        finally:
            writer.close()


async def answered(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A connection that got an answer to `GET /healthz` and stays open; None if the gateway closed it
    without one."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        await writer.drain()
        status, _, _ = await read_answer(reader)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
        return None
    assert status == 200
    return reader, writer


async def test_one_address_holds_at_most_its_cap_of_connections(served_gateway: Served) -> None:
    """With a cap of 3: three connections are served and stay open, a fourth from the same address is
    closed without an answer, and once one of the three closes a new one is served again."""
    async with served_gateway(max_connections_per_address=3) as port:
        held = [await answered(port) for _ in range(3)]
        try:
            assert all(held)
            assert await answered(port) is None
            assert await answered(port) is None  # still refused: a refusal frees nothing
            first = held.pop(0)
            assert first is not None
            first[1].close()
            await first[1].wait_closed()
            # The gateway notices the close on its own time: retry, bounded.
            again = None
            for _ in range(50):
                if (again := await answered(port)) is not None:
                    break
                await asyncio.sleep(0.1)
            assert again is not None
            held.append(again)
        finally:
            for connection in held:
                if connection is not None:
                    connection[1].close()

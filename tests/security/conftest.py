"""Fixtures for the security tests: raw HTTP (bytes exactly as an attacker sends them) and gateways with
settings of their own in front of the session stack's real services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from pydantic import SecretStr

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack
from gateway.app import create_app
from gateway.front import install_front
from gateway.settings import GatewaySettings


@dataclass
class RawResponse:
    """What came back, unparsed."""

    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(
    base_url: str, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> RawResponse:
    """Send one HTTP/1.1 request with the request target byte for byte as given (no client normalising)."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "surrogateescape") + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=15)
    writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    if parsed.get("transfer-encoding") == "chunked":
        payload = _unchunk(payload)
    return RawResponse(int(status_line.split()[1]), parsed, payload)


def _unchunk(payload: bytes) -> bytes:
    body = b""
    while payload:
        size_line, _, rest = payload.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, payload = body + rest[:size], rest[size + 2 :]
    return body


GatewayFactory = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def gateway_with(stack: EmbeddedStack) -> GatewayFactory:
    """A gateway of its own (settings overridden) in front of the session stack's services: its URL. With
    `front=False`, every request goes through aiohttp's application dispatch (`gateway.front` skipped)."""

    @asynccontextmanager
    async def start(*, front: bool = True, **overrides: Any) -> AsyncIterator[str]:
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
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        if front:
            assert install_front(runner)  # as the gateway's process serves: proxied paths skip the router
        for listen_port in (port, settings.metrics_port):
            if listen_port is not None:
                await web.TCPSite(runner, "127.0.0.1", listen_port).start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()

    return start

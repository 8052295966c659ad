"""Fixtures for one service app in-process, served over real HTTP on real MongoDB and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

INTERNAL_SECRET = "integration-internal-secret"

AppRunner = Callable[[web.Application], AbstractAsyncContextManager[TestClient[web.Request, web.Application]]]


@asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def serve() -> AppRunner:
    """Serve an app on a loopback port for the duration of an `async with`."""
    return _serve

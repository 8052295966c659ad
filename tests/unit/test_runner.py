"""`shared.runner`: how long a client's idle kept-alive connection stays open (`HUB_KEEPALIVE_SECONDS`)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from collections_hub.processes import free_port
from shared.runner import service_runner
from shared.settings import ServiceSettings


async def ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def idle_lifetime(settings: ServiceSettings, give_up_after: float) -> float | None:
    """Seconds from an answer on a kept-alive connection until the server closed it (None: still open
    after `give_up_after`)."""
    app = web.Application()
    app.router.add_get("/", ok)
    runner = service_runner(app, settings)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        await reader.readexactly(2)  # "ok"
        answered = time.monotonic()
        try:
            rest = await asyncio.wait_for(reader.read(), timeout=give_up_after)
        except TimeoutError:
            return None
        finally:
            writer.close()
        assert rest == b""  # closed, nothing more sent
        return time.monotonic() - answered
    finally:
        await runner.cleanup()


async def test_an_idle_connection_closes_after_the_keepalive() -> None:
    """Closed about `keepalive_seconds` after its last answer: not at once, not much later."""
    lifetime = await idle_lifetime(ServiceSettings(keepalive_seconds=1.0), give_up_after=10)
    assert lifetime is not None
    assert 0.8 <= lifetime < 3


async def test_the_default_keepalive_is_75_seconds() -> None:
    """What `web.run_app` used: aiohttp's own default (an hour) would hold idle clients' sockets open."""
    assert ServiceSettings().keepalive_seconds == 75
    assert await idle_lifetime(ServiceSettings(), give_up_after=2) is None

"""`shared.connections` as every service is served (`shared.runner.start_sites`): the body deadline
answers in the dialect's shape, and connection counts stay exact."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from collections_hub.processes import free_port
from gateway.server import connection_cap_share
from gateway.settings import GatewaySettings
from shared.connections import AddressCounts
from shared.errors import error_middleware
from shared.runner import listen, service_runner, start_sites
from shared.settings import ServiceSettings

WAIT = 10.0


async def echo(request: web.Request) -> web.Response:
    """The request's JSON body, back."""
    return web.json_response(await request.json())


async def stalled_answer(target: str) -> bytes:
    """Everything a service answers to a POST to `target` whose body stops after 2 of 50 bytes."""
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/{tail:.*}", echo)
    settings = ServiceSettings(body_timeout_seconds=0.3)
    runner = service_runner(app, settings)
    await runner.setup()
    port = free_port()
    await start_sites(runner, settings, [listen("127.0.0.1", port)])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{{}}".encode())
            await writer.drain()
            return await asyncio.wait_for(reader.read(), WAIT)  # until the service closes
        finally:
            writer.close()
    finally:
        await runner.cleanup()


async def test_a_service_answers_a_stalled_body_with_408_in_the_dialects_shape() -> None:
    """Services get the deadline too: dialect A's error shape on its paths, dialect C's on `/v1/`, and
    the connection closed after the answer."""
    for target, expected in [
        (
            "/namespaces/n/collections",
            {"statusCode": 408, "message": "request body not received in time", "error": "Request Timeout"},
        ),
        ("/v1/collections", {"error": "request body not received in time"}),
    ]:
        answer = await stalled_answer(target)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), head
        assert b"\r\nConnection: close" in head
        assert json.loads(body) == expected


def test_address_counts_admit_up_to_the_limit_and_release() -> None:
    """Each address has its own count; a refusal counts nothing, a release makes room for one more."""
    counts = AddressCounts(2)
    assert counts.admit("10.0.0.1")
    assert counts.admit("10.0.0.1")
    assert not counts.admit("10.0.0.1")
    assert counts.admit("10.0.0.2")
    assert counts.open("10.0.0.1") == 2
    counts.release("10.0.0.1")
    assert counts.admit("10.0.0.1")
    counts.release("10.0.0.2")
    assert counts.open("10.0.0.2") == 0


def test_defaults_and_each_gateway_workers_share_of_the_cap() -> None:
    """30 s for a body and 256 connections per address out of the box (README states both); with
    workers, each takes 1/N of the cap and at least 1, and 0 stays off."""
    assert ServiceSettings().body_timeout_seconds == 30
    assert connection_cap_share(GatewaySettings()) == 256
    assert connection_cap_share(GatewaySettings(max_connections_per_address=256, gateway_workers=4)) == 64
    assert connection_cap_share(GatewaySettings(max_connections_per_address=2, gateway_workers=4)) == 1
    assert connection_cap_share(GatewaySettings(max_connections_per_address=0, gateway_workers=4)) == 0

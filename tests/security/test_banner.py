"""No server version and no echo of request bytes in any answer, including aiohttp's own parse errors;
the gateway's `/metrics` is for admins only."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack
from tests.security.conftest import GatewayFactory, RawResponse, raw_request
from tests.support import Hub

SECRET_LOOKING = "Bearer hk_0123456789abcdef.SECRET-TOKEN-MATERIAL-" + "x" * 9000


async def raw_bytes(base_url: str, data: bytes) -> RawResponse:
    """Send bytes as they are (not necessarily HTTP) and read the answer."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=15)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return RawResponse(int(status_line.split()[1]), headers, body)


def assert_quiet(response: RawResponse, *echoes: bytes) -> None:
    """A JSON error with our own server name, quoting none of the given request bytes."""
    assert 400 <= response.status < 500
    assert response.headers.get("server") == "collections-hub"
    assert b"aiohttp" not in response.body
    assert b"Python" not in response.body
    assert all(echo not in response.body for echo in echoes), response.body
    assert set(json.loads(response.body)) == {"error"}


def all_urls(stack: EmbeddedStack) -> list[str]:
    """The gateway and every service process."""
    return [stack.gateway_url, *stack.service_urls.values()]


async def test_oversized_header_is_answered_without_echo(stack: EmbeddedStack) -> None:
    """A header over 8 KB (a bearer token among its bytes): 400, no banner, none of the header quoted."""
    for url in all_urls(stack):
        response = await raw_request(url, "GET", "/v1/me", {"Authorization": SECRET_LOOKING})
        assert_quiet(response, b"SECRET-TOKEN", b"hk_0123")


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"G\x01T /v1/me HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/me HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /v1/me?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: x\r\nBad Header Name: secret-value\r\n\r\n",
        b"GET /v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03secret-tls-hello\r\n\r\n",
    ],
)
async def test_malformed_requests_are_answered_without_echo(
    stack: EmbeddedStack, request_bytes: bytes
) -> None:
    """A malformed method, version, over-long line, header name or length, or a TLS hello: a quiet 400."""
    for url in all_urls(stack):
        response = await raw_bytes(url, request_bytes)
        assert_quiet(response, b"secret", b"qqqq", b"\x01")


async def test_unknown_method_is_answered_without_echo(hub: Hub) -> None:
    """An unknown method is a quiet 400; a known one a route lacks is the dialect's 405."""
    unknown = await raw_request(hub.url, "BREWCOFFEE", "/v1/me", hub.admin())
    assert_quiet(unknown, b"BREW")
    wrong = await raw_request(hub.url, "PATCH", "/v1/me", hub.admin())
    assert wrong.status == 405
    assert wrong.headers["server"] == "collections-hub"
    assert json.loads(wrong.body) == {"error": "method not allowed"}


async def test_every_answer_names_no_version(hub: Hub, stack: EmbeddedStack) -> None:
    """Success, 401, 404 and probe answers all carry `Server: collections-hub` only."""
    for url, path, headers in (
        (hub.url, "/v1/me", hub.admin()),
        (hub.url, "/v1/me", {}),
        (hub.url, "/nope", hub.admin()),
        (hub.url, "/readyz", {}),
        *((service, "/healthz", {}) for service in stack.service_urls.values()),
    ):
        response = await raw_request(url, "GET", path, headers)
        assert response.headers["server"] == "collections-hub", (url, path)


async def test_gateway_metrics_need_the_admin_role(hub: Hub) -> None:
    """`/metrics` on the gateway: 401 without credentials, 403 for a user, the exposition for an admin."""
    _, key = await hub.user_with_key()
    assert (await hub.call("GET", "/metrics", headers={})).status == 401
    assert (await hub.call("GET", "/metrics", key=key)).status == 403
    response = await hub.call("GET", "/metrics")
    assert response.status == 200
    assert "http_requests_total" in await response.text()


async def test_metrics_port_serves_only_metrics(hub: Hub, gateway_with: GatewayFactory) -> None:
    """With `HUB_METRICS_PORT`, that listener answers `/metrics` to a scraper without credentials and
    nothing else (not even with an admin key); the public port still wants the admin role."""
    metrics_port = free_port()
    async with gateway_with(metrics_port=metrics_port) as url:
        scrape = f"http://127.0.0.1:{metrics_port}"
        assert (await raw_request(scrape, "GET", "/metrics")).status == 200
        for path in ("/v1/me", "/v1/collections", "/admin/users", "/readyz", "/metrics/../v1/me"):
            assert 400 <= (await raw_request(scrape, "GET", path, hub.admin())).status < 500, path
        assert (await raw_request(url, "GET", "/metrics")).status == 401
        assert (await raw_request(url, "GET", "/metrics", hub.admin())).status == 200

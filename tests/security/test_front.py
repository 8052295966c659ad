"""The gateway's front (`gateway.front`) answers every request exactly as aiohttp's application dispatch
does: two gateways, one with the front and one without, get the same requests byte for byte and must give
the same answers and count the same metrics."""

from __future__ import annotations

import itertools
import re

from aiohttp import web

from gateway.app import create_app
from gateway.front import GatewayFront, Handler
from gateway.settings import GatewaySettings
from shared.principal import REQUEST_ID_HEADER
from tests.security.conftest import GatewayFactory, RawResponse, raw_request
from tests.support import Hub

# Own routes in every spelling the router might match, and paths near them that it must not.
OWN = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/v1/me",
    "/v1/%6De",
    "/v1/me/",
    "//v1/me",
    "/v1//me",
    "/V1/ME",
    "/v1%2Fme",
    "/openapi.json",
    "/openapi/a.json",
    "/openapi/admin.json",
    "/docs",
    "/docs/",
    "/docs/init.js",
    "/docs/static",
    "/docs/static/",
    "/docs/static/swagger-ui.css",
    "/docs/static/nothing.js",
    "/docs/static/../../etc/passwd",
    "/docs/static/%2e%2e/%2e%2e/etc/passwd",
    "/docs%2fstatic/swagger-ui.css",
]
# Proxied paths, good and hostile.
PROXIED = [
    "/v1/collections",
    "/v1/collections?pageSize=2",
    "/v1/collections/nothing-here",
    "/api/v2/collections",
    "/api/v2/collections/x/users",
    "/v1/assets/x",
    "/v1/collections/x/history",
    "/namespaces/ns/projects/p/collections/x/history",
    "/admin/users/1",
    "/namespaces/ns/projects/p/collections",
    "/nothing",
    "/",
    "/v1/collections/%2e%2e/%2e%2e/internal/collections/x",
    "/v1/collections/x/../../metrics",
    "/internal/principals/by-user/1",
    "/v1/collections/%00",
    "/%",
    "/%zz",
    "/v1/collections/%ff%fe",
    "/%c0%ae%c0%ae/%c0%ae%c0%ae/healthz",
    "/healthz%00",
    "/healthz/..",
    "/./healthz",
    "/v1/collections/" + "x" * 6000,
    # No route at all: not origin-form, or a decoded line break the catch-all's pattern does not match.
    "*",
    "example.com:443",
    "http://x",
    "http://localhost/healthz",
    "http://localhost/v1/me",
    "http://localhost/docs/static/swagger-ui.css",
    "http://localhost/v1/collections",
    "/v1/collections/%0a",
    "/v1/collections/a%0ab",
    "/healthz%0a",
    "/%0d%0a",
    "/v1/collections/x?%ff=1",
]
METHODS = ["GET", "HEAD", "POST", "DELETE", "PATCH", "OPTIONS", "CONNECT", "BREW"]
# Token buckets refill with time, which the two gateways see a little apart: off for the comparison.
NO_LIMITS = {
    "rate_limit_credential_per_second": 0,
    "rate_limit_address_per_second": 0,
    "rate_limit_auth_failures_per_second": 0,
}
# What may differ between two answers to the same request: the clock.
VARIABLE = {"date"}


def comparable(response: RawResponse) -> tuple[int, dict[str, str], object]:
    """An answer without what varies from one request to the next (a metrics page: its request counts;
    latencies and the process's own figures differ)."""
    headers = {name: value for name, value in response.headers.items() if name not in VARIABLE}
    if response.headers.get("content-type", "").startswith("text/plain; version="):
        headers.pop("content-length", None)
        return response.status, headers, request_totals(response.body)
    return response.status, headers, response.body


def request_totals(metrics: bytes) -> set[str]:
    """The `http_requests_total` samples of a `/metrics` page."""
    return {line for line in metrics.decode().splitlines() if line.startswith("http_requests_total{")}


async def test_the_front_answers_as_the_application_does(hub: Hub, gateway_with: GatewayFactory) -> None:
    """Every method on own routes and proxied paths, with no key, a user's and the admin's, with and without
    a body and `Expect: 100-continue`: the same status, headers and body from both gateways; then the same
    request counts by route label."""
    _, user_key = await hub.user_with_key()
    credentials = [{}, {"X-API-KEY": user_key}, hub.admin()]
    cases = []
    for path, method, headers in itertools.product(OWN + PROXIED, METHODS, credentials):
        cases.append((method, path, headers, b""))
    for path, headers in itertools.product(PROXIED[:4] + OWN[:5], credentials):
        for extra, body in [
            ({"Content-Type": "application/json"}, b'{"name": '),  # malformed: refused, nothing written
            ({"Content-Type": "application/json", "Expect": "100-continue"}, b'{"name": '),
            ({"Content-Type": "text/plain"}, b"x" * 5000),
        ]:
            cases.append(("POST", path, {**headers, **extra}, body))
    async with gateway_with(**NO_LIMITS) as fronted, gateway_with(front=False, **NO_LIMITS) as routed:
        for n, (method, path, headers, body) in enumerate(cases):
            sent = {**headers, REQUEST_ID_HEADER: f"front-{n:05d}"}
            expected = await raw_request(routed, method, path, sent, body)
            answered = await raw_request(fronted, method, path, sent, body)
            assert comparable(answered) == comparable(expected), (method, path, headers, body[:20])
            assert expected.status < 500, (method, path, expected.status, expected.body[:200])
        totals = [
            request_totals((await raw_request(url, "GET", "/metrics", hub.admin())).body)
            for url in (fronted, routed)
        ]
        assert totals[0] == totals[1]
        labels = {re.search(r'route="([^"]*)"', line).group(1) for line in totals[0]}  # type: ignore[union-attr]
        assert {"proxy:catalog", "proxy:access", "proxy:history", "/{tail}", "unmatched", "/v1/me"} <= labels
        continued = await raw_request(
            fronted, "POST", "/v1/collections", {"Expect": "100-continue", **hub.admin()}, b"{"
        )
        assert continued.status == 100  # the application's expect handler answered it
    assert len(cases) > 800


async def test_the_front_steps_aside_when_it_could_answer_differently() -> None:
    """Another middleware (tracing's) or a route of a shape the front does not know: no front."""

    async def routed(_request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    app = create_app(GatewaySettings())
    assert GatewayFront.for_app(app, routed) is not None
    app.router.add_get("/extra/{name}", routed)
    assert GatewayFront.for_app(app, routed) is None
    app = create_app(GatewaySettings())

    @web.middleware
    async def other(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await handler(request)

    app.middlewares.insert(0, other)
    assert GatewayFront.for_app(app, routed) is None
    app = create_app(GatewaySettings())

    async def prepared(_request: web.Request, _response: web.StreamResponse) -> None:
        return None

    app.on_response_prepare.append(prepared)  # sent only for requests the router matched
    assert GatewayFront.for_app(app, routed) is None

"""Path tricks against the gateway: no spelling of a path reaches an internal route, `/metrics` or a probe
of a service, and what the gateway accepts it forwards unchanged."""

from __future__ import annotations

import itertools
import json
from urllib.parse import quote

import pytest

from collections_hub.stack import EmbeddedStack
from shared.principal import FORWARDED_HEADER, SECRET_HEADER, derived_credential, internal_headers
from tests.security.conftest import RawResponse, raw_request
from tests.support import Hub

MOUNTS = [
    "/api/v2/collections/x",
    "/api/v2/collections/x/users/7",
    "/api/v2/collections/x/history",
    "/v1/collections/x",
    "/v1/collections/x/history",
    "/v1/assets/x",
    "/namespaces/ns/projects/p/collections/x",
    "/namespaces/ns/projects/p/collections/x/history",
    "/admin/users/1",
]
TARGETS = [
    "internal/principals/by-user/1",
    "internal/collections/x",
    "internal/visibility/1",
    "metrics",
]
UPS = ["..", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%252e%252e", "..;", "..;x", "%25%32%65%25%32%65"]
SEPARATORS = ["/", "%2f", "%2F", "\\", "%5c", "%255c", "%252f"]
# What an answer from an internal route or a metrics page would contain.
LEAKS = [b"admin@localhost", b"mongo_commands_total", b"owner_id", b"project_ids", b"collection_ids"]


def traversals() -> list[str]:
    """Every mount, climbing as far as it is deep (and further) in every spelling, to every target."""
    paths = []
    for mount, target, up, separator in itertools.product(MOUNTS, TARGETS, UPS, SEPARATORS):
        depth = mount.count("/")
        for climb in (depth, depth + 3):
            paths.append(f"{mount}/{(up + separator) * climb}{target}")
    return paths


def assert_refused(response: RawResponse, target: str) -> None:
    """A 4xx that leaks nothing and names no server version."""
    assert 400 <= response.status < 500, (target, response.status, response.body[:200])
    assert not any(leak in response.body for leak in LEAKS), target
    assert response.headers.get("server") == "collections-hub", target


async def test_no_traversal_reaches_an_internal_route(hub: Hub) -> None:
    """Thousands of dot-segment spellings on every mount, with a valid admin key: all refused, none leaks."""
    paths = traversals()
    assert len(paths) > 4000
    for path in paths:
        response = await raw_request(hub.url, "GET", path, hub.admin())
        assert_refused(response, path)


@pytest.mark.parametrize(
    "path",
    [
        "/internal/principals/by-user/1",
        "/internal/history/dead-letters/replay",
        "/v1/collections/x/../../../internal/principals/by-user/1",
        "/api/v2/collections/x/users/../../../../../internal/principals/by-user/1",
        "/v1//internal/principals/by-user/1",
        "//internal/principals/by-user/1",
        "/v1/collections/x%2f..%2f..%2f..%2finternal%2fprincipals%2fby-user%2f1",
        "/%69nternal/principals/by-user/1",
        "/v1/collections/%00/../../internal",
        "/v1/collections/%ff%fe",
        "/v1/collections/%ED%A0%80",
        "/v1/coll%65ctions",
        "/%61dmin/users",
        "/v1/collections/a%",
        "/v1/collections/a%zz",
        "http://127.0.0.1/internal/principals/by-user/1",
        "/v1/collections/x?/../../internal/principals/by-user/1",
    ],
)
async def test_odd_spellings_are_refused(hub: Hub, path: str) -> None:
    """Direct internal paths, empty segments, encoded unreserved or invalid bytes: a 4xx, no internal data."""
    for method in ("GET", "POST", "DELETE"):
        assert_refused(await raw_request(hub.url, method, path, hub.admin()), path)


async def test_overlong_path_is_414(hub: Hub) -> None:
    """A path longer than any route needs is refused before it is routed."""
    response = await raw_request(hub.url, "GET", "/v1/collections/" + "a" * 4000, hub.admin())
    assert response.status == 414
    assert json.loads(response.body) == {"error": "request path too long"}


async def test_refusals_are_in_the_dialect_format(hub: Hub) -> None:
    """A refused A path answers A's error body, B and C theirs."""
    a = await raw_request(hub.url, "GET", "/namespaces/ns/projects/p/collections/%2e%2e", hub.admin())
    assert json.loads(a.body) == {
        "statusCode": 400,
        "message": "malformed request path",
        "error": "Bad Request",
    }
    for path in ("/api/v2/collections/%2e%2e", "/v1/collections/%2e%2e"):
        response = await raw_request(hub.url, "GET", path, hub.admin())
        assert json.loads(response.body) == {"error": "malformed request path"}


async def test_names_with_reserved_characters_are_forwarded_unchanged(hub: Hub) -> None:
    """A dialect A name with `;`, `%`, spaces and non-ASCII letters is reached by its percent-encoded path."""
    slug = "sec-paths"
    await hub.call("POST", "/admin/namespaces", json={"slug": slug})
    await hub.call("POST", f"/admin/namespaces/{slug}/projects", json={"slug": "p"})
    base = f"/namespaces/{slug}/projects/p/collections"
    for name in ("semi;colon", "100% sure", "café ünïcode", "a+b=c&d", "dots.in.name", "tilde~x"):
        created = await hub.call("POST", base, json={"name": name})
        assert created.status in (201, 409), await created.text()
        response = await raw_request(hub.url, "GET", f"{base}/{quote(name, safe=';=&+~')}", hub.admin())
        assert response.status == 200, (name, response.body)
        assert json.loads(response.body)["name"] == name


@pytest.mark.parametrize("service", ["access_service", "catalog_service", "history_service"])
async def test_services_refuse_forwarded_requests_on_internal_routes(
    stack: EmbeddedStack, service: str
) -> None:
    """Defence in depth: the gateway's forwarding credential opens no internal route, probe or metrics."""
    url = stack.service_urls[service]
    forwarded = {FORWARDED_HEADER: derived_credential(stack.internal_secret, "forwarded")}
    for path in ("/internal/principals/by-user/1", "/internal/collections/x", "/metrics", "/readyz"):
        assert (await raw_request(url, "GET", path, forwarded)).status == 404, path
    # The old single secret, or the forwarding credential under the internal header, opens nothing.
    for headers in (
        {SECRET_HEADER: stack.internal_secret},
        {SECRET_HEADER: derived_credential(stack.internal_secret, "forwarded")},
        {},
    ):
        assert (await raw_request(url, "GET", "/internal/principals/by-user/1", headers)).status == 401


async def test_internal_credential_still_works_between_services(stack: EmbeddedStack) -> None:
    """The internal credential (services' and the gateway's own look-ups) opens internal routes."""
    url = stack.service_urls["access_service"]
    response = await raw_request(
        url, "GET", "/internal/principals/by-user/1", internal_headers(stack.internal_secret, None, None)
    )
    assert response.status == 200

"""Crafted bodies, path segments and queries: every answer is a 4xx in the dialect's format, never a 5xx,
and nothing is changed by a refused request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.security.conftest import raw_request
from tests.support import Hub

HUGE = 10**25
PAYLOADS: dict[str, bytes] = {
    "array nested 10,000 deep": b"[" * 10_000 + b"]" * 10_000,
    "object nested 10,000 deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "nested 40 deep": b'{"name": ' + b"[" * 40 + b"]" * 40 + b"}",
    "NaN": b'{"name": NaN, "title": NaN}',
    "Infinity": b'{"name": Infinity, "title": -Infinity}',
    "float overflowing to inf": b'{"name": 1e400}',
    "int64 + 1": b'{"name": 9223372036854775808, "user_ids": [9223372036854775808]}',
    "10**25": b'{"name": 10000000000000000000000000, "user_ids": [10000000000000000000000000]}',
    "lone surrogate": b'{"name": "\\ud800", "title": "\\udfff", "asset_id": "\\ud800"}',
    "NUL in a key": b'{"\\u0000": 1}',
    "NUL key deep": b'{"metadata": {"a\\u0000b": 1}}',
    "invalid UTF-8": b'{"name": "\xff\xfe"}',
    "not JSON": b"{not json",
    "a JSON array": b"[]",
    "a JSON string": b'"name"',
    "JSON null": b"null",
    "a number": b"42",
}


@dataclass
class World:
    """What the hostile requests aim at: one user's collections in every dialect, an asset, a group."""

    key: str
    a_base: str
    a_name: str
    b_id: str
    c_id: str
    asset_id: str
    group_id: int
    user_id: int


@pytest.fixture
async def world(hub: Hub) -> World:
    """A user (made an editor of a fresh A project) with one collection in each dialect."""
    user, key = await hub.user_with_key()
    slug = f"sec-in-{user['id']}"
    await hub.call("POST", "/admin/namespaces", json={"slug": slug})
    await hub.call("POST", f"/admin/namespaces/{slug}/projects", json={"slug": "p"})
    role = await hub.call(
        "PUT", f"/admin/namespaces/{slug}/projects/p/members/{user['id']}", json={"role": "editor"}
    )
    assert role.status in (200, 201), await role.text()
    a_base = f"/namespaces/{slug}/projects/p/collections"
    assert (await hub.call("POST", a_base, key=key, json={"name": "a-one"})).status == 201
    b = await hub.call("POST", "/api/v2/collections", key=key, json={"title": "b-one"})
    c = await hub.call("POST", "/v1/collections", key=key, json={"name": "c-one"})
    asset = await hub.call("POST", "/v1/assets", key=key, json={"name": "asset", "url": "https://x/a.png"})
    group = await hub.call("POST", "/admin/groups", json={"name": f"g-{user['id']}"})
    return World(
        key=key,
        a_base=a_base,
        a_name="a-one",
        b_id=(await b.json())["collection"]["id"],
        c_id=(await c.json())["collection"]["id"],
        asset_id=(await asset.json())["id"],
        group_id=(await group.json())["id"],
        user_id=user["id"],
    )


def body_routes(w: World) -> list[tuple[str, str, bool]]:
    """(method, path, as admin) of every route that reads a JSON body."""
    a = f"{w.a_base}/{w.a_name}"
    b = f"/api/v2/collections/{w.b_id}"
    c = f"/v1/collections/{w.c_id}"
    return [
        ("POST", w.a_base, False),
        ("PATCH", a, False),
        ("POST", f"{a}/members", False),
        ("DELETE", f"{a}/members", False),
        ("POST", w.a_base.removesuffix("/collections") + "/datasets", False),
        ("POST", "/api/v2/collections", False),
        ("PUT", b, False),
        ("POST", f"{b}/assets", False),
        ("DELETE", f"{b}/assets", False),
        ("POST", f"{b}/guests", False),
        ("POST", "/v1/collections", False),
        ("PUT", c, False),
        ("PUT", f"{c}/assets", False),
        ("DELETE", f"{c}/assets", False),
        ("PUT", f"{c}/models", False),
        ("DELETE", f"{c}/models", False),
        ("POST", "/v1/assets", False),
        ("POST", "/v1/models", False),
        ("POST", "/admin/namespaces", True),
        ("POST", "/admin/namespaces/personal/projects", True),
        ("POST", "/admin/users", True),
        ("POST", f"/admin/users/{w.user_id}/api-keys", True),
        ("POST", "/admin/groups", True),
        ("POST", f"/admin/groups/{w.group_id}/members", True),
        (
            "PUT",
            w.a_base.replace("/namespaces/", "/admin/namespaces/").removesuffix("/collections")
            + "/members/1",
            True,
        ),
    ]


async def snapshot(hub: Hub, w: World) -> Any:
    """What the user can see of its collections in every dialect (and the admin's group), to compare."""
    a = await hub.call("GET", f"{w.a_base}?pageSize=200", key=w.key)
    b = await hub.call("GET", "/api/v2/collections", key=w.key)
    c = await hub.call("GET", "/v1/collections?pageSize=100", key=w.key)
    group = await hub.call("GET", f"/admin/groups/{w.group_id}")
    return [await response.json() for response in (a, b, c, group)]


def assert_dialect_error(path: str, status: int, body: bytes) -> None:
    """A 4xx whose body is the dialect's error shape."""
    assert 400 <= status < 500, (path, status, body[:200])
    decoded = json.loads(body)
    if path.startswith("/namespaces/"):
        assert set(decoded) == {"statusCode", "message", "error"}
        assert decoded["statusCode"] == status
    else:
        assert set(decoded) == {"error"}, decoded


async def test_hostile_bodies_on_every_route_are_4xx_and_change_nothing(hub: Hub, world: World) -> None:
    """Deep, non-finite, out-of-range, unencodable and non-JSON bodies on every body route: 4xx, no change."""
    before = await snapshot(hub, world)
    for method, path, as_admin in body_routes(world):
        headers = hub.admin() if as_admin else {"X-API-KEY": world.key}
        for name, payload in PAYLOADS.items():
            response = await raw_request(
                hub.url, method, path, {**headers, "Content-Type": "application/json"}, payload
            )
            assert_dialect_error(f"{path} [{name}]", response.status, response.body)
    assert await snapshot(hub, world) == before


@pytest.mark.parametrize(
    "metadata",
    [
        b'{"a\\u0000": 1}',
        b'{"n": 9223372036854775808}',
        b'{"n": -9223372036854775809}',
        b'{"s": "\\udc00"}',
        b'{"\\ud83d": 1}',
        b'{"n": NaN}',
        b'{"n": Infinity}',
        b'{"$where": 1}',
        b'{"a.b": 1}',
        b'{"deep": ' + b'{"x": ' * 40 + b"1" + b"}" * 40 + b"}",
    ],
)
async def test_unstorable_metadata_is_400(hub: Hub, world: World, metadata: bytes) -> None:
    """Dialect A metadata that BSON cannot hold (or that smuggles operators) is a 400 and creates nothing."""
    body = b'{"name": "meta-x", "metadata": ' + metadata + b"}"
    headers = {"X-API-KEY": world.key, "Content-Type": "application/json"}
    response = await raw_request(hub.url, "POST", world.a_base, headers, body)
    assert response.status == 400, response.body
    assert json.loads(response.body)["statusCode"] == 400
    assert (await hub.call("GET", f"{world.a_base}/meta-x", key=world.key)).status == 404


async def test_storable_metadata_round_trips(hub: Hub, world: World) -> None:
    """The bounds are not too tight: int64 extremes, unicode and metadata 8 deep are stored and shown back."""
    metadata = {
        "max": 2**63 - 1,
        "min": -(2**63),
        "text": "ünïcode ✓",
        "deep": json.loads("[" * 7 + "]" * 7),
    }
    response = await hub.call(
        "POST", world.a_base, key=world.key, json={"name": "meta-ok", "metadata": metadata}
    )
    assert response.status == 201, await response.text()
    stored = await hub.call("GET", f"{world.a_base}/meta-ok", key=world.key)
    assert (await stored.json())["metadata"] == metadata


async def test_huge_ids_in_bodies_and_paths_are_4xx(hub: Hub, world: World) -> None:
    """Ids beyond int64 (or not decimal) in group members, shares and keys: a 4xx, never a 5xx."""
    members = await hub.call("POST", f"/admin/groups/{world.group_id}/members", json={"user_ids": [HUGE]})
    assert members.status == 400
    b = f"/api/v2/collections/{world.b_id}"
    for raw_id in (str(HUGE), "-1", "0", "³", "1e3", "0x10", "9223372036854775808", "%20"):
        for method, path, as_admin in (
            ("POST", f"{b}/users/{raw_id}", False),
            ("DELETE", f"{b}/users/{raw_id}", False),
            ("POST", f"{b}/user_groups/{raw_id}", False),
            ("POST", f"/admin/users/{raw_id}/api-keys", True),
            ("GET", f"/admin/groups/{raw_id}", True),
            ("DELETE", f"/admin/groups/{world.group_id}/members/{raw_id}", True),
        ):
            key = None if as_admin else world.key
            response = await hub.call(method, path, key=key, json={"name": "k"})
            assert 400 <= response.status < 500, (method, path, response.status)


@pytest.mark.parametrize(
    ("dialects", "query"),
    [
        ("AC", "pageSize=99999999999999999999999"),
        ("AC", "pageSize=-1"),
        ("AC", "pageSize=1e400"),
        ("AC", "pageSize=NaN"),
        ("AC", "pageSize=%00"),
        ("A", "page=99999999999999999999999"),
        ("A", "page=1.5"),
        ("A", "datasetId=%00"),
        ("C", "paginationToken=" + "A" * 5000),
        ("C", "paginationToken=%ff%fe"),
        # Numbers not written in plain digits (pydantic alone reads each of these as 5 or 50).
        ("AC", "pageSize=%2B5"),
        ("AC", "pageSize=%205"),
        ("AC", "pageSize=5.0"),
        ("AC", "pageSize=5_0"),
        ("A", "page=%2B1"),
        # A parameter given twice: which would count is a guess.
        ("AC", "pageSize=1&pageSize=100"),
    ],
)
async def test_hostile_queries_are_4xx(hub: Hub, world: World, dialects: str, query: str) -> None:
    """Out-of-range and malformed page parameters on the A and C lists: a 4xx in the dialect's format."""
    paths = {"A": f"{world.a_base}?{query}", "C": f"/v1/collections?{query}"}
    for dialect in dialects:
        response = await raw_request(hub.url, "GET", paths[dialect], {"X-API-KEY": world.key})
        assert_dialect_error(paths[dialect], response.status, response.body)


@pytest.mark.parametrize("body", [b"\n", b" ", b"\r\n\t "])
async def test_a_body_of_only_whitespace_is_not_json_and_changes_nothing(hub: Hub, body: bytes) -> None:
    """Found by the fuzzer: `POST .../public` with a body of "\\n" was taken as no body and answered 200.
    No body at all is still fine (the document shows none); whitespace alone is malformed JSON."""
    created = await hub.call("POST", "/api/v2/collections", json={"title": "whitespace"})
    cid = (await created.json())["collection"]["id"]
    headers = {**hub.admin(), "Content-Type": "application/json"}
    response = await hub.call("POST", f"/api/v2/collections/{cid}/public", data=body, headers=headers)
    assert response.status == 400
    assert (await (await hub.call("GET", f"/api/v2/collections/{cid}")).json())["collection"][
        "isPublic"
    ] is False
    assert (await hub.call("POST", f"/api/v2/collections/{cid}/public", headers=hub.admin())).status == 200

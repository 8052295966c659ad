"""Who may do what, through the gateway, in every dialect (OWASP API1/API5: object and function level).

One collection, owned by one user, and a caller for every relation to it. Each route of each dialect is
called by each caller; the expected status comes from the rules in docs/access.md, and no list ever shows
the collection to a caller who may not read it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession

from collections_hub.stack import EmbeddedStack
from tests.support import Hub

READERS = ("owner", "shared", "group", "guest", "viewer", "editor", "admin")
WRITERS = ("owner", "editor", "admin")
SHARERS = ("owner", "admin")
CALLERS = (*READERS, "unrelated", "revoked")


@dataclass
class World:
    """The collection under test and a key for each caller."""

    collection_id: str
    name: str
    a_base: str
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)
    asset: str = ""
    model: str = ""


async def _ok(response: Any, *expected: int) -> Any:
    body = await response.json()
    assert response.status in expected, (response.status, body)
    return body


@pytest.fixture(scope="module")
async def world(stack: EmbeddedStack) -> World:
    """Owner makes a private collection; it is shared one way with each kind of caller."""
    async with ClientSession() as http:
        hub = Hub(stack.gateway_url, http, stack.admin_api_key)
        keys: dict[str, str] = {"admin": stack.admin_api_key}
        ids: dict[str, int] = {}
        for role in ("owner", "shared", "group", "viewer", "editor", "unrelated", "revoked"):
            user, key = await hub.user_with_key()
            keys[role], ids[role] = key, user["id"]
        name = f"matrix-{uuid.uuid4().hex[:6]}"
        created = await _ok(
            await hub.call("POST", "/api/v2/collections", key=keys["owner"], json={"title": name}), 200
        )
        cid = created["collection"]["id"]
        owner = keys["owner"]
        await _ok(await hub.call("POST", f"/api/v2/collections/{cid}/users/{ids['shared']}", key=owner), 200)
        group = await _ok(await hub.call("POST", "/admin/groups", json={"name": f"g-{name}"}), 201)
        await _ok(
            await hub.call("POST", f"/admin/groups/{group['id']}/members", json={"user_ids": [ids["group"]]}),
            200,
            201,
        )
        await _ok(
            await hub.call("POST", f"/api/v2/collections/{cid}/user_groups/{group['id']}", key=owner), 200
        )
        guest_email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
        invited = await _ok(
            await hub.call(
                "POST", f"/api/v2/collections/{cid}/guests", key=owner, json={"email": guest_email}
            ),
            200,
        )
        ids["guest"] = next(u["id"] for u in invited["users"] if u["email"] == guest_email)
        keys["guest"] = (await hub.create_key(ids["guest"]))["key"]
        project = f"/admin/namespaces/personal/projects/user-{ids['owner']}/members"
        await _ok(await hub.call("PUT", f"{project}/{ids['viewer']}", json={"role": "viewer"}), 200)
        await _ok(await hub.call("PUT", f"{project}/{ids['editor']}", json={"role": "editor"}), 200)
        revoked = await hub.call("POST", f"/admin/users/{ids['revoked']}/api-keys", json={})
        revoked_key = await revoked.json()
        keys["revoked"] = revoked_key["key"]
        await _ok(await hub.call("DELETE", f"/admin/api-keys/{revoked_key['id']}"), 200)
        asset = (await _ok(await hub.call("POST", "/v1/assets", json={"name": "a"}), 201))["id"]
        model = (await _ok(await hub.call("POST", "/v1/models", json={"name": "m"}), 201))["id"]
        await asyncio.sleep(1.0)  # the revoked key's cached principal lapses
        return World(
            cid,
            name,
            f"/namespaces/personal/projects/user-{ids['owner']}/collections",
            keys,
            ids,
            asset,
            model,
        )


def routes(w: World) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(needs, method, path, request kwargs) for every collection route of every dialect."""
    cid, a = w.collection_id, f"{w.a_base}/{w.name}"
    return [
        ("read", "GET", f"/api/v2/collections/{cid}", {}),
        ("read", "GET", f"/v1/collections/{cid}", {}),
        ("read", "GET", a, {}),
        ("read", "GET", f"/api/v2/collections/{cid}/history/0", {}),
        ("read", "GET", f"/v1/collections/{cid}/history", {}),
        ("read", "GET", f"{a}/history", {}),
        ("read", "GET", f"/v1/collections/{cid}/assets", {}),
        ("read", "GET", f"/v1/collections/{cid}/models", {}),
        ("read", "GET", f"/v1/assets?collectionId={cid}", {}),
        ("read", "GET", f"/v1/models?collectionId={cid}", {}),
        ("read", "GET", f"/api/v2/collections/{cid}/assets", {}),
        ("read", "GET", f"/api/v2/collections/{cid}/assets/0", {}),
        ("write", "PUT", f"/api/v2/collections/{cid}", {"json": {"description": "changed"}}),
        ("write", "POST", f"/api/v2/collections/{cid}/assets", {"json": {"asset_id": w.asset}}),
        ("write", "DELETE", f"/api/v2/collections/{cid}/assets", {"json": {"asset_id": w.asset}}),
        ("write", "PUT", f"/v1/collections/{cid}", {"json": {"name": w.name}}),
        ("write", "PUT", f"/v1/collections/{cid}/models", {"json": {"modelIds": [w.model]}}),
        ("write", "DELETE", f"/v1/collections/{cid}/models", {"json": {"modelIds": [w.model]}}),
        ("write", "PATCH", a, {"json": {"description": "changed"}}),
        ("write", "POST", f"{a}/members", {"json": {"add": ["n1"]}}),
        ("write", "DELETE", f"{a}/members", {"json": {"remove": ["n1"]}}),
        ("share", "GET", f"/api/v2/collections/{cid}/users", {}),
        ("share", "GET", f"/api/v2/collections/{cid}/all_users", {}),
        ("share", "GET", f"/api/v2/collections/{cid}/user_groups", {}),
        ("share", "POST", f"/api/v2/collections/{cid}/private", {}),
    ]


def expected(caller: str, needs: str) -> set[int]:
    """The statuses a caller may get for a route that needs read, write or share."""
    if caller == "revoked":
        return {401}
    allowed = {"read": READERS, "write": WRITERS, "share": SHARERS}[needs]
    if caller in allowed:
        # Allowed: the action is done, or refused for a reason of state (private already, say).
        return {200, 400}
    return {403} if caller in READERS else {404}


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_route_answers_each_caller_by_the_rules(hub: Hub, world: World, caller: str) -> None:
    """Each caller gets exactly the answer its relation allows, on every route of every dialect."""
    got = {}
    for needs, method, path, kwargs in routes(world):
        response = await hub.call(method, path, key=world.keys[caller], **kwargs)
        got[(method, path)] = (response.status, needs)
    wrong = {route: status for route, (status, needs) in got.items() if status not in expected(caller, needs)}
    assert wrong == {}


@pytest.mark.parametrize("caller", CALLERS)
async def test_lists_show_the_collection_only_to_readers(hub: Hub, world: World, caller: str) -> None:
    """B's id list, C's pages and A's project list show the collection exactly to those who may read it."""
    key = world.keys[caller]
    b = await hub.call("GET", "/api/v2/collections", key=key)
    if caller == "revoked":
        assert b.status == 401
        return
    visible = caller in READERS
    assert (world.collection_id in (await b.json())["collections"]) is visible
    seen, token = [], None
    while True:
        query = "pageSize=100" + (f"&paginationToken={token}" if token else "")
        page = await (await hub.call("GET", f"/v1/collections?{query}", key=key)).json()
        seen += [c["id"] for c in page["collections"]]
        token = page.get("nextPaginationToken")
        if not token:
            break
    assert (world.collection_id in seen) is visible
    a = await hub.call("GET", f"{world.a_base}?pageSize=200", key=key)
    names = [c["id"] for c in (await a.json()).get("collections", [])] if a.status == 200 else []
    assert (world.collection_id in names) is visible


async def test_revoking_a_share_or_a_group_membership_takes_effect_within_a_second(
    hub: Hub, world: World
) -> None:
    """After the revoking call returns, the next request after 1 s is refused with the not-found answer."""
    cid, owner = world.collection_id, world.keys["owner"]
    assert (await hub.call("GET", f"/v1/collections/{cid}", key=world.keys["shared"])).status == 200
    assert (await hub.call("GET", f"/v1/collections/{cid}", key=world.keys["group"])).status == 200
    removed = await hub.call("DELETE", f"/api/v2/collections/{cid}/users/{world.ids['shared']}", key=owner)
    assert removed.status == 200
    groups = await (await hub.call("GET", f"/api/v2/collections/{cid}/user_groups", key=owner)).json()
    group_id = groups["user_groups"][0]["id"]
    left = await hub.call("DELETE", f"/admin/groups/{group_id}/members/{world.ids['group']}")
    assert left.status == 200
    await asyncio.sleep(1.0)
    for caller in ("shared", "group"):
        response = await hub.call("GET", f"/v1/collections/{cid}", key=world.keys[caller])
        assert response.status == 404, caller
        assert await response.json() == {"error": "collection not found"}


async def test_dialect_a_create_needs_a_write_role_on_the_project(hub: Hub, world: World) -> None:
    """A project editor creates in dialect A; a viewer or an unrelated user learns nothing (404)."""
    for caller, status in (("editor", 201), ("viewer", 404), ("unrelated", 404), ("owner", 201)):
        response = await hub.call("POST", world.a_base, key=world.keys[caller], json={"name": f"by-{caller}"})
        assert response.status == status, caller

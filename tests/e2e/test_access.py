"""access_service through the real gateway: the group admin API, project roles, and B's access routes.

The cross-dialect permission matrix needs collections, so it lives with catalog_service's tests; here
is what access answers on its own, with the real catalog answering its look-ups.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.support import Hub, find_event, unique_email


async def created_group(hub: Hub, name: str = "e2e-group", **extra: Any) -> dict[str, Any]:
    """A new group, created as the admin."""
    response = await hub.call("POST", "/admin/groups", json={"name": name, **extra})
    assert response.status == 201, await response.text()
    group: dict[str, Any] = await response.json()
    return group


async def test_group_admin_api_end_to_end(hub: Hub) -> None:
    """Create a group, add two users, remove one, list and show it, all through the gateway."""
    alice = await hub.create_user()
    bob = await hub.create_user()
    group = await created_group(hub, description="Sample user group for tests")
    assert (group["name"], group["description"], group["users"]) == (
        "e2e-group",
        "Sample user group for tests",
        [],
    )
    assert isinstance(group["id"], int)

    response = await hub.call(
        "POST", f"/admin/groups/{group['id']}/members", json={"user_ids": [alice["id"], bob["id"]]}
    )
    assert response.status == 200
    assert [u["id"] for u in (await response.json())["users"]] == sorted([alice["id"], bob["id"]])
    response = await hub.call("DELETE", f"/admin/groups/{group['id']}/members/{alice['id']}")
    assert response.status == 200
    assert [u["email"] for u in (await response.json())["users"]] == [bob["email"]]
    assert (await (await hub.call("GET", f"/admin/groups/{group['id']}")).json())["users"] == [
        {
            "id": bob["id"],
            "first_name": None,
            "last_name": None,
            "email": bob["email"],
            "user_role": {"name": "user"},
        }
    ]
    listed = await (await hub.call("GET", "/admin/groups")).json()
    assert group["id"] in [g["id"] for g in listed["user_groups"]]


async def test_group_errors_through_the_gateway(hub: Hub) -> None:
    """Unknown ids are 404 with the documented wording; bad bodies are 400; non-admins are 403."""
    group = await created_group(hub)
    response = await hub.call("GET", "/admin/groups/abc")
    assert (response.status, await response.json()) == (
        404,
        {"error": "Couldn't find UserGroup with 'id'=abc"},
    )
    response = await hub.call("POST", f"/admin/groups/{group['id']}/members", json={"user_ids": [987654321]})
    assert (response.status, await response.json()) == (
        404,
        {"error": "Couldn't find User with 'id'=987654321"},
    )
    response = await hub.call("POST", "/admin/groups", json={"name": "x", "unknown": True})
    assert response.status == 400
    _, key = await hub.user_with_key()
    response = await hub.call("POST", "/admin/groups", key=key, json={"name": "mine"})
    assert (response.status, await response.json()) == (403, {"error": "admin role required"})
    response = await hub.call("GET", "/admin/groups", headers={})
    assert response.status == 401


async def test_group_creation_is_published(hub: Hub, nats_url: str) -> None:
    """`access.group.created` reaches the stream with the group id and the admin as actor."""
    name = f"published-{uuid.uuid4().hex[:8]}"
    group = await created_group(hub, name=name)
    event = await find_event(nats_url, "hub.access.group.created", lambda e: e["data"] == {"name": name})
    assert event["ids"] == {"group_id": group["id"]}
    assert isinstance(event["actor"], int)


async def test_project_role_errors(hub: Hub) -> None:
    """PUT a role: an unknown project (catalog says 404) or user is 404, a bad role 400, a non-admin 403."""
    user = await hub.create_user()
    path = f"/admin/namespaces/no-such-ns/projects/no-such-project/members/{user['id']}"
    response = await hub.call("PUT", path, json={"role": "viewer"})
    assert (response.status, await response.json()) == (404, {"error": "project not found"})
    response = await hub.call("DELETE", path)
    assert (response.status, await response.json()) == (404, {"error": "project not found"})
    response = await hub.call(
        "PUT", "/admin/namespaces/no-such-ns/projects/p/members/abc", json={"role": "viewer"}
    )
    assert (response.status, await response.json()) == (404, {"error": "Couldn't find User with 'id'=abc"})
    response = await hub.call("PUT", path, json={"role": "superuser"})
    assert response.status == 400
    _, key = await hub.user_with_key()
    response = await hub.call("PUT", path, key=key, json={"role": "viewer"})
    assert response.status == 403


async def test_dialect_b_access_routes_on_an_unknown_collection(hub: Hub) -> None:
    """Every access route of dialect B answers 404 `collection not found` for an id catalog does not know."""
    _, key = await hub.user_with_key()
    for method, suffix, body in (
        ("POST", "public", None),
        ("POST", "private", None),
        ("GET", "users", None),
        ("GET", "all_users", None),
        ("POST", "users/15", None),
        ("DELETE", "users/not-found-id", None),
        ("POST", "guests", {"email": unique_email("guest")}),
        ("GET", "user_groups", None),
        ("POST", "user_groups/2", None),
        ("DELETE", "user_groups/not-found-id", None),
    ):
        for caller in (key, None):  # a user, and the admin
            response = await hub.call(
                method, f"/api/v2/collections/not-found-id/{suffix}", key=caller, json=body
            )
            assert (response.status, await response.json()) == (404, {"error": "collection not found"}), (
                suffix
            )


async def test_dialect_b_access_routes_need_credentials(hub: Hub) -> None:
    """Without an API key the gateway answers 401 before access_service is asked."""
    response = await hub.call("GET", "/api/v2/collections/anything/users", headers={})
    assert response.status == 401
    body = await response.json()
    assert set(body) == {"error"}


async def test_internal_routes_are_not_reachable_through_the_gateway(hub: Hub) -> None:
    """The decision API is internal: the gateway routes no public path to it."""
    for path in ("/internal/visibility/facts", "/internal/permissions"):
        response = await hub.call("GET", path)
        assert response.status == 404

"""The group admin API: create, list, show, members in and out; bad input; events."""

from __future__ import annotations

from typing import Any

import pytest

from shared.principal import Principal
from tests.integration.access_service.conftest import Access, EventTap


def member(user: Principal) -> dict[str, Any]:
    """A group member as the API shows it."""
    return {
        "id": user.user_id,
        "first_name": None,
        "last_name": None,
        "email": user.email,
        "user_role": {"name": user.role},
    }


async def test_create_answers_201_with_an_integer_id(access: Access, events: EventTap) -> None:
    """A new group gets the next integer id, timestamps and no users; `access.group.created` is emitted."""
    status, first = await access.call(
        "POST", "/admin/groups", json={"name": " user-group-1 ", "description": "Sample user group for tests"}
    )
    assert status == 201
    assert first == {
        "id": first["id"],
        "name": "user-group-1",
        "description": "Sample user group for tests",
        "created_at": first["created_at"],
        "updated_at": first["created_at"],
        "users": [],
    }
    assert isinstance(first["id"], int)
    status, second = await access.call("POST", "/admin/groups", json={"name": "other"})
    assert (status, second["id"], second["description"]) == (201, first["id"] + 1, None)
    created = await events.expect("access.group.created", group_id=first["id"])
    assert (created["data"], created["actor"]) == ({"name": "user-group-1"}, 0)


async def test_list_and_show(access: Access) -> None:
    """GET lists every group by id with members; GET one shows it; an unknown or non-integer id is 404."""
    alice = await access.user()
    first = await access.group(alice, name="a")
    second = await access.group(name="b")
    status, body = await access.call("GET", "/admin/groups")
    assert status == 200
    assert [(g["id"], g["name"], g["users"]) for g in body["user_groups"]] == [
        (first, "a", [member(alice)]),
        (second, "b", []),
    ]
    status, body = await access.call("GET", f"/admin/groups/{first}")
    assert (status, body["users"]) == (200, [member(alice)])
    for raw in ("999", "abc"):
        assert await access.call("GET", f"/admin/groups/{raw}") == (
            404,
            {"error": f"Couldn't find UserGroup with 'id'={raw}"},
        )


async def test_members_in_and_out(access: Access, events: EventTap) -> None:
    """Adding is idempotent and emits one event per new member; removing a non-member is 400."""
    alice = await access.user()
    bob = await access.user()
    group_id = await access.group()
    path = f"/admin/groups/{group_id}/members"

    status, body = await access.call(
        "POST", path, json={"user_ids": [bob.user_id, alice.user_id, bob.user_id]}
    )
    assert (status, body["users"]) == (200, [member(alice), member(bob)])
    status, body = await access.call("POST", path, json={"user_ids": [alice.user_id]})
    assert (status, body["users"]) == (200, [member(alice), member(bob)])
    status, body = await access.call("DELETE", f"{path}/{alice.user_id}")
    assert (status, body["users"]) == (200, [member(bob)])
    assert await access.call("DELETE", f"{path}/{alice.user_id}") == (
        400,
        {"error": "User is not a member of this UserGroup"},
    )
    for raw in ("abc", "424242"):
        assert await access.call("DELETE", f"{path}/{raw}") == (
            404,
            {"error": f"Couldn't find User with 'id'={raw}"},
        )

    await events.expect("access.group.member_added", group_id=group_id, user_id=alice.user_id)
    await events.expect("access.group.member_removed", group_id=group_id, user_id=alice.user_id)
    seen = [
        (e["type"], e["ids"]["user_id"])
        for e in await events.settle(0.3)
        if e["ids"].get("group_id") == group_id and "user_id" in e["ids"]
    ]
    assert sorted(seen) == sorted(
        [
            ("access.group.member_added", bob.user_id),
            ("access.group.member_added", alice.user_id),
            ("access.group.member_removed", alice.user_id),
        ]
    )


async def test_adding_an_unknown_user_adds_nobody(access: Access) -> None:
    """One unknown id in the list: 404 naming it, and none of the others were added."""
    alice = await access.user()
    group_id = await access.group()
    assert await access.call(
        "POST", f"/admin/groups/{group_id}/members", json={"user_ids": [alice.user_id, 424242]}
    ) == (404, {"error": "Couldn't find User with 'id'=424242"})
    assert (await access.call("GET", f"/admin/groups/{group_id}"))[1]["users"] == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/groups", {}),
        ("/admin/groups", {"name": ""}),
        ("/admin/groups", {"name": 5}),
        ("/admin/groups", {"name": "x" * 256}),
        ("/admin/groups", {"name": "ok", "owner": 1}),
        ("members", {"user_ids": []}),
        ("members", {"user_ids": ["1"]}),
        ("members", {"user_ids": [True]}),
        ("members", {"user_ids": [0]}),
        ("members", {"user_ids": list(range(1, 102))}),
        ("members", {"user_ids": [1], "role": "x"}),
    ],
)
async def test_bad_input_is_400_and_changes_nothing(access: Access, path: str, body: dict[str, Any]) -> None:
    """Missing, empty, mistyped, too many or unknown fields: 400, and no group or membership appears."""
    group_id = await access.group()
    url = path if path.startswith("/") else f"/admin/groups/{group_id}/{path}"
    status, answer = await access.call("POST", url, json=body)
    assert status == 400, answer
    assert await access.db["groups"].count_documents({}) == 1
    assert await access.db["users"].count_documents({"group_ids": {"$in": [group_id]}}) == 0


async def test_only_admins_manage_groups(access: Access) -> None:
    """A user who is not an admin gets 403 on every group route; no principal at all is 401."""
    user = await access.user()
    group_id = await access.group()
    for method, path, body in (
        ("POST", "/admin/groups", {"name": "x"}),
        ("GET", "/admin/groups", None),
        ("GET", f"/admin/groups/{group_id}", None),
        ("POST", f"/admin/groups/{group_id}/members", {"user_ids": [user.user_id]}),
        ("DELETE", f"/admin/groups/{group_id}/members/{user.user_id}", None),
    ):
        assert await access.call(method, path, as_=user, json=body) == (403, {"error": "admin role required"})
        assert (await access.call(method, path, as_=None, json=body))[0] == 401


async def test_membership_and_roles_change_the_named_user_after_an_id_gap(access: Access) -> None:
    """With a gap in user ids (a refused insert used one up), changes land on the user named, only."""
    first = await access.user()
    status, _ = await access.call("POST", "/admin/users", json={"email": first.email.upper()})
    assert status == 409  # this used up an id
    before = await access.user()
    target = await access.user()
    after = await access.user()
    group_id = await access.group(target)
    access.catalog.projects[("ns", "gap")] = "proj-gap"
    status, _ = await access.call(
        "PUT", f"/admin/namespaces/ns/projects/gap/members/{target.user_id}", json={"role": "editor"}
    )
    assert status == 200
    for user in (first, before, after):
        stored = await access.db["users"].find_one({"_id": user.user_id})
        assert stored is not None
        assert (stored["group_ids"], stored["editor_of_projects"]) == ([], []), user.user_id
    stored = await access.db["users"].find_one({"_id": target.user_id})
    assert stored is not None
    assert (stored["group_ids"], stored["editor_of_projects"]) == ([group_id], ["proj-gap"])

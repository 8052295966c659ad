"""Project roles: PUT/DELETE through the admin API, the project looked up in catalog, events, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.access_service.conftest import Access, EventTap

MEMBERS = "/admin/namespaces/{ns}/projects/{project}/members/{user}"


def member_path(user: int | str, ns: str = "acme", project: str = "films") -> str:
    """The member route for a user on a project."""
    return MEMBERS.format(ns=ns, project=project, user=user)


async def test_set_change_and_remove_a_role(access: Access, events: EventTap) -> None:
    """PUT answers the role, a second PUT replaces it, DELETE removes it; each change is an event."""
    user = await access.user()
    access.catalog.projects[("acme", "films")] = "proj-films"
    path = member_path(user.user_id)

    assert await access.call("PUT", path, json={"role": "viewer"}) == (
        200,
        {"project_id": "proj-films", "user_id": user.user_id, "role": "viewer"},
    )
    assert (await access.call("PUT", path, json={"role": "viewer"}))[0] == 200  # the same role: no change
    assert (await access.call("PUT", path, json={"role": "owner"}))[1]["role"] == "owner"
    assert await access.call("DELETE", path) == (
        200,
        {"project_id": "proj-films", "user_id": user.user_id, "role": None},
    )
    assert await access.call("DELETE", path) == (
        404,
        {"error": f"User {user.user_id} has no role on this project"},
    )

    await events.expect("access.project.role_set", project_id="proj-films", user_id=user.user_id)
    roles = [
        e["data"]["role"]
        for e in await events.settle(0.3)
        if e["type"] == "access.project.role_set"
        and e["ids"] == {"project_id": "proj-films", "user_id": user.user_id}
    ]
    assert roles == ["viewer", "owner", None]
    assert access.catalog.asked[0] == "/internal/projects/acme/films"


async def test_unknown_project_or_user_is_404(access: Access) -> None:
    """A project catalog does not know, or a user id that names nobody, is 404 and stores nothing."""
    user = await access.user()
    access.catalog.projects[("acme", "films")] = "proj-films"
    assert await access.call("PUT", member_path(user.user_id, project="nope"), json={"role": "viewer"}) == (
        404,
        {"error": "project not found"},
    )
    for raw in ("abc", "424242"):
        assert await access.call("PUT", member_path(raw), json={"role": "viewer"}) == (
            404,
            {"error": f"Couldn't find User with 'id'={raw}"},
        )
        assert (await access.call("DELETE", member_path(raw)))[0] == 404
    assert await access.db["users"].count_documents({"viewer_of_projects": {"$in": ["proj-films"]}}) == 0


async def test_slugs_reach_catalog_percent_encoded(access: Access) -> None:
    """Slugs with reserved characters are passed on as single encoded segments."""
    user = await access.user()
    access.catalog.projects[("a b", "c?d")] = "proj-odd"
    status, body = await access.call(
        "PUT", member_path(user.user_id, "a%20b", "c%3Fd"), json={"role": "editor"}
    )
    assert (status, body["project_id"]) == (200, "proj-odd")


@pytest.mark.parametrize(
    "body", [{}, {"role": "admin"}, {"role": None}, {"role": "viewer", "x": 1}, {"role": 1}]
)
async def test_bad_role_is_400(access: Access, body: dict[str, Any]) -> None:
    """A missing or unknown role, or an unknown field: 400, before catalog is even asked."""
    user = await access.user()
    status, _ = await access.call("PUT", member_path(user.user_id), json=body)
    assert status == 400
    assert access.catalog.asked == []


async def test_only_admins_set_roles(access: Access) -> None:
    """A non-admin caller gets 403 for PUT and DELETE."""
    user = await access.user()
    for method, body in (("PUT", {"role": "viewer"}), ("DELETE", None)):
        assert await access.call(method, member_path(user.user_id), as_=user, json=body) == (
            403,
            {"error": "admin role required"},
        )


async def test_catalog_answering_garbage_is_503(access: Access) -> None:
    """A catalog answer without a usable project id is treated as catalog being unavailable."""
    user = await access.user()
    access.catalog.projects[("acme", "films")] = ""
    assert await access.call("PUT", member_path(user.user_id), json={"role": "viewer"}) == (
        503,
        {"error": "catalog answered an unexpected body"},
    )

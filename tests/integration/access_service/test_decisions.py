"""Authorization decisions (shared/authz.py): the permission matrix and prompt revocation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer

from access_service.app import create_app
from shared.principal import Principal
from tests.integration.access_service.conftest import (
    Access,
    StandInCatalog,
    access_settings,
    quiesce,
)

B = "/api/v2/collections"
NONE = {"read": False, "write": False, "share": False}
READ = {"read": True, "write": False, "share": False}
WRITE = {"read": True, "write": True, "share": False}
ALL = {"read": True, "write": True, "share": True}

ROLES = [
    "owner",
    "shared user",
    "group member",
    "guest",
    "project viewer",
    "project editor",
    "project owner",
    "unrelated user",
    "admin",
]
# role -> (on the private collection, on the public one)
EXPECTED = {
    "owner": (ALL, ALL),
    "shared user": (READ, READ),
    "group member": (READ, READ),
    "guest": (READ, READ),
    "project viewer": (READ, READ),
    "project editor": (WRITE, WRITE),
    "project owner": (WRITE, WRITE),
    "unrelated user": (NONE, READ),
    "admin": (ALL, ALL),
}


@dataclass
class World:
    """One access_service holding a private and a public collection and a caller in every role."""

    access: Access
    users: dict[str, Principal]
    private: str
    public: str


@pytest.fixture(scope="module")
async def world(mongodb_url: str, nats_url: str) -> AsyncIterator[World]:
    """Build the world once for the module: shares, a group, a guest and project roles on both collections."""
    catalog = StandInCatalog()
    async with TestClient(TestServer(catalog.app(), host="127.0.0.1")) as catalog_client:
        catalog.url = str(catalog_client.make_url("")).rstrip("/")
        db_name = f"t_{uuid.uuid4().hex[:12]}"
        app = create_app(access_settings(mongodb_url, nats_url, db_name, catalog.url))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            access = Access(client, catalog)
            users = {role: await access.user("admin" if role == "admin" else "user") for role in ROLES}
            owner = users["owner"]
            catalog.projects[("ns", "matrix")] = "proj-matrix"
            private = catalog.add_collection(owner.user_id, project_id="proj-matrix")
            public = catalog.add_collection(owner.user_id, project_id="proj-matrix")
            group_id = await access.group(users["group member"])
            status, body = await access.call(
                "POST", f"{B}/{private}/guests", as_=owner, json={"email": f"g-{db_name}@example.com"}
            )
            assert status == 200, body
            guest = body["users"][-1]
            users["guest"] = Principal(
                user_id=guest["id"], email=guest["email"], role="guest", auth="api_key"
            )
            for cid in (private, public):
                for path in (
                    f"users/{users['shared user'].user_id}",
                    f"user_groups/{group_id}",
                    f"users/{guest['id']}",
                ):
                    status, _ = await access.call("POST", f"{B}/{cid}/{path}", as_=owner)
                    assert status in (200, 400)  # the guest is already on `private`
            assert (await access.call("POST", f"{B}/{public}/public", as_=owner))[0] == 200
            for role, name in (
                ("viewer", "project viewer"),
                ("editor", "project editor"),
                ("owner", "project owner"),
            ):
                status, _ = await access.call(
                    "PUT",
                    f"/admin/namespaces/ns/projects/matrix/members/{users[name].user_id}",
                    json={"role": role},
                )
                assert status == 200
            yield World(access, users, private, public)
            await quiesce(client.app)


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("role", ROLES)
async def test_permission_matrix(world: World, role: str, visibility: str) -> None:
    """Each role gets exactly the read/write/share the rules give it, on a private and a public collection."""
    cid = world.private if visibility == "private" else world.public
    expected = EXPECTED[role][0 if visibility == "private" else 1]
    assert await world.access.permissions(world.users[role], cid) == expected


@pytest.mark.parametrize("role", ROLES)
async def test_dialect_b_listing_follows_the_decision(world: World, role: str) -> None:
    """On the private collection: managers 200, other readers 403, everyone else 404 (never a hint)."""
    status, _ = await world.access.call("GET", f"{B}/{world.private}/users", as_=world.users[role])
    expected = EXPECTED[role][0]
    assert status == (200 if expected["share"] else 403 if expected["read"] else 404)


async def test_internal_decisions_reject_bad_input(world: World) -> None:
    """Unknown fields or a missing collection are 400; no secret is 401."""
    collection = {"collection_id": world.private, "owner_id": 1, "project_id": "p"}
    for body in ({"user_id": 1, "collection": collection, "extra": 1}, {"user_id": 1}):
        status, answer = await world.access.call("POST", "/internal/permissions", as_=None, json=body)
        assert status == 400, answer
    response = await world.access.client.post(
        "/internal/permissions", json={"user_id": 1, "collection": collection}
    )
    assert response.status == 401


async def test_unknown_user_may_do_nothing(world: World) -> None:
    """A user id access_service does not know gets no permission, even on a public collection."""
    ghost = Principal(user_id=987654, email="ghost@example.com", role="user", auth="api_key")
    assert await world.access.permissions(ghost, world.public) == NONE


# --- revocation: the very next decision after the revoking call returned refuses ---------------------


async def test_removing_a_share_revokes_at_once(access: Access) -> None:
    """After DELETE users/{id} returns, the user may no longer read the collection."""
    owner = await access.user()
    user = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    assert (await access.call("POST", f"{B}/{cid}/users/{user.user_id}", as_=owner))[0] == 200
    assert await access.permissions(user, cid) == READ
    assert (await access.call("DELETE", f"{B}/{cid}/users/{user.user_id}", as_=owner))[0] == 200
    assert await access.permissions(user, cid) == NONE


async def test_leaving_a_group_revokes_at_once(access: Access) -> None:
    """After a member is taken out of a shared group, it may no longer read the collection."""
    owner = await access.user()
    member = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    group_id = await access.group(member)
    assert (await access.call("POST", f"{B}/{cid}/user_groups/{group_id}", as_=owner))[0] == 200
    assert await access.permissions(member, cid) == READ
    status, _ = await access.call("DELETE", f"/admin/groups/{group_id}/members/{member.user_id}")
    assert status == 200
    assert await access.permissions(member, cid) == NONE


async def test_unlinking_a_group_revokes_at_once(access: Access) -> None:
    """After the group is unlinked from the collection, its members may no longer read it."""
    owner = await access.user()
    member = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    group_id = await access.group(member)
    assert (await access.call("POST", f"{B}/{cid}/user_groups/{group_id}", as_=owner))[0] == 200
    assert (await access.call("DELETE", f"{B}/{cid}/user_groups/{group_id}", as_=owner))[0] == 200
    assert await access.permissions(member, cid) == NONE


async def test_removing_a_project_role_revokes_at_once(access: Access) -> None:
    """After the role is deleted, the former editor may neither write nor read the project's collection."""
    owner = await access.user()
    editor = await access.user()
    access.catalog.projects[("ns", "p")] = "proj-rev"
    cid = access.catalog.add_collection(owner.user_id, project_id="proj-rev")
    member_path = f"/admin/namespaces/ns/projects/p/members/{editor.user_id}"
    assert (await access.call("PUT", member_path, json={"role": "editor"}))[0] == 200
    assert await access.permissions(editor, cid) == WRITE
    assert (await access.call("PUT", member_path, json={"role": "viewer"}))[0] == 200
    assert await access.permissions(editor, cid) == READ
    assert (await access.call("DELETE", member_path))[0] == 200
    assert await access.permissions(editor, cid) == NONE


async def test_making_private_revokes_public_readers_at_once(access: Access) -> None:
    """After `private` returns, a caller with no grant may no longer read the collection."""
    owner = await access.user()
    stranger = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    assert (await access.call("POST", f"{B}/{cid}/public", as_=owner))[0] == 200
    assert await access.permissions(stranger, cid) == READ
    assert (await access.call("POST", f"{B}/{cid}/private", as_=owner))[0] == 200
    assert await access.permissions(stranger, cid) == NONE

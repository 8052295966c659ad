"""A collection in a personal project belongs to that project's owner, whoever created it (issue 26, item 4).

Dialect A is the only dialect that names a project, so an admin (or a holder of a role on the project) can
create in another user's personal project there, and an admin can import into one; dialects B and C
always create in the caller's own. The project's owner must see such a collection in every list and read
it in every dialect; a third user must not.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.test_lists import a_list, b_list, c_list, ok, personal
from tests.support import Hub


async def owner_reads_it(hub: Hub, owner: dict[str, Any], key: str, cid: str, name: str) -> None:
    """The personal project's owner sees the collection in lists A, B and C, reads it in each, and is shown
    as its owner."""
    names, _ = await a_list(hub, key, personal(owner["id"]))
    assert name in names
    assert cid in await b_list(hub, key)
    assert cid in await c_list(hub, key)
    a = await ok(hub, "GET", f"{personal(owner['id'])}/{name}", key=key)
    assert a["id"] == cid
    b = await ok(hub, "GET", f"/api/v2/collections/{cid}", key=key)
    assert b["collection"]["owner"] == owner["email"]
    c = await ok(hub, "GET", f"/v1/collections/{cid}", key=key)
    assert c["collection"]["ownerId"] == str(owner["id"])


async def stranger_does_not(hub: Hub, owner: dict[str, Any], key: str, cid: str, name: str) -> None:
    """A user with no relation to the project neither lists nor reads the collection."""
    assert cid not in await b_list(hub, key)
    assert cid not in await c_list(hub, key)
    assert await a_list(hub, key, personal(owner["id"])) == ([], 0)
    assert (await hub.call("GET", f"{personal(owner['id'])}/{name}", key=key)).status == 404
    assert (await hub.call("GET", f"/api/v2/collections/{cid}", key=key)).status == 404
    assert (await hub.call("GET", f"/v1/collections/{cid}", key=key)).status == 404


async def test_an_admins_collection_in_a_users_personal_project_is_that_users(hub: Hub) -> None:
    """An admin creates in X's personal project via dialect A (201); X lists and reads it in A, B and C as
    its owner; a third user does not see it."""
    owner, owner_key = await hub.user_with_key()
    _, stranger_key = await hub.user_with_key()
    await ok(hub, "GET", personal(owner["id"]), key=owner_key)  # X's personal project exists from here
    name = f"by-admin-{uuid.uuid4().hex[:6]}"
    created = await ok(hub, "POST", personal(owner["id"]), 201, json={"name": name})

    await owner_reads_it(hub, owner, owner_key, created["id"], name)
    await stranger_does_not(hub, owner, stranger_key, created["id"], name)


async def test_an_editors_collection_in_a_users_personal_project_is_that_users(hub: Hub) -> None:
    """A user holding the editor role on X's personal project creates there; X owns it, the editor still
    reads it through its role, a third user does not see it."""
    owner, owner_key = await hub.user_with_key()
    editor, editor_key = await hub.user_with_key()
    _, stranger_key = await hub.user_with_key()
    await ok(hub, "GET", personal(owner["id"]), key=owner_key)
    members = f"/admin/namespaces/personal/projects/user-{owner['id']}/members/{editor['id']}"
    await ok(hub, "PUT", members, json={"role": "editor"})
    name = f"by-editor-{uuid.uuid4().hex[:6]}"
    created = await ok(hub, "POST", personal(owner["id"]), 201, key=editor_key, json={"name": name})

    await owner_reads_it(hub, owner, owner_key, created["id"], name)
    assert created["id"] in await b_list(hub, editor_key)
    await stranger_does_not(hub, owner, stranger_key, created["id"], name)


async def test_an_import_into_a_users_personal_project_is_that_users(hub: Hub) -> None:
    """An import into X's personal project that names another owner still gives the collection to X."""
    owner, owner_key = await hub.user_with_key()
    other, other_key = await hub.user_with_key()
    await ok(hub, "GET", personal(owner["id"]), key=owner_key)
    name = f"imported-{uuid.uuid4().hex[:6]}"
    body = {
        "id": f"imp-{uuid.uuid4().hex[:12]}",
        "namespace": "personal",
        "project": f"user-{owner['id']}",
        "owner_id": other["id"],
        "owner_email": other["email"],
        "name": name,
    }
    await ok(hub, "POST", "/admin/collections", 200, 201, json=body)

    await owner_reads_it(hub, owner, owner_key, body["id"], name)
    await stranger_does_not(hub, owner, other_key, body["id"], name)

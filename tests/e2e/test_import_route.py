"""`POST /admin/collections`: an admin creates a collection with the id and owner an export recorded."""

from __future__ import annotations

import uuid

from tests.support import Hub


async def test_an_admin_keeps_an_id_where_it_is_free(hub: Hub) -> None:
    """The collection gets the given id and owner (in the owner's personal project, made on first use);
    the same id again is 409, a user is refused, and an id outside [A-Za-z0-9_-]{1,64} is 400."""
    owner, owner_key = await hub.user_with_key()
    wanted = f"kept-{uuid.uuid4().hex[:12]}"
    body = {
        "id": wanted,
        "namespace": "personal",
        "project": f"user-{owner['id']}",
        "owner_id": owner["id"],
        "owner_email": owner["email"],
        "name": "imported",
        "tags": ["t"],
    }
    created = await hub.call("POST", "/admin/collections", json=body)
    assert created.status == 201, await created.text()
    assert (await created.json())["id"] == wanted
    seen = await hub.call("GET", f"/v1/collections/{wanted}", key=owner_key)
    assert seen.status == 200
    assert (await seen.json())["collection"]["ownerId"] == str(owner["id"])
    again = await hub.call("POST", "/admin/collections", json={**body, "name": "other"})
    assert again.status == 409
    assert await again.json() == {"error": "collection id already exists"}
    assert (
        await hub.call("POST", "/admin/collections", key=owner_key, json={**body, "id": "x1"})
    ).status == 403
    for bad in ("../x", "a b", "x" * 65, "", "é"):
        assert (await hub.call("POST", "/admin/collections", json={**body, "id": bad})).status == 400, bad

"""Issue 10, item 8: the contract defects found beside the audit, each pinned through the gateway."""

from __future__ import annotations

import uuid

from collections_hub.stack import EmbeddedStack
from tests.support import Hub, hs256_token, json_of, wait_for_history

NOT_FOUND_B = {"error": "collection not found"}


async def new_b_collection(hub: Hub, title: str | None = None, key: str | None = None) -> str:
    """The id of a new dialect B collection."""
    status, body = await json_of(
        hub, "POST", "/api/v2/collections", key=key, json={"title": title or f"t-{uuid.uuid4().hex[:8]}"}
    )
    assert status == 200, body
    return str(body["collection"]["id"])


# --- (a) guests on an unknown collection -----------------------------------------------------------------
async def test_guest_invite_on_an_unknown_collection_is_404_whatever_the_body(hub: Hub) -> None:
    """`POST .../not-found-id/guests` answers 404 `collection not found` with no, empty or bad body."""
    path = "/api/v2/collections/not-found-id/guests"
    for kwargs in ({}, {"json": {}}, {"json": {"email": 5}}, {"json": {"email": "x@example.com"}}):
        assert await json_of(hub, "POST", path, **kwargs) == (404, NOT_FOUND_B), kwargs


async def test_guest_invite_checks_the_collection_before_the_body(hub: Hub) -> None:
    """Hidden collection: 404 for a stranger whatever the body; the owner's empty body is the 422."""
    _, owner_key = await hub.user_with_key()
    _, stranger_key = await hub.user_with_key()
    cid = await new_b_collection(hub, key=owner_key)
    path = f"/api/v2/collections/{cid}/guests"
    assert await json_of(hub, "POST", path, key=stranger_key) == (404, NOT_FOUND_B)
    status, body = await json_of(hub, "POST", path, key=owner_key)
    assert status == 422
    assert set(body) == {"error"}
    status, body = await json_of(
        hub, "POST", path, key=owner_key, json={"email": f"guest-{uuid.uuid4().hex[:8]}@example.com"}
    )
    assert status == 200
    assert [user["user_role"]["name"] for user in body["users"]][-1] == "guest"


# --- (b) history after a delete --------------------------------------------------------------------------
async def test_history_is_404_on_the_read_right_after_the_delete_answered(hub: Hub) -> None:
    """Across 20 collections whose history is live, the first read after DELETE is 404 in every dialect."""
    ids = [await new_b_collection(hub, title=f"doomed-{n}-{uuid.uuid4().hex[:6]}") for n in range(20)]
    for cid in ids:
        await wait_for_history(hub, cid, 1)  # the projection knows each as live before it is deleted
    still_shown = []
    for cid in ids:
        assert (await hub.call("DELETE", f"/api/v2/collections/{cid}")).status == 200
        status, body = await json_of(hub, "GET", f"/api/v2/collections/{cid}/history/0")
        if (status, body) != (404, NOT_FOUND_B):
            still_shown.append((cid, status))
    assert still_shown == []
    for cid in ids[:3]:
        assert await json_of(hub, "GET", f"/v1/collections/{cid}/history") == (404, NOT_FOUND_B)


async def test_dialect_a_history_is_404_right_after_the_delete(hub: Hub) -> None:
    """A collection deleted in A has no history in A on the very next request."""
    slug = f"ns-{uuid.uuid4().hex[:8]}"
    assert (await hub.call("POST", "/admin/namespaces", json={"slug": slug})).status == 201
    assert (await hub.call("POST", f"/admin/namespaces/{slug}/projects", json={"slug": "p"})).status == 201
    base = f"/namespaces/{slug}/projects/p/collections"
    for n in range(5):
        status, created = await json_of(hub, "POST", base, json={"name": f"gone-{n}"})
        assert status == 201
        await wait_for_history(hub, created["id"], 1)
        assert (await json_of(hub, "GET", f"{base}/gone-{n}/history"))[0] == 200
        assert (await hub.call("DELETE", f"{base}/gone-{n}")).status == 200
        assert await json_of(hub, "GET", f"{base}/gone-{n}/history") == (
            404,
            {"statusCode": 404, "message": "Collection not found", "error": "Not Found"},
        )


# --- (c) no `"url": null` ---------------------------------------------------------------------------------
async def test_items_without_a_url_show_no_url_key_and_their_thumbnail_an_empty_one(hub: Hub) -> None:
    """An asset or model without a url has no `url` key (never null); a thumbnail of one has `url: ""`."""
    status, asset = await json_of(hub, "POST", "/v1/assets", json={"name": "no-url"})
    assert status == 201
    assert "url" not in asset
    assert "url" not in (await json_of(hub, "GET", f"/v1/assets/{asset['id']}"))[1]
    status, model = await json_of(hub, "POST", "/v1/models", json={"name": "m"})
    assert (status, "url" in model) == (201, False)
    assert "url" not in (await json_of(hub, "GET", f"/v1/models/{model['id']}"))[1]
    _, with_url = await json_of(hub, "POST", "/v1/assets", json={"name": "u", "url": "https://cdn.example/a"})
    assert with_url["url"] == "https://cdn.example/a"

    _, made = await json_of(hub, "POST", "/v1/collections", json={"name": "thumbs"})
    cid = made["collection"]["id"]
    _, body = await json_of(hub, "PUT", f"/v1/collections/{cid}/assets", json={"assetIds": [asset["id"]]})
    assert body["collection"]["thumbnail"] == {"assetId": asset["id"], "url": ""}
    assert (await json_of(hub, "GET", f"/v1/collections/{cid}"))[1]["collection"]["thumbnail"] == {
        "assetId": asset["id"],
        "url": "",
    }
    await json_of(hub, "PUT", f"/v1/collections/{cid}/assets", json={"assetIds": [with_url["id"]]})
    _, body = await json_of(
        hub, "PUT", f"/v1/collections/{cid}", json={"thumbnail": {"assetId": with_url["id"]}}
    )
    assert body["collection"]["thumbnail"] == {"assetId": with_url["id"], "url": "https://cdn.example/a"}


# --- (d) control characters in B titles -----------------------------------------------------------------
async def test_b_titles_refuse_control_characters_and_store_nothing(hub: Hub) -> None:
    """NUL, \\x1f, newline, DEL and C1 controls in a B title are 422 on create and update; nothing changes."""
    cid = await new_b_collection(hub, title="clean title")
    for bad in ("a\x00b", "\x1f", "line\nbreak", "tab\there", "del\x7f", "c1\x85"):
        status, body = await json_of(hub, "POST", "/api/v2/collections", json={"title": bad})
        assert status == 422, repr(bad)
        assert set(body) == {"error"}
        status, body = await json_of(hub, "PUT", f"/api/v2/collections/{cid}", json={"title": bad})
        assert (status, set(body)) == (422, {"error"}), repr(bad)
    status, body = await json_of(hub, "GET", f"/api/v2/collections/{cid}")
    assert (status, body["collection"]["title"]) == (200, "clean title")
    status, body = await json_of(hub, "POST", "/api/v2/collections", json={"title": "Café ☕ 東京"})
    assert (status, body["collection"]["title"]) == (200, "Café ☕ 東京")


# --- (e) NaN and Infinity in dialect A metadata ---------------------------------------------------------
async def test_a_metadata_with_nan_or_infinity_is_400_and_creates_nothing(hub: Hub) -> None:
    """`Infinity`, `-Infinity` and `NaN` in A metadata are a 400 in A's body on create and on PATCH."""
    slug = f"ns-{uuid.uuid4().hex[:8]}"
    assert (await hub.call("POST", "/admin/namespaces", json={"slug": slug})).status == 201
    assert (await hub.call("POST", f"/admin/namespaces/{slug}/projects", json={"slug": "p"})).status == 201
    base = f"/namespaces/{slug}/projects/p/collections"
    assert (await json_of(hub, "POST", base, json={"name": "kept", "metadata": {"k": 1}}))[0] == 201
    headers = {**hub.admin(), "Content-Type": "application/json"}
    for constant in ("Infinity", "-Infinity", "NaN"):
        raw = f'{{"name": "bad", "metadata": {{"k": {constant}}}}}'
        status, body = await json_of(hub, "POST", base, headers=headers, data=raw)
        assert status == 400, constant
        assert (body["statusCode"], body["error"]) == (400, "Bad Request")
        raw = f'{{"metadata": {{"deep": [1, {{"k": {constant}}}]}}}}'
        status, body = await json_of(hub, "PATCH", f"{base}/kept", headers=headers, data=raw)
        assert (status, body["error"]) == (400, "Bad Request"), constant
    assert (await json_of(hub, "GET", f"{base}/bad"))[0] == 404
    assert (await json_of(hub, "GET", f"{base}/kept"))[1]["metadata"] == {"k": 1}


# --- (f) one's own personal project in dialect A ---------------------------------------------------------
async def test_a_create_in_ones_own_personal_project_works_before_any_b_or_c_call(
    hub: Hub, stack: EmbeddedStack
) -> None:
    """A new user's first call, an A create in `personal/user-<id>`, is 201; the collection shows in B."""
    user, key = await hub.user_with_key()
    bearer = {"Authorization": f"Bearer {hs256_token(stack.jwt_secret, user['id'])}"}
    base = f"/namespaces/personal/projects/user-{user['id']}/collections"
    status, body = await json_of(hub, "POST", base, headers=bearer, json={"name": "first"})
    assert status == 201, body
    assert body["projectId"] == f"personal-{user['id']}"
    status, listed = await json_of(hub, "GET", base, headers=bearer)
    assert (status, [c["name"] for c in listed["collections"]]) == (200, ["first"])
    status, got = await json_of(hub, "GET", f"/api/v2/collections/{body['id']}", key=key)
    assert (status, got["collection"]["title"]) == (200, "first")


async def test_another_users_personal_project_stays_404(hub: Hub, stack: EmbeddedStack) -> None:
    """Creating in someone else's personal project is 404 before and after that user made it exist."""
    me = await hub.create_user()
    other, other_key = await hub.user_with_key()
    bearer = {"Authorization": f"Bearer {hs256_token(stack.jwt_secret, me['id'])}"}
    path = f"/namespaces/personal/projects/user-{other['id']}/collections"
    expected = (404, {"statusCode": 404, "message": "Project not found", "error": "Not Found"})
    assert await json_of(hub, "POST", path, headers=bearer, json={"name": "intruder"}) == expected
    await new_b_collection(hub, key=other_key)  # now the other user's personal project exists
    assert await json_of(hub, "POST", path, headers=bearer, json={"name": "intruder"}) == expected
    status, listed = await json_of(hub, "GET", path, key=other_key)
    assert status == 200
    assert "intruder" not in [c["name"] for c in listed["collections"]]

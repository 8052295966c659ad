"""Dialect B's access endpoints: the documented answers, bad input, who may call them, their events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from access_service.api.keys import MAILER_KEY
from access_service.ports import MailMessage
from shared.principal import Principal
from tests.integration.access_service.conftest import Access, EventTap, StandInCatalog

B = "/api/v2/collections"


def b_user(user: Principal, role: str | None = None) -> dict[str, Any]:
    """A user as dialect B shows it."""
    return {
        "id": user.user_id,
        "first_name": None,
        "last_name": None,
        "email": user.email,
        "user_role": {"name": role or user.role},
    }


async def test_public_and_private_answer_as_documented(access: Access, events: EventTap) -> None:
    """public -> {"is_public": true}, again 400; private -> false, again 400; each change is an event."""
    owner = await access.user()
    cid = access.catalog.add_collection(owner.user_id)

    assert await access.call("POST", f"{B}/{cid}/private", as_=owner) == (
        400,
        {"error": "Collection is private already"},
    )
    assert await access.call("POST", f"{B}/{cid}/public", as_=owner) == (200, {"is_public": True})
    assert await access.call("POST", f"{B}/{cid}/public", as_=owner) == (
        400,
        {"error": "Collection is public already"},
    )
    assert await access.call("POST", f"{B}/{cid}/private", as_=owner) == (200, {"is_public": False})
    assert await access.call("POST", f"{B}/{cid}/private", as_=owner) == (
        400,
        {"error": "Collection is private already"},
    )
    public = await events.expect("access.collection.made_public", collection_id=cid)
    assert (public["ids"], public["data"], public["actor"]) == (
        {"collection_id": cid},
        {"is_public": True},
        owner.user_id,
    )
    private = await events.expect("access.collection.made_private", collection_id=cid)
    assert private["data"] == {"is_public": False}
    assert [e["type"] for e in await events.settle(0.3) if e["ids"].get("collection_id") == cid] == [
        "access.collection.made_public",
        "access.collection.made_private",
    ]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("POST", "public"),
        ("POST", "private"),
        ("GET", "users"),
        ("GET", "all_users"),
        ("POST", "users/1"),
        ("DELETE", "users/1"),
        ("POST", "guests"),
        ("GET", "user_groups"),
        ("POST", "user_groups/1"),
        ("DELETE", "user_groups/1"),
    ],
)
async def test_every_endpoint_hides_collections_the_caller_may_not_see(
    access: Access, method: str, suffix: str
) -> None:
    """Unknown collection, or a private one the caller has no grant on: 404 collection not found."""
    owner = await access.user()
    stranger = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    body = {"email": "someone@example.com"} if suffix == "guests" else None
    for collection_id, caller in (("not-found-id", owner), (cid, stranger)):
        status, answer = await access.call(method, f"{B}/{collection_id}/{suffix}", as_=caller, json=body)
        assert (status, answer) == (404, {"error": "collection not found"}), (collection_id, suffix)


async def test_readers_who_may_not_share_are_refused_with_403(access: Access) -> None:
    """A shared user, a project editor or anyone on a public collection sees it but may not manage it."""
    owner = await access.user()
    shared = await access.user()
    editor = await access.user()
    stranger = await access.user()
    cid = access.catalog.add_collection(owner.user_id, project_id="proj-x")
    access.catalog.projects[("ns", "proj")] = "proj-x"
    assert (await access.call("POST", f"{B}/{cid}/users/{shared.user_id}", as_=owner))[0] == 200
    status, _ = await access.call(
        "PUT", f"/admin/namespaces/ns/projects/proj/members/{editor.user_id}", json={"role": "editor"}
    )
    assert status == 200
    assert (await access.call("POST", f"{B}/{cid}/public", as_=owner))[0] == 200
    for caller in (shared, editor, stranger):
        for method, suffix in (("GET", "users"), ("POST", "private"), ("POST", f"users/{stranger.user_id}")):
            status, body = await access.call(method, f"{B}/{cid}/{suffix}", as_=caller)
            assert status == 403, (caller, suffix)
            assert body == {"error": "only the owner or an admin may change who can see this collection"}
    assert await access.call("GET", f"{B}/{cid}/users", as_=None) == (
        401,
        {"error": "authentication required"},
    )


async def test_admin_manages_any_collection(access: Access) -> None:
    """An admin who is neither owner nor shared may change visibility and shares."""
    owner = await access.user()
    admin = await access.user("admin")
    cid = access.catalog.add_collection(owner.user_id)
    assert await access.call("POST", f"{B}/{cid}/public", as_=admin) == (200, {"is_public": True})
    assert (await access.call("POST", f"{B}/{cid}/users/{owner.user_id}", as_=admin))[0] == 400


async def test_users_lists_the_owner_then_shared_users_in_order(access: Access) -> None:
    """`users` shows the owner first, then users as they were added, in B's user shape."""
    owner = await access.user("admin")
    first = await access.user()
    second = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    assert await access.call("GET", f"{B}/{cid}/users", as_=owner) == (200, {"users": [b_user(owner)]})
    for user in (second, first):
        assert (await access.call("POST", f"{B}/{cid}/users/{user.user_id}", as_=owner))[0] == 200
    assert await access.call("GET", f"{B}/{cid}/users", as_=owner) == (
        200,
        {"users": [b_user(owner), b_user(second), b_user(first)]},
    )


async def test_add_and_remove_user_answer_as_documented(access: Access, events: EventTap) -> None:
    """Added/removed `succesfully` (sic), 400 when already/not a member, and one event per change."""
    owner = await access.user()
    user = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    path = f"{B}/{cid}/users/{user.user_id}"

    assert await access.call("POST", path, as_=owner) == (
        200,
        {"ok": f"User {user.user_id} was added succesfully"},
    )
    assert await access.call("POST", path, as_=owner) == (
        400,
        {"error": "User is already member of this Collection"},
    )
    assert await access.call("DELETE", path, as_=owner) == (
        200,
        {"ok": f"User {user.user_id} was removed succesfully"},
    )
    assert await access.call("DELETE", path, as_=owner) == (
        400,
        {"error": "User is not a member of this Collection"},
    )
    linked = await events.expect("access.collection.user_linked", collection_id=cid)
    assert linked["ids"] == {"collection_id": cid, "user_id": user.user_id}
    unlinked = await events.expect("access.collection.user_unlinked", collection_id=cid)
    assert unlinked["ids"] == {"collection_id": cid, "user_id": user.user_id}
    assert len([e for e in await events.settle(0.3) if e["ids"].get("collection_id") == cid]) == 2


async def test_owner_is_always_a_member(access: Access) -> None:
    """Adding the owner is 400 `already member`; removing the owner is refused with 400."""
    owner = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    path = f"{B}/{cid}/users/{owner.user_id}"
    assert await access.call("POST", path, as_=owner) == (
        400,
        {"error": "User is already member of this Collection"},
    )
    assert await access.call("DELETE", path, as_=owner) == (
        400,
        {"error": "The owner cannot be removed from this Collection"},
    )


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("raw", ["not-found-id", "abc", "1.5", "-3", "٣", "99999999"])
async def test_user_ids_that_name_nobody_are_404(access: Access, method: str, raw: str) -> None:
    """A user id that is not an integer, or an unknown one: 404 `Couldn't find User with 'id'=...`."""
    owner = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    assert await access.call(method, f"{B}/{cid}/users/{raw}", as_=owner) == (
        404,
        {"error": f"Couldn't find User with 'id'={raw}"},
    )
    assert await access.db["collection_access"].count_documents({"user_ids": {"$in": [99999999]}}) == 0


async def test_guest_invitation_creates_a_guest_shares_and_mails(access: Access, events: EventTap) -> None:
    """A new e-mail becomes a guest user on the collection; the answer lists the collection's users."""
    owner = await access.user("admin")
    cid = access.catalog.add_collection(owner.user_id, name="Holiday")

    status, body = await access.call(
        "POST", f"{B}/{cid}/guests", as_=owner, json={"email": "testiemail@tvtools.fi"}
    )
    assert status == 200, body
    guest = body["users"][1]
    assert body == {
        "users": [
            b_user(owner),
            {
                "id": guest["id"],
                "first_name": None,
                "last_name": None,
                "email": "testiemail@tvtools.fi",
                "user_role": {"name": "guest"},
            },
        ]
    }
    stored = await access.db["users"].find_one({"_id": guest["id"]})
    assert stored is not None
    assert (stored["role"], "invite_pending" in stored) == ("guest", False)
    mail = await access.db["outgoing_mail"].find({"to": "testiemail@tvtools.fi"}).to_list()
    assert len(mail) == 1
    assert "Holiday" in mail[0]["subject"]
    invited = await events.expect("access.collection.guest_invited", collection_id=cid)
    assert (invited["ids"], invited["data"]) == (
        {"collection_id": cid, "user_id": guest["id"]},
        {"email": "testiemail@tvtools.fi"},
    )
    await events.expect("access.user.created", user_id=guest["id"])
    guest_principal = Principal(
        user_id=guest["id"], email="testiemail@tvtools.fi", role="guest", auth="api_key"
    )
    assert await access.permissions(guest_principal, cid) == {"read": True, "write": False, "share": False}


async def test_guest_invitation_for_an_existing_email_is_400(access: Access) -> None:
    """An e-mail that belongs to a user (in any case) is 400 `User already exists`, and nothing changes."""
    owner = await access.user()
    existing = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    for email in (existing.email, existing.email.upper()):
        assert await access.call("POST", f"{B}/{cid}/guests", as_=owner, json={"email": email}) == (
            400,
            {"error": "User already exists"},
        )
    assert (
        await access.db["collection_access"].count_documents({"user_ids": {"$in": [existing.user_id]}}) == 0
    )
    assert await access.db["outgoing_mail"].count_documents({}) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not-an-address"},
        {"email": 42},
        {"email": ["a@example.com"]},
        {"email": "ok@example.com", "role": "admin"},
    ],
)
async def test_guest_invitation_bad_input_is_422_and_creates_nothing(
    access: Access, body: dict[str, Any]
) -> None:
    """Missing, malformed or non-string e-mail, or an unknown field: 422 and no user, no share, no mail."""
    owner = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    users_before = await access.db["users"].count_documents({})
    status, answer = await access.call("POST", f"{B}/{cid}/guests", as_=owner, json=body)
    assert status == 422
    assert set(answer) == {"error"}
    assert await access.db["users"].count_documents({}) == users_before
    assert await access.db["collection_access"].count_documents({}) == 0
    assert await access.db["outgoing_mail"].count_documents({}) == 0


class FlakyMailer:
    """A mailer (no provider exists here) that fails its first send, as a provider outage would."""

    def __init__(self) -> None:
        self.sent: list[MailMessage] = []
        self.failures_left = 1

    async def send(self, message: MailMessage) -> None:
        """Fail once, then accept."""
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("mail provider unavailable")
        self.sent.append(message)


async def test_interrupted_guest_invitation_finishes_on_retry(
    make_access: Callable[..., Any], catalog: StandInCatalog, db_name: str
) -> None:
    """When mailing fails after the guest was created, repeating the invitation completes it, once."""
    mailer = FlakyMailer()

    def register(app: web.Application) -> None:
        app[MAILER_KEY] = mailer

    async with make_access(db_name, register) as client:
        access = Access(client, catalog)
        owner = await access.user()
        cid = catalog.add_collection(owner.user_id)
        invite = {"email": "late@example.com"}

        status, _ = await access.call("POST", f"{B}/{cid}/guests", as_=owner, json=invite)
        assert status == 500
        status, body = await access.call("POST", f"{B}/{cid}/guests", as_=owner, json=invite)
        assert status == 200, body
        assert [u["email"] for u in body["users"]] == [owner.email, "late@example.com"]
        assert [m.to for m in mailer.sent] == ["late@example.com"]
        guest = await access.db["users"].find_one({"email_key": "late@example.com"})
        assert guest is not None
        assert "invite_pending" not in guest
        access_doc = await access.db["collection_access"].find_one({"_id": cid})
        assert access_doc is not None
        assert access_doc["user_ids"] == [guest["_id"]]
        # Finished now: a third attempt is an ordinary existing e-mail.
        assert await access.call("POST", f"{B}/{cid}/guests", as_=owner, json=invite) == (
            400,
            {"error": "User already exists"},
        )


async def test_user_groups_answer_as_documented(access: Access, events: EventTap) -> None:
    """Link/unlink a group with the documented messages; user_groups lists it with its members."""
    owner = await access.user()
    member = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    group_id = await access.group(member, name="user-group-1")
    path = f"{B}/{cid}/user_groups/{group_id}"

    assert await access.call("GET", f"{B}/{cid}/user_groups", as_=owner) == (200, {"user_groups": []})
    assert await access.call("POST", path, as_=owner) == (
        200,
        {"ok": f"User group {group_id} was added succesfully"},
    )
    assert await access.call("POST", path, as_=owner) == (
        400,
        {"error": f"User group with id {group_id} is already part of this Collection"},
    )
    status, body = await access.call("GET", f"{B}/{cid}/user_groups", as_=owner)
    assert status == 200
    [group] = body["user_groups"]
    assert group == {
        "id": group_id,
        "name": "user-group-1",
        "description": None,
        "created_at": group["created_at"],
        "updated_at": group["updated_at"],
        "users": [b_user(member)],
    }
    assert group["created_at"].endswith("Z")
    assert await access.call("DELETE", path, as_=owner) == (
        200,
        {"ok": f"User group {group_id} was removed succesfully"},
    )
    assert await access.call("DELETE", path, as_=owner) == (
        400,
        {"error": f"User group with id {group_id} is not part of this Collection"},
    )
    linked = await events.expect("access.collection.group_linked", collection_id=cid)
    assert linked["ids"] == {"collection_id": cid, "group_id": group_id}
    unlinked = await events.expect("access.collection.group_unlinked", collection_id=cid)
    assert unlinked["ids"] == {"collection_id": cid, "group_id": group_id}


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("raw", ["not-found-id", "abc", "0x1", "424242"])
async def test_group_ids_that_name_no_group_are_404(access: Access, method: str, raw: str) -> None:
    """A group id that is not an integer, or an unknown one: 404 `Couldn't find UserGroup with 'id'=...`."""
    owner = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    assert await access.call(method, f"{B}/{cid}/user_groups/{raw}", as_=owner) == (
        404,
        {"error": f"Couldn't find UserGroup with 'id'={raw}"},
    )


async def test_all_users_lists_everyone_allowed_to_see(access: Access) -> None:
    """Owner, shared users, guests, members of shared groups, project role holders and admins; by id."""
    owner = await access.user()
    shared = await access.user()
    member = await access.user()
    viewer = await access.user()
    admin = await access.user("admin")
    stranger = await access.user()
    in_unshared_group = await access.user()
    cid = access.catalog.add_collection(owner.user_id, project_id="proj-all")
    access.catalog.projects[("ns", "all")] = "proj-all"
    await access.group(in_unshared_group, name="elsewhere")
    group_id = await access.group(member)
    assert (await access.call("POST", f"{B}/{cid}/users/{shared.user_id}", as_=owner))[0] == 200
    assert (await access.call("POST", f"{B}/{cid}/user_groups/{group_id}", as_=owner))[0] == 200
    status, body = await access.call(
        "POST", f"{B}/{cid}/guests", as_=owner, json={"email": "guest-all@example.com"}
    )
    assert status == 200
    guest_id = body["users"][-1]["id"]
    status, _ = await access.call(
        "PUT", f"/admin/namespaces/ns/projects/all/members/{viewer.user_id}", json={"role": "viewer"}
    )
    assert status == 200

    status, body = await access.call("GET", f"{B}/{cid}/all_users", as_=owner)
    assert status == 200
    ids = [user["id"] for user in body["users"]]
    assert ids == sorted(ids)
    expected = {owner.user_id, shared.user_id, member.user_id, viewer.user_id, admin.user_id, guest_id}
    assert expected <= set(ids)
    assert stranger.user_id not in ids
    assert in_unshared_group.user_id not in ids
    # Every other user in the set is an admin (the database holds only this test's users).
    assert {u["id"] for u in body["users"] if u["id"] not in expected} == set()
    assert b_user(admin) in body["users"]


@pytest.mark.parametrize("suffix", ["public", "private", "users/1", "user_groups/1"])
async def test_unknown_body_fields_are_422_and_change_nothing(access: Access, suffix: str) -> None:
    """B actions take no parameters: an unknown field is a 422 and nothing is stored."""
    owner = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    status, body = await access.call("POST", f"{B}/{cid}/{suffix}", as_=owner, json={"is_public": True})
    assert status == 422
    assert "is_public" in body["error"]
    assert await access.db["collection_access"].count_documents({}) == 0


async def test_catalog_failure_is_503_not_a_guess(access: Access) -> None:
    """When catalog cannot answer, access answers 503 rather than deciding without the collection."""
    owner = await access.user()
    cid = access.catalog.add_collection(owner.user_id)
    access.catalog.failing = True
    assert await access.call("GET", f"{B}/{cid}/users", as_=owner) == (503, {"error": "catalog unavailable"})


async def test_collection_ids_reach_catalog_as_one_encoded_segment(access: Access) -> None:
    """An id with reserved characters is passed on percent-encoded, as one path segment."""
    owner = await access.user()
    status, _ = await access.call("GET", f"{B}/a%3Fb%2523c/users", as_=owner)
    assert status == 404
    assert access.catalog.asked[-1] == "/internal/collections/a?b%23c"

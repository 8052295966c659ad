"""The lists ("the collections I can see") in dialects A, B and C, served from the per-reader views.

Every grant shows in the very next list call of the reader it reaches, in every dialect, and every
revocation is gone from the next call: no sleep anywhere here. After concurrent creates and deletes a
list holds exactly the live collections, each once, whichever page size reads it (docs/scale.md, "Lists").
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from aiohttp import ClientSession

from collections_hub.stack import EmbeddedStack
from shared.principal import SECRET_HEADER, internal_headers
from tests.support import Hub, json_of


async def ok(hub: Hub, method: str, path: str, *expected: int, **kwargs: Any) -> Any:
    """The body of a call that must answer one of `expected` (200 when none given)."""
    status, body = await json_of(hub, method, path, **kwargs)
    assert status in (expected or (200,)), (method, path, status, body)
    return body


async def b_list(hub: Hub, key: str) -> list[str]:
    """Dialect B: every id the caller sees."""
    return list((await ok(hub, "GET", "/api/v2/collections", key=key))["collections"])


async def c_list(hub: Hub, key: str, page_size: int = 100) -> list[str]:
    """Dialect C: every id the caller sees, page after page."""
    ids: list[str] = []
    token = None
    while True:
        query = f"?pageSize={page_size}" + (f"&paginationToken={token}" if token else "")
        body = await ok(hub, "GET", f"/v1/collections{query}", key=key)
        ids += [c["id"] for c in body["collections"]]
        token = body.get("nextPaginationToken")
        if token is None:
            return ids


async def a_list(hub: Hub, key: str, base: str, page_size: int = 200) -> tuple[list[str], int]:
    """Dialect A: every name the caller sees in a project, page after page, and the total it states."""
    names: list[str] = []
    page, total = 1, 0
    while True:
        body = await ok(hub, "GET", f"{base}?page={page}&pageSize={page_size}", key=key)
        names += [c["name"] for c in body["collections"]]
        total = body["total"]
        if page >= body["totalPages"]:
            return names, total
        page += 1


async def b_create(hub: Hub, key: str, title: str) -> str:
    """A collection in the caller's personal project; its id."""
    return str(
        (await ok(hub, "POST", "/api/v2/collections", key=key, json={"title": title}))["collection"]["id"]
    )


def personal(user_id: int) -> str:
    """Dialect A's base path of a user's personal project."""
    return f"/namespaces/personal/projects/user-{user_id}/collections"


async def test_a_share_shows_in_every_list_on_the_next_call_and_goes_with_its_revocation(hub: Hub) -> None:
    owner, owner_key = await hub.user_with_key()
    reader, reader_key = await hub.user_with_key()
    cid = await b_create(hub, owner_key, f"shared-{uuid.uuid4().hex[:6]}")
    assert cid in await b_list(hub, owner_key)  # the owner reads its own write at once
    assert cid not in await b_list(hub, reader_key)

    await ok(hub, "POST", f"/api/v2/collections/{cid}/users/{reader['id']}", key=owner_key)
    assert cid in await b_list(hub, reader_key)
    assert cid in await c_list(hub, reader_key)
    names, total = await a_list(hub, reader_key, personal(owner["id"]))
    assert total == len(names) == 1

    await ok(hub, "DELETE", f"/api/v2/collections/{cid}/users/{reader['id']}", key=owner_key)
    assert cid not in await b_list(hub, reader_key)
    assert cid not in await c_list(hub, reader_key)
    assert await a_list(hub, reader_key, personal(owner["id"])) == ([], 0)
    assert cid in await b_list(hub, owner_key)


async def test_group_shares_and_memberships_reach_the_lists_both_ways(hub: Hub) -> None:
    _, owner_key = await hub.user_with_key()
    member, member_key = await hub.user_with_key()
    first = await b_create(hub, owner_key, "via-group-1")
    group = await ok(hub, "POST", "/admin/groups", 201, json={"name": f"g-{uuid.uuid4().hex[:6]}"})
    await ok(hub, "POST", f"/api/v2/collections/{first}/user_groups/{group['id']}", key=owner_key)
    assert first not in await b_list(hub, member_key)  # not in the group yet

    await ok(hub, "POST", f"/admin/groups/{group['id']}/members", 200, 201, json={"user_ids": [member["id"]]})
    assert first in await b_list(hub, member_key)  # membership reaches what the group already saw
    second = await b_create(hub, owner_key, "via-group-2")
    await ok(hub, "POST", f"/api/v2/collections/{second}/user_groups/{group['id']}", key=owner_key)
    assert {first, second} <= set(await c_list(hub, member_key))  # a share reaches the group's members

    # Shared directly too: leaving the group keeps what is still shared another way.
    await ok(hub, "POST", f"/api/v2/collections/{second}/users/{member['id']}", key=owner_key)
    await ok(hub, "DELETE", f"/admin/groups/{group['id']}/members/{member['id']}")
    seen = await b_list(hub, member_key)
    assert first not in seen
    assert second in seen


async def test_a_project_role_shows_the_whole_project_and_its_removal_hides_it(hub: Hub) -> None:
    owner, owner_key = await hub.user_with_key()
    viewer, viewer_key = await hub.user_with_key()
    ids = [await b_create(hub, owner_key, f"project-{n}") for n in range(3)]
    members = f"/admin/namespaces/personal/projects/user-{owner['id']}/members/{viewer['id']}"
    await ok(hub, "PUT", members, json={"role": "viewer"})
    assert set(ids) <= set(await b_list(hub, viewer_key))
    names, total = await a_list(hub, viewer_key, personal(owner["id"]), page_size=2)
    assert total == 3
    assert sorted(names) == ["project-0", "project-1", "project-2"]
    later = await b_create(hub, owner_key, "project-3")  # a new collection reaches the role holder too
    assert later in await c_list(hub, viewer_key, page_size=2)

    await ok(hub, "DELETE", members)
    assert not {*ids, later} & set(await b_list(hub, viewer_key))
    assert await a_list(hub, viewer_key, personal(owner["id"])) == ([], 0)


async def test_concurrent_creates_and_deletes_leave_each_live_collection_listed_once(hub: Hub) -> None:
    user, key = await hub.user_with_key()
    _, sharer_key = await hub.user_with_key()
    created = await asyncio.gather(*(b_create(hub, key, f"burst-{n}") for n in range(32)))
    # Others' collections shared with the user arrive meanwhile, and some of the user's own go.
    shared = await asyncio.gather(*(b_create(hub, sharer_key, f"in-{n}") for n in range(8)))
    doomed = set(created[::3])
    await asyncio.gather(
        *(ok(hub, "DELETE", f"/api/v2/collections/{cid}", key=key) for cid in doomed),
        *(ok(hub, "POST", f"/api/v2/collections/{cid}/users/{user['id']}", key=sharer_key) for cid in shared),
    )
    live = (set(created) - doomed) | set(shared)
    for page_size in (1, 7, 100):
        listed = await c_list(hub, key, page_size)
        assert len(listed) == len(set(listed)), "a collection listed twice"
        assert set(listed) == live
    in_b = await b_list(hub, key)
    assert len(in_b) == len(live)
    assert set(in_b) == live
    names, total = await a_list(hub, key, personal(user["id"]), page_size=5)
    assert total == len(names) == len(set(created) - doomed)


async def test_a_deleted_collection_leaves_every_readers_list(hub: Hub) -> None:
    _, owner_key = await hub.user_with_key()
    reader, reader_key = await hub.user_with_key()
    ids = [await b_create(hub, owner_key, f"going-{n}") for n in range(5)]
    for cid in ids:
        await ok(hub, "POST", f"/api/v2/collections/{cid}/users/{reader['id']}", key=owner_key)
    await ok(hub, "DELETE", f"/api/v2/collections/{ids[1]}", key=owner_key)  # from the middle of the view
    assert await c_list(hub, reader_key, page_size=2) == [ids[0], ids[4], ids[2], ids[3]]
    assert set(await b_list(hub, reader_key)) == {ids[0], ids[2], ids[3], ids[4]}


async def test_an_admin_lists_everything_and_a_stranger_nothing_of_it(hub: Hub) -> None:
    _, owner_key = await hub.user_with_key()
    _, stranger_key = await hub.user_with_key()
    cid = await b_create(hub, owner_key, "private")
    assert cid in await b_list(hub, hub.admin_key)
    assert cid not in await b_list(hub, stranger_key)
    assert cid not in await c_list(hub, stranger_key)


async def test_paging_while_collections_come_and_go_never_lists_one_twice(hub: Hub) -> None:
    """A page token continues at a position: what arrives meanwhile lands at the end, what leaves is
    replaced by the last one, so a client paging through changes sees no collection twice, and nothing
    that had gone before its page was read."""
    _, key = await hub.user_with_key()
    alive = [await b_create(hub, key, f"moving-{n}") for n in range(12)]
    rng = random.Random(3)
    seen: list[str] = []
    gone: set[str] = set()
    token = None
    for round_ in range(40):
        query = "?pageSize=2" + (f"&paginationToken={token}" if token else "")
        body = await ok(hub, "GET", f"/v1/collections{query}", key=key)
        page = [c["id"] for c in body["collections"]]
        assert not set(page) & gone
        seen += page
        token = body.get("nextPaginationToken")
        if token is None:
            break
        leaving = alive.pop(rng.randrange(len(alive)))  # seen already or not: either may leave
        await ok(hub, "DELETE", f"/api/v2/collections/{leaving}", key=key)
        gone.add(leaving)
        alive.append(await b_create(hub, key, f"late-{round_}"))
    assert token is None
    assert len(seen) == len(set(seen))


async def test_the_facts_route_takes_only_well_formed_facts_and_only_from_services(
    hub: Hub, stack: EmbeddedStack
) -> None:
    """catalog's `POST /internal/visibility/facts` wants the internal credential, and refuses every
    malformed fact with a 400 that changes no list; the gateway does not route it."""
    _, owner_key = await hub.user_with_key()
    reader, reader_key = await hub.user_with_key()
    cid = await b_create(hub, owner_key, "facts")
    url = f"{stack.service_urls['catalog_service']}/internal/visibility/facts"
    good = {"kind": "share", "on": True, "version": 99, "collection_id": cid, "user_id": reader["id"]}
    hostile: list[Any] = [
        {**good, "collection_id": f"{cid}\x1fu:{reader['id']}"},  # a separator smuggled into an id
        {**good, "collection_id": ""},
        {**good, "collection_id": "x" * 300},
        {**good, "version": -1},
        {**good, "version": 2**70},
        {**good, "user_id": "1"},
        {**good, "group_id": 4},  # a user and a group at once
        {**{k: v for k, v in good.items() if k != "user_id"}},  # neither
        {**good, "kind": "owner"},
        {**good, "extra": 1},
        {"kind": "role", "on": True, "version": 1, "user_id": reader["id"]},  # no project
        {"kind": "member", "on": True, "version": 1, "group_id": 1},  # no user
    ]
    headers = internal_headers(stack.internal_secret, None, None)
    async with ClientSession() as http:
        for fact in hostile:
            response = await http.post(url, json={"facts": [fact]}, headers=headers)
            assert response.status == 400, fact
        response = await http.post(url, json={"facts": [good] * 1001}, headers=headers)
        assert response.status == 400
        for forged in ({}, {SECRET_HEADER: "guess"}):
            assert (await http.post(url, json={"facts": [good]}, headers=forged)).status == 401
    assert cid not in await b_list(hub, reader_key)
    assert (await hub.call("POST", "/internal/visibility/facts", json={"facts": [good]})).status == 404
    assert cid not in await b_list(hub, reader_key)
    assert cid in await b_list(hub, owner_key)


async def test_a_list_shows_each_collections_own_members_whatever_the_order_of_the_page(hub: Hub) -> None:
    """Dialect A lists every member of each collection on the page. After a removal reorders the view
    (the last collection moves into the freed place), each still shows exactly its own members."""
    user, key = await hub.user_with_key()
    base = personal(user["id"])
    for n in range(4):
        await ok(hub, "POST", base, 201, key=key, json={"name": f"m{n}", "members": [f"m{n}-a", f"m{n}-b"]})
    await ok(hub, "POST", base, 201, key=key, json={"name": "empty"})
    await ok(hub, "DELETE", f"{base}/m1", key=key)  # "empty", the last, moves into m1's place
    body = await ok(hub, "GET", f"{base}?page=1&pageSize=10", key=key)
    assert [c["name"] for c in body["collections"]] == ["m0", "empty", "m2", "m3"]
    assert {c["name"]: c["members"] for c in body["collections"]} == {
        "m0": ["m0-a", "m0-b"],
        "empty": [],
        "m2": ["m2-a", "m2-b"],
        "m3": ["m3-a", "m3-b"],
    }

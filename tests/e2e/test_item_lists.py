"""A collection's assets and models, listed through the gateway (dialect C's and B's routes).

Order of addition, walks during concurrent adds and removes, who may list, hostile tokens and page sizes,
empty and deleted collections, and the MongoDB commands a page costs.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from catalog_service.service import ItemCursors, ListCursors
from collections_hub.stack import EmbeddedStack
from shared.cursors import TokenSigner
from tests.e2e.test_catalog import commands, registered
from tests.security.test_cursors import assert_dialect_error, echoed, hostile
from tests.support import Hub, json_of

NOT_FOUND = {"error": "collection not found"}


async def new_collection(hub: Hub, key: str | None = None, name: str = "items") -> str:
    """A new dialect C collection of the caller (the admin unless `key`)."""
    status, body = await json_of(hub, "POST", "/v1/collections", key=key, json={"name": name})
    assert status == 200, body
    return str(body["collection"]["id"])


async def link(
    hub: Hub, cid: str, kind: str, ids: list[str], *, add: bool = True, key: str | None = None
) -> None:
    """Add (or remove) assets or models through dialect C, 49 a call."""
    field = "assetIds" if kind == "assets" else "modelIds"
    for start in range(0, len(ids), 49):
        chunk = ids[start : start + 49]
        response = await hub.call(
            "PUT" if add else "DELETE", f"/v1/collections/{cid}/{kind}", key=key, json={field: chunk}
        )
        assert response.status == 200, await response.text()


async def walk_c(
    hub: Hub, path: str, kind: str, page_size: int, key: str | None = None, **params: str
) -> list[Any]:
    """Every item of a C item list, following `nextPaginationToken`; each page checked for its size."""
    seen: list[Any] = []
    token: str | None = None
    while True:
        query = {"pageSize": str(page_size), **params, **({"paginationToken": token} if token else {})}
        status, body = await json_of(hub, "GET", path, key=key, params=query)
        assert status == 200, body
        assert set(body) <= {kind, "nextPaginationToken"}
        seen += body[kind]
        token = body.get("nextPaginationToken")
        if token is None:
            return seen
        assert len(body[kind]) == page_size


async def walk_b(hub: Hub, cid: str, key: str | None = None) -> list[Any]:
    """Every asset of a B list, from cursor `0` through each `next_cursor`."""
    seen: list[Any] = []
    cursor = "0"
    while True:
        status, body = await json_of(hub, "GET", f"/api/v2/collections/{cid}/assets/{cursor}", key=key)
        assert status == 200, body
        seen += body["assets"]["results"]
        if body["assets"]["next_cursor"] is None:
            return seen
        assert len(body["assets"]["results"]) == 20
        cursor = body["assets"]["next_cursor"]


# --- what a list shows -----------------------------------------------------------------------------------
async def test_every_route_lists_items_in_the_order_they_were_added_as_the_registry_shows_them(
    hub: Hub,
) -> None:
    """C's two routes and B's page 23 assets (and C 4 models) in order of addition, each as GET shows it."""
    assets = await registered(hub, "assets", 23, url="https://example.com/a.png")
    models = await registered(hub, "models", 4)
    cid = await new_collection(hub)
    order = [assets[5], assets[0], *assets[10:], assets[3], *assets[6:10], assets[1], assets[2], assets[4]]
    await link(hub, cid, "assets", order[:3])
    await link(hub, cid, "assets", order[3:12])
    await link(hub, cid, "assets", [order[0], *order[12:]])  # a repeat keeps its place
    await link(hub, cid, "models", [models[2], models[0]])
    await link(hub, cid, "models", [models[3], models[1]])
    expected = []
    for asset_id in order:
        status, shown = await json_of(hub, "GET", f"/v1/assets/{asset_id}")
        assert status == 200
        expected.append(shown)
    assert await walk_c(hub, f"/v1/collections/{cid}/assets", "assets", 4) == expected
    assert await walk_c(hub, "/v1/assets", "assets", 7, collectionId=cid) == expected
    assert await walk_c(hub, f"/v1/collections/{cid}/assets", "assets", 100) == expected
    assert await walk_b(hub, cid) == expected
    status, first = await json_of(hub, "GET", f"/api/v2/collections/{cid}/assets")
    assert (status, first["assets"]["results"]) == (200, expected[:20])
    model_order = [models[2], models[0], models[3], models[1]]
    listed = await walk_c(hub, f"/v1/collections/{cid}/models", "models", 3)
    assert [m["id"] for m in listed] == model_order
    assert await walk_c(hub, "/v1/models", "models", 10, collectionId=cid) == listed
    _, counted = await json_of(hub, "GET", f"/v1/collections/{cid}")
    assert (counted["collection"]["assetCount"], counted["collection"]["modelCount"]) == (23, 4)


async def test_a_removed_and_re_added_item_moves_to_the_end_and_a_registry_delete_is_marked(hub: Hub) -> None:
    """Removal drops an item from the list; adding it back puts it last; a registry delete shows `deleted`."""
    assets = await registered(hub, "assets", 4)
    cid = await new_collection(hub)
    await link(hub, cid, "assets", assets)
    await link(hub, cid, "assets", [assets[1]], add=False)
    listed = await walk_c(hub, f"/v1/collections/{cid}/assets", "assets", 10)
    assert [a["id"] for a in listed] == [assets[0], assets[2], assets[3]]
    await link(hub, cid, "assets", [assets[1]])
    assert (await hub.call("DELETE", f"/v1/assets/{assets[2]}")).status == 200
    listed = await walk_c(hub, f"/v1/collections/{cid}/assets", "assets", 10)
    assert [a["id"] for a in listed] == [assets[0], assets[2], assets[3], assets[1]]
    assert [a.get("deleted") for a in listed] == [None, True, None, None]
    assert (await hub.call("GET", f"/v1/assets/{assets[2]}")).status == 404
    assert set(listed[1]) == {"id", "name", "ownerId", "createdAt", "deleted"}


async def test_an_empty_collection_lists_nothing_and_no_token(hub: Hub) -> None:
    """No items: an empty list and no token in C, empty results and a null cursor in B."""
    cid = await new_collection(hub)
    for path in (f"/v1/collections/{cid}/assets", f"/v1/collections/{cid}/models"):
        assert await json_of(hub, "GET", path) == (200, {path.rsplit("/", 1)[1]: []})
    assert await json_of(hub, "GET", "/v1/models", params={"collectionId": cid}) == (200, {"models": []})
    empty_b: dict[str, Any] = {"assets": {"results": [], "next_cursor": None}}
    assert await json_of(hub, "GET", f"/api/v2/collections/{cid}/assets") == (200, empty_b)
    assert await json_of(hub, "GET", f"/api/v2/collections/{cid}/assets/0") == (200, empty_b)


async def test_a_page_ending_exactly_at_the_last_item_is_the_last_page(hub: Hub) -> None:
    """Six assets in pages of three: two pages, and the second carries no token."""
    assets = await registered(hub, "assets", 6)
    cid = await new_collection(hub)
    await link(hub, cid, "assets", assets)
    _, first = await json_of(hub, "GET", f"/v1/collections/{cid}/assets", params={"pageSize": "3"})
    token = first["nextPaginationToken"]
    _, second = await json_of(
        hub, "GET", f"/v1/collections/{cid}/assets", params={"pageSize": "3", "paginationToken": token}
    )
    assert [a["id"] for a in first["assets"] + second["assets"]] == assets
    assert "nextPaginationToken" not in second


# --- walks during changes --------------------------------------------------------------------------------
async def test_walks_during_concurrent_adds_and_removes_show_every_steady_item_exactly_once(hub: Hub) -> None:
    """While other clients add and remove items, each walk shows every item present throughout exactly once,
    in order of addition, and no item twice."""
    steady = await registered(hub, "assets", 30)
    churn = await registered(hub, "assets", 60)
    cid = await new_collection(hub)
    # Steady items interleaved with churn items that will be removed while the walks run.
    await link(hub, cid, "assets", [x for pair in zip(steady, churn[:30], strict=True) for x in pair])
    stop = asyncio.Event()
    changes: list[str] = []  # what the other clients changed while the walks ran

    async def churner(ids: list[str], doomed: list[str]) -> None:
        """Add fresh items and remove early ones, one call each, until the walks are over."""
        for fresh, gone in zip(ids, doomed, strict=False):
            if stop.is_set():
                return
            await link(hub, cid, "assets", [fresh])
            await link(hub, cid, "assets", [gone], add=False)
            changes.extend([fresh, gone])

    writers = [
        asyncio.create_task(churner(churn[30:45], churn[0:30:2])),
        asyncio.create_task(churner(churn[45:60], churn[1:30:2])),
    ]
    try:
        walks = await asyncio.gather(
            walk_c(hub, f"/v1/collections/{cid}/assets", "assets", 3),
            walk_c(hub, "/v1/assets", "assets", 4, collectionId=cid),
            walk_b(hub, cid),
        )
        changed_meanwhile = len(changes)
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert changed_meanwhile > 0  # the walks really ran during changes
    initial = [x for pair in zip(steady, churn[:30], strict=True) for x in pair]
    for walk in walks:
        ids = [item["id"] for item in walk]
        assert len(ids) == len(set(ids))
        assert [i for i in ids if i in set(steady)] == steady
        # What else a walk met, it met in order of addition: the first items in their order, then newcomers.
        firsts = [i for i in ids if i in set(initial)]
        assert firsts == [i for i in initial if i in set(firsts)]
        assert ids[: len(firsts)] == firsts


async def test_a_walk_over_pages_while_items_leave_and_arrive_between_pages(hub: Hub) -> None:
    """Between every two pages one unseen item leaves and a new one arrives: survivors once, newcomers at
    the end, removed ones never after their removal."""
    initial = await registered(hub, "assets", 20)
    late = await registered(hub, "assets", 10)
    cid = await new_collection(hub)
    await link(hub, cid, "assets", initial)
    seen: list[str] = []
    removed: list[str] = []
    arrivals = iter(late)
    token: str | None = None
    while True:
        params = {"pageSize": "4", **({"paginationToken": token} if token else {})}
        status, page = await json_of(hub, "GET", f"/v1/collections/{cid}/assets", params=params)
        assert status == 200
        seen += [a["id"] for a in page["assets"]]
        assert not set(seen) & set(removed)
        unseen = [i for i in initial if i not in seen and i not in removed]
        if unseen:
            removed.append(unseen[len(unseen) // 2])
            await link(hub, cid, "assets", [removed[-1]], add=False)
        if (arrival := next(arrivals, None)) is not None:
            await link(hub, cid, "assets", [arrival])
        token = page.get("nextPaginationToken")
        if token is None:
            break
    survivors = [i for i in initial if i not in removed]
    assert seen[: len(survivors)] == survivors
    assert seen[len(survivors) :] == late[: len(seen) - len(survivors)]
    assert len(seen) == len(set(seen))


# --- who may list ----------------------------------------------------------------------------------------
async def test_listing_follows_read_access_owner_shared_public_and_stranger(hub: Hub) -> None:
    """Owner and shared reader list, a stranger gets the 404 until public; revoking holds at the next call."""
    _, owner_key = await hub.user_with_key()
    reader, reader_key = await hub.user_with_key()
    _, stranger_key = await hub.user_with_key()
    assets = await registered(hub, "assets", 3)
    models = await registered(hub, "models", 2)
    cid = await new_collection(hub, owner_key)
    await link(hub, cid, "assets", assets, key=owner_key)
    await link(hub, cid, "models", models, key=owner_key)
    routes = [
        (f"/v1/collections/{cid}/assets", {}),
        (f"/v1/collections/{cid}/models", {}),
        ("/v1/assets", {"collectionId": cid}),
        ("/v1/models", {"collectionId": cid}),
        (f"/api/v2/collections/{cid}/assets", {}),
        (f"/api/v2/collections/{cid}/assets/0", {}),
    ]

    async def statuses(key: str) -> list[int]:
        found = []
        for path, params in routes:
            status, body = await json_of(hub, "GET", path, key=key, params=params)
            if status == 404:
                assert body == NOT_FOUND
            found.append(status)
        return found

    assert await statuses(owner_key) == [200] * 6
    assert await statuses(stranger_key) == [404] * 6
    assert await statuses(reader_key) == [404] * 6
    share = f"/api/v2/collections/{cid}/users/{reader['id']}"
    assert (await hub.call("POST", share, key=owner_key)).status == 200
    assert await statuses(reader_key) == [200] * 6
    assert [a["id"] for a in await walk_b(hub, cid, key=reader_key)] == assets
    assert (await hub.call("POST", f"/api/v2/collections/{cid}/public", key=owner_key)).status == 200
    assert await statuses(stranger_key) == [200] * 6
    assert [
        m["id"] for m in await walk_c(hub, "/v1/models", "models", 1, stranger_key, collectionId=cid)
    ] == models
    assert (await hub.call("POST", f"/api/v2/collections/{cid}/private", key=owner_key)).status == 200
    assert (await hub.call("DELETE", share, key=owner_key)).status == 200
    assert await statuses(stranger_key) == [404] * 6
    assert await statuses(reader_key) == [404] * 6


async def test_a_deleted_or_unknown_collection_is_404_whatever_the_token(hub: Hub) -> None:
    """A deleted or unknown collection is 404 on every list route, before its token is judged."""
    assets = await registered(hub, "assets", 3)
    cid = await new_collection(hub)
    await link(hub, cid, "assets", assets)
    _, page = await json_of(hub, "GET", f"/v1/collections/{cid}/assets", params={"pageSize": "1"})
    token = page["nextPaginationToken"]
    assert (await hub.call("DELETE", f"/v1/collections/{cid}")).status == 200
    for target in (cid, "not-found-id"):
        for path, params in (
            (f"/v1/collections/{target}/assets", {}),
            (f"/v1/collections/{target}/assets", {"paginationToken": token}),
            (f"/v1/collections/{target}/models", {"paginationToken": "forged"}),
            ("/v1/assets", {"collectionId": target, "paginationToken": token}),
            ("/v1/models", {"collectionId": target}),
            (f"/api/v2/collections/{target}/assets", {}),
            (f"/api/v2/collections/{target}/assets/test", {}),
            (f"/api/v2/collections/{target}/assets/0", {}),
        ):
            assert await json_of(hub, "GET", path, params=params) == (404, NOT_FOUND), (path, params)


# --- hostile input ---------------------------------------------------------------------------------------
async def two_collections_with_tokens(hub: Hub) -> tuple[str, str, str, str]:
    """Two collections of 5 assets: each one's C token after its first 2 assets."""
    assets = await registered(hub, "assets", 5)
    tokens = []
    cids = []
    for _ in range(2):
        cid = await new_collection(hub)
        await link(hub, cid, "assets", assets)
        _, page = await json_of(hub, "GET", f"/v1/collections/{cid}/assets", params={"pageSize": "2"})
        tokens.append(page["nextPaginationToken"])
        cids.append(cid)
    return cids[0], tokens[0], cids[1], tokens[1]


async def test_c_refuses_every_hostile_token_with_its_400(hub: Hub, stack: EmbeddedStack) -> None:
    """Made-up, edited, stripped, foreign (collection, kind, caller, purpose, key) and non-position tokens are
    400 `invalid paginationToken` on both C routes; the genuine token still pages."""
    mine, genuine, other, other_genuine = await two_collections_with_tokens(hub)
    _, stranger_key = await hub.user_with_key()
    tokens = hostile(genuine, mine, other_genuine)
    signer = TokenSigner(stack.internal_secret, "catalog-items")
    cursors = ItemCursors(stack.internal_secret)
    tokens += [
        cursors.encode(1, mine, "model", 1),  # the models list's token, for assets
        cursors.encode(1, other, "asset", 1),  # another collection's
        cursors.encode(999_999, mine, "asset", 1),  # another caller's
        ItemCursors("not-the-stack-secret").encode(1, mine, "asset", 1),
        ListCursors(stack.internal_secret).encode_cursor(1, 1),  # the collections list's
        TokenSigner(stack.internal_secret, "history").issue(f"asset\x1f1\x1f{mine}", "1"),
        *(
            signer.issue(f"asset\x1f1\x1f{mine}", bad)
            for bad in ("abc", "-1", "1e3", " 3", "\u0663", "9" * 30)
        ),
    ]
    for token in tokens:
        for path, params in (
            (f"/v1/collections/{mine}/assets", {}),
            ("/v1/assets", {"collectionId": mine}),
        ):
            status, body = await json_of(
                hub, "GET", path, params={**params, "pageSize": "2", "paginationToken": token}
            )
            assert_dialect_error(status, body, token)
            assert status == 400, token[:80]
            if len(token) <= 200:  # a longer one fails the query's length rule first, in the same body
                assert body == {"error": "invalid paginationToken"}, token[:80]
    # The owner's genuine token is refused to another reader of the same (public) collection.
    assert (await hub.call("POST", f"/api/v2/collections/{mine}/public")).status == 200
    status, body = await json_of(
        hub, "GET", f"/v1/collections/{mine}/assets", key=stranger_key, params={"paginationToken": genuine}
    )
    assert (status, body) == (400, {"error": "invalid paginationToken"})
    status, body = await json_of(
        hub, "GET", f"/v1/collections/{mine}/assets", params={"pageSize": "2", "paginationToken": genuine}
    )
    assert (status, len(body["assets"])) == (200, 2)
    forged_by_the_stack = cursors.encode(1, mine, "asset", 0)
    status, body = await json_of(
        hub, "GET", f"/v1/collections/{mine}/assets", params={"paginationToken": forged_by_the_stack}
    )
    assert (status, len(body["assets"])) == (200, 4)


async def test_b_refuses_every_hostile_cursor_with_its_422(hub: Hub, stack: EmbeddedStack) -> None:
    """Hostile cursors are 4xx in B's body; those that reach catalog get the document's exact 422 message."""
    mine, genuine, _, other_genuine = await two_collections_with_tokens(hub)
    tokens = hostile(genuine, mine, other_genuine)
    tokens += [
        ItemCursors(stack.internal_secret).encode(1, mine, "model", 1),
        ListCursors(stack.internal_secret).encode_cursor(1, 1),
        TokenSigner(stack.internal_secret, "catalog-items").issue(f"asset\x1f1\x1f{mine}", "-1"),
    ]
    exact = 0
    for token in tokens:
        status, body = await json_of(hub, "GET", f"/api/v2/collections/{mine}/assets/{quote(token, safe='')}")
        assert_dialect_error(status, body, token)
        if status == 422:
            assert body == {"error": f"Invalid parameter 'cursor' value \"{echoed(token)}\": Invalid cursor"}
            exact += 1
    # Only the gateway may refuse a path first (too long for it); every other one reaches catalog's 422.
    assert exact >= len(tokens) - 2
    status, body = await json_of(hub, "GET", f"/api/v2/collections/{mine}/assets/{genuine}")
    assert (status, len(body["assets"]["results"]), body["assets"]["next_cursor"]) == (200, 3, None)


async def test_page_sizes_out_of_range_or_not_numbers_are_400(hub: Hub) -> None:
    """pageSize 0, 101, -1, text, huge, fractional, empty or twice is 400 `{"error"}`; 1 and 100 page."""
    cid = await new_collection(hub)
    bad = ["0", "101", "-1", "abc", str(10**30), "1.5", "", " 5", "+5", "1e2", "\u0663", "1" * 500]
    for path, params in ((f"/v1/collections/{cid}/models", {}), ("/v1/assets", {"collectionId": cid})):
        for value in bad:
            status, body = await json_of(hub, "GET", path, params={**params, "pageSize": value})
            assert status == 400, (path, value)
            assert set(body) == {"error"}
            assert isinstance(body["error"], str)
            assert len(value) < 100 or value not in body["error"]
        for value in ("1", "100"):
            assert (await hub.call("GET", path, params={**params, "pageSize": value})).status == 200
    twice = await json_of(hub, "GET", f"/v1/collections/{cid}/assets?pageSize=2&pageSize=3")
    assert twice[0] == 400


async def test_the_registry_list_needs_a_collection_id(hub: Hub) -> None:
    """`GET /v1/assets` (or models) without `collectionId`, or with an empty or odd one, is 400."""
    for kind in ("assets", "models"):
        for params in ({}, {"collectionId": ""}, {"collectionId": "a\x01b"}, {"collectionId": "x" * 129}):
            status, body = await json_of(hub, "GET", f"/v1/{kind}", params=params)
            assert status == 400, (kind, params)
            assert set(body) == {"error"}
        assert (await hub.call("POST", f"/v1/{kind}", json={"name": "still-registers"})).status == 201


# --- cost ------------------------------------------------------------------------------------------------
async def test_a_page_costs_three_mongo_commands_and_an_empty_one_two(hub: Hub, stack: EmbeddedStack) -> None:
    """A page: the collection, one indexed query for the members, one `_id $in` of their registry documents;
    an empty page skips the last. The same on every route and at every depth."""
    assets = await registered(hub, "assets", 30)
    cid = await new_collection(hub)
    empty = await new_collection(hub)
    await link(hub, cid, "assets", assets)
    _, page = await json_of(hub, "GET", f"/v1/collections/{cid}/assets", params={"pageSize": "10"})
    _, deep = await json_of(
        hub,
        "GET",
        f"/v1/collections/{cid}/assets",
        params={"pageSize": "10", "paginationToken": page["nextPaginationToken"]},
    )
    _, b_first = await json_of(hub, "GET", f"/api/v2/collections/{cid}/assets")
    calls = {
        "C first page": (f"/v1/collections/{cid}/assets", {"pageSize": "10"}, 3),
        "C deeper page": (
            f"/v1/collections/{cid}/assets",
            {"pageSize": "10", "paginationToken": deep["nextPaginationToken"]},
            3,
        ),
        "registry route": ("/v1/assets", {"collectionId": cid, "pageSize": "100"}, 3),
        "B first page": (f"/api/v2/collections/{cid}/assets", {}, 3),
        "B next page": (f"/api/v2/collections/{cid}/assets/{b_first['assets']['next_cursor']}", {}, 3),
        "empty models": (f"/v1/collections/{cid}/models", {}, 2),
        "empty collection": (f"/v1/collections/{empty}/assets", {}, 2),
    }
    spent = {}
    for label, (path, params, _) in calls.items():
        assert (await hub.call("GET", path, params=params)).status == 200  # warm the caches
        before = await commands(hub, stack)
        response = await hub.call("GET", path, params=params)
        assert response.status == 200, (label, await response.text())
        spent[label] = await commands(hub, stack) - before
    assert spent == {label: budget for label, (_, _, budget) in calls.items()}

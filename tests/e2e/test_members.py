"""Membership at scale through the gateway: many writers at once, grants seen by the very next request,
and dialect A's member lists streamed."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.support import Hub, json_of, new_project


async def test_32_writers_on_one_collection_all_succeed_and_stay_exact(hub: Hub) -> None:
    """32 clients adding and removing on one collection at once: only 2xx; every acknowledged add is there
    once, nothing removed remains, and the reported counts add up to the total."""
    base = await new_project(hub, "mem")
    assert (await hub.call("POST", base, json={"name": "busy"})).status == 201
    shared = [f"shared-{n}" for n in range(12)]
    statuses: list[int] = []
    net = 0

    async def client(n: int) -> None:
        nonlocal net
        own = [f"c{n}-{k}" for k in range(6)]
        steps: list[tuple[str, str, list[str]]] = [
            ("POST", "add", own + shared),
            ("DELETE", "remove", own[:2] + shared[n % 12 :]),
            ("POST", "add", shared[: n % 5 + 1]),
            ("DELETE", "remove", [own[5]]),
        ]
        for method, key, ids in steps:
            status, body = await json_of(hub, method, f"{base}/busy/members", json={key: ids})
            statuses.append(status)
            if status == 200:
                net += body[key.replace("add", "added").replace("remove", "removed")] * (
                    1 if key == "add" else -1
                )

    await asyncio.gather(*(client(n) for n in range(32)))
    assert set(statuses) == {200}
    status, collection = await json_of(hub, "GET", f"{base}/busy")
    assert status == 200
    members = collection["members"]
    assert len(members) == len(set(members)) == net
    kept = {f"c{n}-{k}" for n in range(32) for k in (2, 3, 4)}
    removed = {f"c{n}-{k}" for n in range(32) for k in (0, 1, 5)}
    assert kept <= set(members)
    assert not removed & set(members)


async def test_c_counts_stay_exact_under_concurrent_links(hub: Hub) -> None:
    """Dialect C: 32 concurrent link/unlink calls of overlapping assets; assetCount equals what the calls
    changed, and a thumbnail stays among the collection's assets."""
    _, key = await hub.user_with_key()
    assets = []
    for n in range(20):
        status, body = await json_of(hub, "POST", "/v1/assets", key=key, json={"name": f"a{n}"})
        assert status == 201
        assets.append(body["id"])
    _, created = await json_of(hub, "POST", "/v1/collections", key=key, json={"name": "links"})
    path = f"/v1/collections/{created['collection']['id']}/assets"

    async def client(n: int) -> int:
        chosen = assets[n % 7 : n % 7 + 9]
        method = "PUT" if n % 3 else "DELETE"
        status, _ = await json_of(hub, method, path, key=key, json={"assetIds": chosen})
        return status

    assert set(await asyncio.gather(*(client(n) for n in range(32)))) == {200}
    status, final = await json_of(hub, "GET", path.removesuffix("/assets"), key=key)
    assert status == 200
    if thumbnail := final["collection"].get("thumbnail"):
        # The thumbnail is one of the collection's assets: unlinking it takes exactly one away.
        status, unlinked = await json_of(
            hub, "DELETE", path, key=key, json={"assetIds": [thumbnail["assetId"]]}
        )
        assert unlinked["collection"]["assetCount"] == final["collection"]["assetCount"] - 1
        assert "thumbnail" not in unlinked["collection"]
        status, final = await json_of(hub, "GET", path.removesuffix("/assets"), key=key)
    # Every asset the collection holds can be unlinked exactly once: that many is the true count.
    status, emptied = await json_of(hub, "DELETE", path, key=key, json={"assetIds": assets[:20][:49]})
    assert status == 200
    assert emptied["collection"]["assetCount"] == 0
    assert "thumbnail" not in emptied["collection"]
    relinked = final["collection"]["assetCount"]
    status, again = await json_of(hub, "PUT", path, key=key, json={"assetIds": assets})
    assert again["collection"]["assetCount"] == len(assets)
    assert relinked <= len(assets)


async def test_a_grant_is_seen_by_the_very_next_request(hub: Hub) -> None:
    """Sharing with a user, a group or everyone shows on the next request of anyone, with no wait; the
    owner reads `isPublic` true right after making it public; a revoked share is a 404 within a second."""
    _, owner_key = await hub.user_with_key()
    reader, reader_key = await hub.user_with_key()
    member, member_key = await hub.user_with_key()
    _, stranger_key = await hub.user_with_key()
    status, group = await json_of(hub, "POST", "/admin/groups", json={"name": f"g-{uuid.uuid4().hex[:6]}"})
    assert status == 201
    status, _ = await json_of(
        hub, "POST", f"/admin/groups/{group['id']}/members", json={"user_ids": [member["id"]]}
    )
    assert status in (200, 201)
    for round_ in range(5):
        _, created = await json_of(
            hub, "POST", "/api/v2/collections", key=owner_key, json={"title": f"g{round_}"}
        )
        cid = created["collection"]["id"]
        path = f"/api/v2/collections/{cid}"
        # Everyone is refused first (and a refusal must not be remembered).
        for key in (reader_key, member_key, stranger_key):
            assert (await hub.call("GET", path, key=key)).status == 404
        assert (await hub.call("POST", f"{path}/users/{reader['id']}", key=owner_key)).status == 200
        assert (await hub.call("GET", path, key=reader_key)).status == 200
        assert (await hub.call("POST", f"{path}/user_groups/{group['id']}", key=owner_key)).status == 200
        assert (await hub.call("GET", f"/v1/collections/{cid}", key=member_key)).status == 200
        status, made = await json_of(hub, "POST", f"{path}/public", key=owner_key)
        assert (status, made) == (200, {"is_public": True})
        status, seen = await json_of(hub, "GET", path, key=owner_key)
        assert seen["collection"]["isPublic"] is True
        assert (await hub.call("GET", path, key=stranger_key)).status == 200
        assert (await hub.call("POST", f"{path}/private", key=owner_key)).status == 200
        status, seen = await json_of(hub, "GET", path, key=owner_key)
        assert seen["collection"]["isPublic"] is False
        assert (await hub.call("DELETE", f"{path}/users/{reader['id']}", key=owner_key)).status == 200
        deadline = asyncio.get_running_loop().time() + 1.5
        while (await hub.call("GET", path, key=reader_key)).status != 404:
            assert asyncio.get_running_loop().time() < deadline, "revocation took more than a second"
            await asyncio.sleep(0.05)


async def test_a_members_are_streamed_in_order(hub: Hub) -> None:
    """A collection of 6,001 nodes answers every member once, in the order added, as a chunked stream."""
    base = await new_project(hub, "mem")
    assert (await hub.call("POST", base, json={"name": "long", "members": ["first"]})).status == 201
    expected = ["first"]
    for batch in range(3):
        ids = [f"n{batch}-{k:05d}" for k in range(2_000)]
        expected += ids
        status, body = await json_of(hub, "POST", f"{base}/long/members", json={"add": ids})
        assert status == 200
        assert (body["added"], body["total"]) == (2_000, len(expected))
    response = await hub.http.get(f"{hub.url}{base}/long", headers=hub.admin())
    assert response.status == 200
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Server"] == "collections-hub"  # set before a streamed answer's head goes out
    collection = json.loads(await response.read())
    assert collection["members"] == expected
    assert collection["name"] == "long"
    listed = await hub.http.get(f"{hub.url}{base}?pageSize=200", headers=hub.admin())
    page = json.loads(await listed.read())
    assert [c["members"] for c in page["collections"] if c["name"] == "long"] == [expected]


async def test_a_write_grant_is_seen_by_the_very_next_write(hub: Hub) -> None:
    """A project viewer whose read was just allowed (and cached) may write the moment it is made editor:
    a cached allow to read never stands in for a denial to write."""
    base = await new_project(hub, "mem")
    namespace, project = base.split("/")[2], base.split("/")[4]
    user, key = await hub.user_with_key()
    members = f"/admin/namespaces/{namespace}/projects/{project}/members/{user['id']}"
    assert (await hub.call("POST", base, json={"name": "shared-work"})).status == 201
    assert (await hub.call("PUT", members, json={"role": "viewer"})).status in (200, 201)
    for round_ in range(3):
        assert (await hub.call("GET", f"{base}/shared-work", key=key)).status == 200
        # Refused (after a downgrade, within the second a revocation may take).
        deadline = asyncio.get_running_loop().time() + 1.5
        while (
            await hub.call("POST", f"{base}/shared-work/members", key=key, json={"add": [f"v{round_}"]})
        ).status != 403:
            assert round_
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert (await hub.call("GET", f"{base}/shared-work", key=key)).status == 200  # read allow cached
        assert (await hub.call("PUT", members, json={"role": "editor"})).status in (200, 201)
        allowed = await hub.call("POST", f"{base}/shared-work/members", key=key, json={"add": [f"e{round_}"]})
        assert allowed.status == 200
        assert (await hub.call("PUT", members, json={"role": "viewer"})).status in (200, 201)

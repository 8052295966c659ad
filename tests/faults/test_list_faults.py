"""kill -9 of catalog_service in the middle of creates, deletes and shares, again and again: after
recovery every list holds exactly what its reader may see, each collection once (docs/scale.md, "Lists").

Shares made while catalog is down reach it only through access_service's events (the call access makes
before answering fails then), so this also exercises that backstop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

from collections_hub.stack import EmbeddedStack
from tests.faults.conftest import FaultStack, running
from tests.faults.test_member_faults import RECOVERY, call, wait_until

KILLS = 5


async def listed(faults: FaultStack, key: str) -> tuple[list[str], list[str]]:
    """A reader's C list (paged by 7) and B list, or ([], []) while a page does not answer."""
    c_ids: list[str] = []
    token = None
    while True:
        params = {"pageSize": "7", **({"paginationToken": token} if token else {})}
        status, body = await call(faults, "GET", "/v1/collections", key=key, params=params)
        if status != 200:
            return [], []
        c_ids += [c["id"] for c in body["collections"]]
        token = body.get("nextPaginationToken")
        if token is None:
            break
    status, body = await call(faults, "GET", "/api/v2/collections", key=key)
    return c_ids, (body["collections"] if status == 200 else [])


async def test_kill_catalog_mid_creates_deletes_and_shares_keeps_every_list_exact(
    stack_factory: Callable[[dict[str, str]], EmbeddedStack],
) -> None:
    async with running(stack_factory, **RECOVERY) as faults:
        owner, owner_key = await faults.hub.user_with_key()
        reader, reader_key = await faults.hub.user_with_key()
        stop = asyncio.Event()
        acknowledged = {"create": 0, "delete": 0, "share": 0}
        mine: list[str] = []

        async def writer(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                action = rng.choice(["create", "create", "delete", "share"])
                if action == "create":
                    status, body = await call(
                        faults, "POST", "/v1/collections", key=owner_key, json={"name": f"k{seed}"}
                    )
                    if status == 200:
                        mine.append(body["collection"]["id"])
                elif mine:
                    cid = rng.choice(mine)
                    path = f"/api/v2/collections/{cid}" + (
                        f"/users/{reader['id']}" if action == "share" else ""
                    )
                    status, _ = await call(
                        faults, "POST" if action == "share" else "DELETE", path, key=owner_key
                    )
                else:
                    continue
                if status == 200:
                    acknowledged[action] += 1
                else:
                    await asyncio.sleep(0.05)

        await asyncio.gather(
            faults.keep_killing("catalog_service", KILLS, stop), *(writer(seed) for seed in range(6))
        )
        assert acknowledged["create"] > 10
        catalog, access = faults.service_db("catalog"), faults.service_db("access")

        async def truth() -> tuple[set[str], set[str]]:
            live = {
                doc["_id"]
                for doc in await catalog["collections"]
                .find({"owner_id": owner["id"], "deleted": False})
                .to_list()
            }
            shared = {
                doc["_id"]
                async for doc in access["collection_access"].find({"user_ids": {"$in": [reader["id"]]}})
            }
            return live, live & shared

        async def lists_agree() -> bool:
            if await catalog["collections"].count_documents({"vd": 1}):
                return False  # a crash's view upkeep not finished yet
            live, shared = await truth()
            owner_c, owner_b = await listed(faults, owner_key)
            reader_c, reader_b = await listed(faults, reader_key)
            return (set(owner_c), set(owner_b), set(reader_c), set(reader_b)) == (live, live, shared, shared)

        await wait_until(lists_agree)
        live, shared = await truth()
        owner_c, owner_b = await listed(faults, owner_key)
        reader_c, _ = await listed(faults, reader_key)
        assert len(owner_c) == len(owner_b) == len(live)  # each once
        assert len(reader_c) == len(shared)
        # A: the owner's personal project lists the same collections, with an exact total.
        status, body = await call(
            faults,
            "GET",
            f"/namespaces/personal/projects/user-{owner['id']}/collections?pageSize=200",
            key=owner_key,
        )
        assert status == 200
        assert body["total"] == len(live)
        assert not await catalog["views"].count_documents({"due": True})  # every fact applied

        async def written_out() -> bool:  # a change a crash left committed is finished by recovery
            return not await catalog["views"].count_documents({"o": 1})

        await wait_until(written_out)


async def test_a_grant_made_while_catalog_is_down_reaches_the_lists_through_access_events(
    stack_factory: Callable[[dict[str, str]], EmbeddedStack],
) -> None:
    """Joining a group needs no answer from catalog, so access_service takes it while catalog is dead; the
    call that would tell catalog fails, and its event brings the list up to date once catalog is back."""
    async with running(stack_factory, **RECOVERY) as faults:
        _, owner_key = await faults.hub.user_with_key()
        member, member_key = await faults.hub.user_with_key()
        status, body = await call(
            faults, "POST", "/v1/collections", key=owner_key, json={"name": "for-the-group"}
        )
        assert status == 200
        cid = body["collection"]["id"]
        status, group = await call(faults, "POST", "/admin/groups", json={"name": "late"})
        assert status == 201
        assert (
            await call(faults, "POST", f"/api/v2/collections/{cid}/user_groups/{group['id']}", key=owner_key)
        )[0] == 200
        await faults.kill_service("catalog_service")
        status, _ = await call(
            faults, "POST", f"/admin/groups/{group['id']}/members", json={"user_ids": [member["id"]]}
        )
        assert status in {200, 201}
        await faults.restart_service("catalog_service")

        async def listed_for_member() -> bool:
            status, body = await call(faults, "GET", "/api/v2/collections", key=member_key)
            return status == 200 and cid in body["collections"]

        await wait_until(listed_for_member, within=30)

"""kill -9 of catalog_service in the middle of membership writes, again and again: after recovery the
counts equal the members, and history holds exactly one event per effective change."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import ClientError

from collections_hub.stack import EmbeddedStack
from tests.faults.conftest import FaultStack, running

RECOVERY = {"HUB_MEMBER_CHANGE_STALE_SECONDS": "1", "HUB_MEMBER_RECOVERY_INTERVAL_SECONDS": "0.3"}
KILLS = 6


async def call(faults: FaultStack, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    """(status, body) of one call; (0, None) when the connection broke (the catalog was killed)."""
    try:
        response = await faults.hub.call(method, path, **kwargs)
        return response.status, await response.json()
    except (ClientError, TimeoutError, ValueError):
        return 0, None


async def wait_until(predicate: Callable[[], Any], within: float = 60.0) -> None:
    """Poll an async predicate until it holds (or fail at the deadline)."""
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "not settled in time"
        await asyncio.sleep(0.25)


async def test_kill_catalog_mid_membership_writes_keeps_counts_and_history_exact(
    stack_factory: Callable[[dict[str, str]], EmbeddedStack],
) -> None:
    """Six kill -9s of catalog_service while 8 writers link and unlink assets of one collection: after
    recovery `assetCount` and the member documents agree, no change is left pending, and replaying the
    collection's history (links, unlinks) gives exactly its members, with no event twice and no link of an
    asset already in or unlink of one already out."""
    async with running(stack_factory, **RECOVERY) as faults:
        status, created = await call(faults, "POST", "/v1/collections", json={"name": "faulty"})
        assert status == 200
        cid = created["collection"]["id"]
        assets = []
        for n in range(48):
            status, body = await call(faults, "POST", "/v1/assets", json={"name": f"a{n}", "id": f"fa-{n}"})
            assert status == 201
            assets.append(body["id"])
        stop = asyncio.Event()
        acknowledged = 0

        async def writer(seed: int) -> None:
            nonlocal acknowledged
            rng = random.Random(seed)
            while not stop.is_set():
                chosen = rng.sample(assets, rng.randint(1, 12))
                method = rng.choice(["PUT", "DELETE"])
                status, _ = await call(
                    faults, method, f"/v1/collections/{cid}/assets", json={"assetIds": chosen}
                )
                if status == 200:
                    acknowledged += 1
                else:
                    await asyncio.sleep(0.05)

        await asyncio.gather(
            faults.keep_killing("catalog_service", KILLS, stop), *(writer(seed) for seed in range(8))
        )
        assert acknowledged > 20

        catalog = faults.service_db("catalog")

        async def settled() -> bool:
            doc = await catalog["collections"].find_one({"_id": cid})
            return doc is not None and doc.get("member_ops_count", 0) == 0 and doc.get("outbox_count", 0) == 0

        await wait_until(settled)
        members = {
            doc["i"] for doc in await catalog["members"].find({"c": cid, "k": "asset", "s": 1}).to_list()
        }
        doc = await catalog["collections"].find_one({"_id": cid})
        assert doc is not None
        assert doc["asset_count"] == len(members)
        status, seen = await call(faults, "GET", f"/v1/collections/{cid}")
        assert seen["collection"]["assetCount"] == len(members)

        async def replayed() -> tuple[set[str], list[str]]:
            # Member events in change-number order (history lists by arrival: issue 12 orders it).
            records = await faults.history_db["events"].find({"collection_id": cid}).to_list()
            records.sort(key=lambda record: record.get("entity_version") or 0)
            state: set[str] = set()
            wrong = []
            for record in records:
                kind = record.get("type")
                ids = record.get("data", {}).get("ids", [])
                if kind == "catalog.collection.assets_linked":
                    wrong += [i for i in ids if i in state]
                    state |= set(ids)
                elif kind == "catalog.collection.assets_unlinked":
                    wrong += [i for i in ids if i not in state]
                    state -= set(ids)
            return state, wrong

        async def history_caught_up() -> bool:
            return (await replayed())[0] == members

        await wait_until(history_caught_up)
        state, wrong = await replayed()
        assert state == members
        assert wrong == []
        records = await faults.history_db["events"].find({"collection_id": cid}).to_list()
        ids = [record["_id"] for record in records]
        assert len(ids) == len(set(ids))

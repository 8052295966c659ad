"""Section 5: does the cost of a call grow with the data behind it?

Members: 49 node ids added (dialect A, POST members) to collections of 0, 10,000 and 100,000 members,
through the gateway; beside it, the same `findAndModify` sent directly (with and without reading the
member array back), and a prototype of the member-document design on the same server.

Depth: dialect C keyset pages (pageSize=10) at depth 0, 50,000 and 99,990 of 100,000 collections one user
owns, through the gateway; beside it, the same `find` sent directly with its plan, and dialect A's offset
pages at the same depths. The 100,000 collections are inserted straight into catalog's database in the
shape `CatalogService.create` writes (through the API they would take most of the run's time budget).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

from pymongo import ReturnDocument, UpdateOne

from bench.harness import Actor, Bench
from bench.report import MISS, PASS, SKIP, Section, ratio
from catalog_service.ids import new_id
from catalog_service.service import CatalogService, ListCursors, free_key
from shared.clock import timestamp

SIZES = (0, 10_000, 100_000)
ADD = 49
CALLS = 3
COLLECTIONS = 100_000
DEPTHS = (0, 50_000, 99_990)
OFFSET_LIMIT = 30.0
TARGET = 2.0
WITH_NODES = {"assets": 0, "models": 0, "outbox": 0}
WITHOUT_MEMBERS = {"nodes": 0, "assets": 0, "models": 0, "outbox": 0}


def median_ms(times: list[float]) -> float:
    """Median of seconds, in milliseconds."""
    return statistics.median(times) * 1000


async def timed_call(
    bench: Bench, method: str, path: str, actor: Actor, body: Any = None
) -> tuple[float, int, int]:
    """Seconds, status and response size of one call through the gateway."""
    started = time.perf_counter()
    async with bench.http.request(
        method, f"{bench.gateway}{path}", json=body, headers=actor.headers()
    ) as response:
        raw = await response.read()
        return time.perf_counter() - started, response.status, len(raw)


# --- members ----------------------------------------------------------------------------------------------
async def seed_member_collections(bench: Bench, run: str) -> dict[int, dict[str, str]]:
    """One dialect-A collection per size: 10,000 members through the API (one create), 100,000 by adding
    90,000 more to such a collection directly (the API takes at most 10,000 ids a request)."""
    a_actor = bench.a_actor
    assert a_actor is not None
    made: dict[int, dict[str, str]] = {}
    for size in SIZES:
        name = f"scale-{size}-{run}"
        first = [f"seed-{i}" for i in range(min(size, 10_000))]
        doc = await bench.ok(
            "POST", bench.a_base, actor=a_actor, json={"name": name, "members": first}, expect=201
        )
        if size > 10_000:
            everything = [f"seed-{i}" for i in range(size)]
            await bench.db("catalog_service")["collections"].update_one(
                {"_id": doc["id"]}, {"$set": {"nodes": everything, "node_count": size}}
            )
        made[size] = {"id": doc["id"], "name": name}
    return made


async def direct_add(bench: Bench, collection: dict[str, str], projection: dict[str, int], tag: str) -> float:
    """The `findAndModify` catalog sends for an add of 49 new members, sent directly; seconds."""
    ids = [f"{tag}-{i}" for i in range(ADD)]
    started = time.perf_counter()
    await bench.db("catalog_service")["collections"].find_one_and_update(
        {"_id": collection["id"], "name": collection["name"], "nodes": {"$nin": ids}, "deleted": False},
        CatalogService._member_update("nodes", ids, True, timestamp()),  # the update catalog builds
        projection=projection,
        return_document=ReturnDocument.BEFORE,
    )
    return time.perf_counter() - started


async def direct_unset(bench: Bench, collection: dict[str, str]) -> float:
    """The shape of the relay's outbox clean-up (`$unset` one entry, `$inc` the counter) on this document,
    on a field of its own so that the real relay never sees it; seconds for the `$unset`."""
    store = bench.db("catalog_service")["collections"]
    await store.update_one({"_id": collection["id"]}, {"$set": {"bench_probe.entry": {"id": "x"}}})
    started = time.perf_counter()
    await store.bulk_write(
        [
            UpdateOne(
                {"_id": collection["id"], "bench_probe.entry": {"$exists": True}},
                {"$unset": {"bench_probe.entry": ""}, "$inc": {"bench_probe_count": 0}},
            )
        ],
        ordered=False,
    )
    return time.perf_counter() - started


async def prototype(bench: Bench) -> dict[int, float]:
    """The member-document design on the same server: members as documents keyed by (collection, member)
    under a unique index, added with one `insert_many`; the collection document keeps only a counter and
    the outbox entry, updated in O(1). Median ms per 49-member add, by collection size."""
    db = bench.bench_db("members")
    members, collections = db["members"], db["collections"]
    await members.create_index([("collection_id", 1), ("member_id", 1)], unique=True)
    for size in SIZES:
        cid = f"proto-{size}"
        await collections.insert_one({"_id": cid, "member_count": size, "outbox": {}, "outbox_count": 0})
        for start in range(0, size, 10_000):
            await members.insert_many(
                [
                    {"collection_id": cid, "member_id": f"seed-{i}"}
                    for i in range(start, min(size, start + 10_000))
                ],
                ordered=False,
            )
    results = {}
    for size in SIZES:
        cid = f"proto-{size}"
        times = []
        for call in range(CALLS + 1):
            ids = [f"add-{call}-{i}" for i in range(ADD)]
            started = time.perf_counter()
            # Written as the relay would resolve an "add" intent: the members, then the counter and event.
            await members.insert_many([{"collection_id": cid, "member_id": m} for m in ids], ordered=False)
            await collections.update_one(
                {"_id": cid},
                {"$inc": {"member_count": ADD, "outbox_count": 1}, "$set": {f"outbox.e{call}": {"ids": ids}}},
            )
            if call:  # the first is a warm-up
                times.append(time.perf_counter() - started)
        results[size] = median_ms(times)
    return results


async def members_scale(bench: Bench, section: Section) -> bool:
    """Time 49-member adds by size; decompose; compare with the prototype. True when within target."""
    a_actor = bench.a_actor
    assert a_actor is not None
    run = uuid.uuid4().hex[:6]
    made = await seed_member_collections(bench, run)
    api: dict[int, float] = {}
    sizes_out: dict[int, int] = {}
    for size, collection in made.items():
        path = f"{bench.a_base}/{collection['name']}/members"
        times = []
        for call in range(CALLS + 1):
            await bench.settle()  # the previous add's relay work (an O(n) rewrite too) is done first
            seconds, status, size_out = await timed_call(
                bench, "POST", path, a_actor, {"add": [f"api-{call}-{i}" for i in range(ADD)]}
            )
            if status != 200:
                raise RuntimeError(f"add to a collection of {size} -> {status}")
            if call:
                times.append(seconds)
                sizes_out[size] = size_out
        api[size] = median_ms(times)
        print(f"    add {ADD} to {size}: {api[size]:.0f} ms", flush=True)
    await bench.settle()
    direct_read, direct_counts, relay_unset = {}, {}, {}
    for size, collection in made.items():
        direct_read[size] = median_ms(
            [await direct_add(bench, collection, WITH_NODES, f"d{i}") for i in range(CALLS)]
        )
        direct_counts[size] = median_ms(
            [await direct_add(bench, collection, WITHOUT_MEMBERS, f"c{i}") for i in range(CALLS)]
        )
        relay_unset[size] = median_ms([await direct_unset(bench, collection) for _ in range(CALLS)])
    started = time.perf_counter()
    proto = await prototype(bench)
    print(f"    prototype: {proto} ({time.perf_counter() - started:.0f} s)", flush=True)
    smallest, largest = SIZES[0], SIZES[-1]
    api_ratio = ratio(api[largest], api[smallest])
    ok = (api_ratio or 0) < TARGET
    table = section.table(
        f"Add {ADD} members (dialect A POST members), median of {CALLS} calls after one warm-up",
        [
            "collection size",
            "through the gateway ms",
            "response bytes",
            "same findAndModify direct ms",
            "... without reading members back ms",
            "relay's outbox $unset after it, direct ms",
            "prototype: member documents ms",
        ],
    )
    for size in SIZES:
        table.add(
            f"{size:,}",
            api[size],
            sizes_out[size],
            direct_read[size],
            direct_counts[size],
            relay_unset[size],
            proto[size],
        )
    table.add(
        f"ratio {largest:,} / {smallest}",
        api_ratio,
        ratio(sizes_out[largest], sizes_out[smallest]),
        ratio(direct_read[largest], direct_read[smallest]),
        ratio(direct_counts[largest], direct_counts[smallest]),
        ratio(relay_unset[largest], relay_unset[smallest]),
        ratio(proto[largest], proto[smallest]),
    )
    verdicts = section.table("Members: verdict", ["figure", "value", "target", "verdict"])
    verdicts.add(
        f"time per add, {largest:,} / {smallest} members", api_ratio, f"< {TARGET:.0f}", PASS if ok else MISS
    )
    verdicts.add(
        f"prototype (member documents), {largest:,} / {smallest}",
        ratio(proto[largest], proto[smallest]),
        f"< {TARGET:.0f}",
        "info",
    )
    section.notes.append(
        f"Members: the target is {'met' if ok else 'missed'} ({api_ratio:.0f}x). The current design keeps a "
        "collection's members as an array inside its document. nx-27017 stores each document as one "
        "JSON value in SQLite, so each add (the `$nin` check, then the `$push`) reads, rewrites and "
        "re-indexes the whole array: O(n) per add, visible in the direct `findAndModify` column even "
        "without reading the members back; and the relay's removal of the published event from the same "
        "document's outbox is a second O(n) rewrite per write. Dialect A's answer also carries every "
        "member (its document says "
        "so), so the response alone grows with n "
        f"({sizes_out[largest]:,} bytes at {largest:,})."
    )
    section.notes.append(
        "The design that reaches it: members as their own documents keyed by (collection, member) under a "
        "unique index, added with one `insert_many` (`ordered=False`: a duplicate is refused by the index "
        "alone, so no `$nin` over the members); the request writes only an O(1) outbox intent on the "
        "collection document (counter + "
        "event), and the relay resolves the intent with the `insert_many` before publishing, so the "
        "one-command request path and the single-document outbox stay. The prototype column times that "
        f"write on the same server: {ratio(proto[largest], proto[smallest]):.1f}x from 0 to {largest:,}. "
        "Dialect A's full member list in its answer would still be O(n): a contract question, not storage."
    )
    section.data["members"] = {
        "api_ms": api,
        "response_bytes": sizes_out,
        "direct_with_members_ms": direct_read,
        "direct_counts_only_ms": direct_counts,
        "relay_unset_ms": relay_unset,
        "prototype_ms": proto,
        "ratio": api_ratio,
    }
    return ok


# --- depth ------------------------------------------------------------------------------------------------
async def seed_collections(bench: Bench, owner: Actor) -> tuple[list[str], str, float]:
    """COLLECTIONS collections owned by one user, in its personal project; sorted ids, project, seconds."""
    first = await bench.ok("POST", "/v1/collections", actor=owner, json={"name": "deep-0"})
    project_id = f"personal-{owner.user_id}"
    ids = [first["collection"]["id"]]
    store = bench.db("catalog_service")["collections"]
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    now = timestamp()
    for i in range(1, COLLECTIONS):
        cid = new_id()
        ids.append(cid)
        name = f"deep-{i}"
        batch.append(
            {
                "_id": cid,
                "project_id": project_id,
                "owner_id": owner.user_id,
                "owner_email": "deep@example.com",
                "name": name,
                "name_key": free_key(project_id, name, cid),
                "original_title": name,
                "description": None,
                "category": None,
                "tags": [],
                "metadata": {},
                "dataset_id": None,
                "nodes": [],
                "assets": [],
                "models": [],
                "node_count": 0,
                "asset_count": 0,
                "model_count": 0,
                "thumbnail": None,
                "is_public": False,
                "deleted": False,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "outbox": {},
                "outbox_count": 0,
            }
        )
        if len(batch) == 2000:
            await store.insert_many(batch, ordered=False)
            batch = []
    if batch:
        await store.insert_many(batch, ordered=False)
    return sorted(ids), project_id, time.perf_counter() - started


def offset_pipeline(project_id: str, owner_id: int, skip: int) -> list[dict[str, Any]]:
    """The `$facet` dialect A's list sends for a plain user (CatalogRepository.page_with_total)."""
    match = {
        "project_id": project_id,
        "$or": [{"owner_id": owner_id}, {"_id": {"$in": []}}],
        "deleted": False,
    }
    return [
        {"$match": match},
        {"$sort": {"_id": 1}},
        {
            "$facet": {
                "page": [{"$skip": skip}, {"$limit": 10}, {"$project": WITH_NODES}],
                "total": [{"$count": "n"}],
            }
        },
    ]


async def timed(work: Any) -> float:
    """Milliseconds one awaitable takes."""
    started = time.perf_counter()
    await work
    return (time.perf_counter() - started) * 1000


def plan_of(explained: dict[str, Any]) -> str:
    """nx-27017's winning plan, in its own words."""
    stages = explained.get("queryPlanner", {}).get("winningPlan", [])
    return "; ".join(str(stage.get("detail", stage)) for stage in stages) or "?"


async def depth_scale(bench: Bench, section: Section) -> bool:
    """Keyset pages at depth (API, direct, plan); offset pages and an index-served keyset as references."""
    deep = await bench.create_actor("deep")
    ids, project_id, seeded_in = await seed_collections(bench, deep)
    print(f"    seeded {COLLECTIONS} collections in {seeded_in:.0f} s", flush=True)
    store = bench.db("catalog_service")["collections"]
    selector = {"$or": [{"owner_id": deep.user_id}, {"_id": {"$in": []}}, {"project_id": {"$in": []}}]}
    keyset, failed = {}, {}
    # Through the gateway first: a page the gateway gives up on keeps nx-27017 (one command at a time)
    # busy, which would slow whatever is measured next.
    for depth in DEPTHS:
        cursors = ListCursors(bench.stack.internal_secret)
        token = cursors.encode_cursor(deep.user_id, ids[depth - 1]) if depth else None
        path = "/v1/collections?pageSize=10" + (f"&paginationToken={token}" if token else "")
        seconds, status, _ = await timed_call(bench, "GET", path, deep)
        keyset[depth] = seconds * 1000
        if status != 200:
            failed[depth] = status
        print(f"    keyset page at depth {depth}: {keyset[depth]:.0f} ms ({status})", flush=True)
    direct, plans = {}, {}
    for depth in DEPTHS:
        query = {"$and": [selector, {"_id": {"$gt": ids[depth - 1]}}]} if depth else dict(selector)
        query["deleted"] = False
        direct[depth] = await timed(store.find(query, WITHOUT_MEMBERS, sort=[("_id", 1)], limit=11).to_list())
        plans[depth] = plan_of(
            await store.database.command(
                "explain", {"find": store.name, "filter": query, "sort": {"_id": 1}, "limit": 11}
            )
        )
    offset = {}

    async def offset_page(skip: int) -> list[Any]:
        return await (await store.aggregate(offset_pipeline(project_id, deep.user_id, skip))).to_list()

    # One offset page, last and bounded: its `$facet` counts every match, about a minute on nx-27017,
    # and nothing after it needs the server.
    try:
        offset[DEPTHS[-1]] = await asyncio.wait_for(timed(offset_page(DEPTHS[-1])), OFFSET_LIMIT)
    except TimeoutError:
        offset[DEPTHS[-1]] = None
    print(f"    offset page at depth {DEPTHS[-1]}: {offset[DEPTHS[-1]]} ms", flush=True)
    deepest, first = DEPTHS[-1], DEPTHS[0]
    keyset_ratio = ratio(keyset[deepest], keyset[first])
    ok = (keyset_ratio or 0) < TARGET and not failed
    table = section.table(
        f"List pages deep into {COLLECTIONS:,} collections one user owns (pageSize=10, one call each)",
        [
            "depth",
            "C keyset through the gateway ms",
            "same find direct ms",
            "its plan (nx-27017 explain)",
            "A offset page (its $facet) direct ms",
        ],
    )
    for depth in DEPTHS:
        cell = f"{keyset[depth]:.0f}" + (f" ({failed[depth]})" if depth in failed else "")
        if depth not in offset:
            offset_cell: Any = "not run"
        elif offset[depth] is None:
            offset_cell = f"> {OFFSET_LIMIT * 1000:,.0f} (stopped waiting)"
        else:
            offset_cell = offset[depth]
        table.add(f"{depth:,}", cell, direct[depth], plans[depth], offset_cell)
    table.add(f"ratio {deepest:,} / {first}", keyset_ratio, ratio(direct[deepest], direct[first]), "—", "—")
    verdicts = section.table("Depth: verdict", ["figure", "value", "target", "verdict"])
    verdicts.add(
        f"keyset page at depth {deepest:,} / depth 0",
        keyset_ratio,
        f"< {TARGET:.0f} (flat)",
        PASS if ok else MISS,
    )
    verdicts.add("keyset page at depth 0, ms (absolute)", keyset[first], "—", "info")
    section.notes.append(
        f"Depth: {COLLECTIONS:,} collections inserted directly in {seeded_in:.0f} s. Keyset pages are "
        f"{'flat' if ok else 'not flat'} across depth ({keyset_ratio:.2f}x), but every page costs "
        f"{keyset[first] / 1000:.1f} s or so, the same at every depth: nx-27017's plan for the list's "
        f"`find` is `{plans[first]}`. A plain user's list selector is an `$or` (owned, shared, project "
        "roles) plus an `_id` range; nx-27017 serves `_id` from its index only for equality, so each page "
        "decodes and filters every collection document, whatever its depth. The direct column shows the "
        "time is the server's. Dialect A's offset page is worse at any depth: its `$facet` also counts "
        "every match."
    )
    section.notes.append(
        "On MongoDB the `_id` index serves this keyset query (rerun with MONGODB_URL to see it). On "
        "nx-27017 a list that must not scan needs a shape the stand-in can serve from an index, e.g. "
        "equality on an indexed per-reader key (a visibility document per reader listing collection ids in "
        "pages) instead of `$or` + range; measured here, it is not."
    )
    if failed:
        section.notes.append(f"Pages that did not answer 200: {failed} (the gateway's upstream timeout).")
    section.data["depth"] = {
        "keyset_ms": keyset,
        "keyset_failed": failed,
        "direct_ms": direct,
        "plans": plans,
        "offset_direct_ms": offset,
        "ratio": keyset_ratio,
        "seed_seconds": seeded_in,
    }
    return ok


async def run(bench: Bench) -> Section:
    """Both halves; each one's verdict."""
    section = Section(5, "Scale: membership size and list depth")
    section.summary = (
        f"Target: the largest case at < {TARGET:.0f}x the smallest (time per call, through the gateway). "
        "Calls are made one at a time, so these are latencies of an otherwise idle stack."
    )
    verdicts = []
    for label, half in (
        (f"5: add 49 members, 100,000 / 0 < {TARGET:.0f}x", members_scale),
        (f"5: keyset page, depth 99,990 / 0 < {TARGET:.0f}x (flat)", depth_scale),
    ):
        try:
            verdicts.append((label, PASS if await half(bench, section) else MISS))
        except Exception as exc:  # one half failing must not lose the other's figures
            section.notes.append(f"{label}: not measured, it failed: {exc!r}")
            verdicts.append((label, f"{SKIP}: {type(exc).__name__}"))
    section.data["verdicts"] = verdicts
    return section

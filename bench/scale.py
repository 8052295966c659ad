"""Section 5: does the cost of a call grow with the data behind it?

Members: 49 node ids added (dialect A, POST members) to collections of 0, 10,000 and 100,000 members,
through the gateway; beside it, the same `findAndModify` sent directly (with and without reading the
member array back), and a prototype of the member-document design on the same server.

Depth: dialect C keyset pages and dialect A offset pages (pageSize=10) at the start, middle and end of the
collections one user sees, at 100,000 and 1,000,000 collections, through the gateway. The collections and
the user's views are inserted straight into catalog's database in the shape catalog writes them (through
the API they would take most of the run's time budget). `BENCH_SCALE_PARTS=lists` (or `members`) measures
one half alone.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import bson
from aiohttp import ClientTimeout

from bench.harness import Actor, Bench
from bench.report import MISS, PASS, SKIP, Section, ratio
from catalog_service.collection_crud import collection_document
from catalog_service.ids import new_id
from catalog_service.member_repository import COUNT_FIELD, POSITION, MemberKind, member_id
from catalog_service.reader_views import user_reader, view_key
from catalog_service.service import ItemCursors, ListCursors, free_key
from catalog_service.view_repository import entry_id, head_id
from shared.clock import timestamp
from shared.principal import Principal

LARGE = 1_000_000
SEED_BATCH = 5_000
ADD = 49
CALLS = 7
FLAT = 1.5
MAX_WRITE_COMMANDS = 3
MAX_DOCUMENT_BYTES = 1_000_000
MAX_CATALOG_MB = 150
COLLECTIONS = 100_000
LARGE_COLLECTIONS = 1_000_000
PAGE_TARGET_MS = 50
TARGET = 2.0
WITHOUT_MEMBERS = {"nodes": 0, "assets": 0, "models": 0, "outbox": 0, "member_ops": 0}


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
def seeded_member(collection_id: str, kind: MemberKind, item_id: str, position: int) -> dict[str, Any]:
    """A member document in the shape member_repository writes."""
    return {
        "_id": member_id(collection_id, kind, item_id),
        "c": collection_id,
        "k": kind,
        "i": item_id,
        "s": 1,
        "q": position,
        "op": "bench-seed",
        "o": 0,
    }


async def seed_members(bench: Bench, collection_id: str, kind: MemberKind, count: int) -> float:
    """`count` members inserted straight into catalog's database, the collection's counters set to match
    (through the API a million members would take most of the run); seconds."""
    db = bench.db("catalog_service")
    started = time.perf_counter()
    for first in range(0, count, SEED_BATCH):
        await db["members"].insert_many(
            [
                seeded_member(collection_id, kind, f"seed-{n}", n)
                for n in range(first, min(count, first + SEED_BATCH))
            ],
            ordered=False,
        )
    await db["collections"].update_one(
        {"_id": collection_id}, {"$set": {COUNT_FIELD[kind]: count, POSITION: count}}
    )
    return time.perf_counter() - started


async def register_assets(bench: Bench, owner: Actor, count: int, tag: str) -> list[str]:
    """Assets in catalog's registry, inserted directly (their creation is not what is measured)."""
    ids = [f"scale-{tag}-{n}" for n in range(count)]
    await bench.db("catalog_service")["assets"].insert_many(
        [
            {"_id": i, "name": i, "owner_id": owner.user_id, "deleted": False, "created_at": timestamp()}
            for i in ids
        ]
    )
    return ids


async def catalog_commands(bench: Bench) -> dict[str, float]:
    """Request-path MongoDB commands catalog_service has sent so far, by command name."""
    counts: dict[str, float] = {}
    for (client, command), value in (await bench.mongo_counts("catalog_service")).items():
        if client == "api":
            counts[command] = counts.get(command, 0.0) + value
    return counts


async def one_call(
    bench: Bench, method: str, path: str, actor: Actor, body: Any, *, lists_members: bool
) -> tuple[float, float]:
    """ms of one call (until its answer starts when it lists members: the write is done then, dialect A's
    member list streams after), and catalog's commands for it (not counting that listing)."""
    await bench.settle()
    before = await catalog_commands(bench)
    started = time.perf_counter()
    async with bench.http.request(method, f"{bench.gateway}{path}", json=body, headers=actor.headers()) as r:
        at_headers = time.perf_counter() - started
        if r.status != 200:
            raise RuntimeError(f"{method} {path} -> {r.status}")
        if lists_members:
            # The write is done when the answer starts; its listing of every member (minutes at 5,000,000)
            # is measured once, by `stream_members`: drop the connection instead of reading it all.
            r.close()
        else:
            await r.read()
    seconds = at_headers if lists_members else time.perf_counter() - started
    after = await catalog_commands(bench)
    spent = {command: after[command] - before.get(command, 0.0) for command in after}
    total = sum(spent.values())
    if lists_members:  # the listing: one find and its getMores
        total -= spent.get("getMore", 0.0) + min(1.0, spent.get("find", 0.0))
    return seconds * 1000, total


def rss_mb(pid: int) -> float:
    """A process's resident set now, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def stream_members(bench: Bench, path: str, actor: Actor) -> dict[str, float]:
    """GET a dialect-A collection through the gateway, reading its stream, while sampling catalog_service's
    and the gateway's resident sets: seconds, bytes, peak MB of each."""
    catalog, gateway = bench.pid("catalog_service"), bench.pid("gateway")
    peaks = {"catalog": rss_mb(catalog), "gateway": rss_mb(gateway)}
    before = dict(peaks)
    size = 0
    started = time.perf_counter()
    async with bench.http.get(
        f"{bench.gateway}{path}", headers=actor.headers(), timeout=ClientTimeout(total=None, sock_read=60)
    ) as response:
        async for chunk in response.content.iter_chunked(1 << 20):
            size += len(chunk)
            peaks = {
                "catalog": max(peaks["catalog"], rss_mb(catalog)),
                "gateway": max(peaks["gateway"], rss_mb(gateway)),
            }
    return {
        "seconds": time.perf_counter() - started,
        "bytes": size,
        "catalog_before_mb": before["catalog"],
        "catalog_peak_mb": peaks["catalog"],
        "gateway_peak_mb": peaks["gateway"],
    }


async def largest_documents(bench: Bench, collection_ids: list[str]) -> int:
    """The largest BSON size among these collection documents and a sample of their member documents."""
    db = bench.db("catalog_service")
    largest = 0
    for doc in await db["collections"].find({"_id": {"$in": collection_ids}}).to_list():
        largest = max(largest, len(bson.encode(doc)))
    for doc in await db["members"].find({"c": {"$in": collection_ids}}, limit=1000).to_list():
        largest = max(largest, len(bson.encode(doc)))
    return largest


async def members_scale(bench: Bench, section: Section) -> bool:
    """Adds and removes at 0 and LARGE members in every dialect: time, commands, document sizes; the
    streamed A answer's memory. True when every target is met."""
    owner, a_actor = bench.owner, bench.a_actor
    assert owner is not None
    assert a_actor is not None
    large = int(os.environ.get("BENCH_SCALE_MEMBERS", LARGE))
    sizes = (0, large)
    run = uuid.uuid4().hex[:6]
    assets = await register_assets(bench, owner, 1 + ADD * (CALLS + 1) + CALLS + 1, run)
    seeded: dict[int, float] = {}
    a_paths: dict[int, str] = {}
    c_ids: dict[int, str] = {}
    collection_ids: list[str] = []
    keeper, *assets = assets
    for size in sizes:
        c_doc = await bench.ok("POST", "/v1/collections", actor=owner, json={"name": f"scale-c-{size}-{run}"})
        c_ids[size] = c_doc["collection"]["id"]
        name = f"scale-a-{size}-{run}"
        a_doc = await bench.ok("POST", bench.a_base, actor=a_actor, json={"name": name}, expect=201)
        collection_ids += [c_ids[size], a_doc["id"]]
        a_paths[size] = f"{bench.a_base}/{name}"
        seeded[size] = await seed_members(bench, c_ids[size], "asset", size) + await seed_members(
            bench, a_doc["id"], "node", size
        )
        # A thumbnail that stays, so no measured call sets or clears one (that costs one more command).
        keep = {"assetIds": [keeper]}
        await bench.ok("PUT", f"/v1/collections/{c_ids[size]}/assets", actor=owner, json=keep)
        print(f"    seeded 2 x {size:,} members in {seeded[size]:.0f} s", flush=True)
    # Every asset seen once by catalog's registry cache: a never-seen id costs one registry read.
    warm = c_ids[0]
    for first in range(0, len(assets), ADD):
        chunk = {"assetIds": assets[first : first + ADD]}
        await bench.ok("PUT", f"/v1/collections/{warm}/assets", actor=owner, json=chunk)
        await bench.ok("DELETE", f"/v1/collections/{warm}/assets", actor=owner, json=chunk)
    batches = [assets[n * ADD : (n + 1) * ADD] for n in range(CALLS + 1)]
    singles = assets[ADD * (CALLS + 1) : ADD * (CALLS + 1) + CALLS + 1]
    nodes = [[f"n{call}-{i}" for i in range(ADD)] for call in range(CALLS + 1)]

    def c_call(method: str, size: int, n: int) -> tuple[str, str, Actor, Any]:
        return method, f"/v1/collections/{c_ids[size]}/assets", owner, {"assetIds": batches[n]}

    def b_call(method: str, size: int, n: int) -> tuple[str, str, Actor, Any]:
        return method, f"/api/v2/collections/{c_ids[size]}/assets", owner, {"asset_id": singles[n]}

    def a_call(method: str, size: int, n: int) -> tuple[str, str, Actor, Any]:
        key = "add" if method == "POST" else "remove"
        return method, f"{a_paths[size]}/members", a_actor, {key: nodes[n]}

    kinds: list[tuple[str, Any, str, bool]] = [
        ("C: add 49 assets", c_call, "PUT", False),
        ("C: remove 49 assets", c_call, "DELETE", False),
        ("B: add 1 asset", b_call, "POST", False),
        ("B: remove 1 asset", b_call, "DELETE", False),
        ("A: add 49 nodes (until the answer starts)", a_call, "POST", True),
        ("A: remove 49 nodes (until the answer starts)", a_call, "DELETE", True),
    ]
    rows: dict[str, dict[int, tuple[float, float]]] = {}
    for label, make, verb, lists_members in kinds:
        samples: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
        for n in range(CALLS + 1):
            # The sizes take turns call by call, so a burst of other work on the machine hits both alike.
            for size in sizes if n % 2 else tuple(reversed(sizes)):
                method, path, actor, body = make(verb, size, n)
                sample = await one_call(bench, method, path, actor, body, lists_members=lists_members)
                if n:  # the first round is a warm-up
                    samples[size].append(sample)
        rows[label] = {
            size: (statistics.median(t for t, _ in got), statistics.median(c for _, c in got))
            for size, got in samples.items()
        }
        print(f"    {label}: {rows[label]}", flush=True)
    try:
        listed = await item_pages(bench, section, owner, c_ids, large)
    except Exception as exc:  # the item pages failing must not lose the write figures
        section.notes.append(f"Item list pages: not measured, it failed: {exc!r}")
        listed = False
    streamed = await stream_members(bench, a_paths[large], a_actor)
    print(f"    streamed {large:,} members: {streamed}", flush=True)
    largest_doc = await largest_documents(bench, collection_ids)
    table = section.table(
        f"Member writes through the gateway at 0 and {large:,} members (median of {CALLS} after a warm-up; "
        "the two sizes take turns call by call)",
        ["call", "at 0 ms", f"at {large:,} ms", "ratio", "catalog commands per call (0 / large)", "verdict"],
    )
    ok = True
    for label, by_size in rows.items():
        (small_ms, small_cmd), (large_ms, large_cmd) = by_size[0], by_size[large]
        flat = (ratio(large_ms, small_ms) or 0) <= FLAT
        cheap = max(small_cmd, large_cmd) <= MAX_WRITE_COMMANDS
        ok = ok and flat and cheap
        table.add(
            label,
            small_ms,
            large_ms,
            ratio(large_ms, small_ms),
            f"{small_cmd:.0f} / {large_cmd:.0f}",
            PASS if flat and cheap else MISS,
        )
    small_doc = largest_doc < MAX_DOCUMENT_BYTES
    lean = streamed["catalog_peak_mb"] < MAX_CATALOG_MB
    ok = ok and small_doc and lean and listed
    verdicts = section.table("Members: verdict", ["figure", "value", "target", "verdict"])
    verdicts.add(
        f"every write, {large:,} / 0 members",
        max((ratio(r[large][0], r[0][0]) or 0) for r in rows.values()),
        f"<= {FLAT}x",
        PASS if all((ratio(r[large][0], r[0][0]) or 0) <= FLAT for r in rows.values()) else MISS,
    )
    verdicts.add(
        "catalog commands per member write (A's member listing excluded)",
        max(max(r[0][1], r[large][1]) for r in rows.values()),
        f"<= {MAX_WRITE_COMMANDS}",
        PASS if all(max(r[0][1], r[large][1]) <= MAX_WRITE_COMMANDS for r in rows.values()) else MISS,
    )
    verdicts.add(
        "largest collection or member document, bytes",
        largest_doc,
        f"< {MAX_DOCUMENT_BYTES:,}",
        PASS if small_doc else MISS,
    )
    verdicts.add(
        f"catalog_service peak RSS while streaming {large:,} members (A GET), MB",
        streamed["catalog_peak_mb"],
        f"< {MAX_CATALOG_MB}",
        PASS if lean else MISS,
    )
    verdicts.add("... the gateway's peak RSS meanwhile, MB", streamed["gateway_peak_mb"], "—", "info")
    verdicts.add(
        f"... seconds to stream {large:,} members ({streamed['bytes']:,} bytes)",
        streamed["seconds"],
        "—",
        "info",
    )
    section.notes.append(
        "Members are documents of their own (docs/scale.md): a write is three commands addressed by "
        "`_id` (mark the change pending on the collection, one unordered bulk write of the members, take "
        "the counts and the event), so it costs the same at any size; A's answer lists every member, "
        "streamed after the write, so A is timed until its answer starts (its listing is O(n) by "
        "contract: the streaming row). "
        f"Members were seeded directly ({', '.join(f'{s:,}: {seeded[s]:.0f} s' for s in sizes)}). "
        "Streaming runs at the stand-in's per-document read cost (about 40-60 us a member document on "
        "nx-27017); "
        "a 5,000,000-member case: `BENCH_SCALE_MEMBERS=5000000 make bench` (about 10 minutes of seeding)."
    )
    section.data["members"] = {
        "rows": rows,
        "streamed": streamed,
        "largest_document": largest_doc,
        "seeded_s": seeded,
    }
    return ok


# --- item lists -------------------------------------------------------------------------------------------
async def item_page_ms(bench: Bench, path: str, actor: Actor) -> tuple[float, float, int]:
    """Median ms of a C item-list page through the gateway (CALLS calls after a warm-up), catalog's
    commands for one, and how many items it showed."""
    return await page_ms(bench, path, actor, listed="assets", calls=CALLS, warm_up=True)


async def item_pages(bench: Bench, section: Section, owner: Actor, c_ids: dict[int, str], large: int) -> bool:
    """`GET /v1/collections/{id}/assets?pageSize=10` at the first, middle and last page of `large` members
    (and the first of the small collection): under PAGE_TARGET_MS, flat in depth. The pages' seeded items
    get registry documents (the rest need none: a page reads only its own)."""
    middle, last = large // 2, large - 9  # the last page: nine seeded members and the kept thumbnail
    seeded_ids = [f"seed-{n}" for start in (0, middle, last) for n in range(start, min(large, start + 10))]
    await bench.db("catalog_service")["assets"].insert_many(
        [
            {"_id": i, "name": i, "owner_id": owner.user_id, "deleted": False, "created_at": timestamp()}
            for i in seeded_ids
        ],
        ordered=False,
    )
    cursors = ItemCursors(bench.stack.internal_secret)
    table = section.table(
        f"Item list pages (C `GET /v1/collections/{{id}}/assets?pageSize=10`; median of {CALLS} after a "
        "warm-up, through the gateway)",
        ["members", "page", "ms", "catalog commands", "items shown"],
    )
    times: dict[str, float] = {}
    commands_seen: set[float] = set()
    pages: list[tuple[str, str, str, int | None]] = [("0", "first", c_ids[0], None)]
    pages += [
        (f"{large:,}", name, c_ids[large], after)
        for name, after in (("first", None), ("middle", middle - 1), ("last", last - 1))
    ]
    for size, name, cid, after in pages:
        path = f"/v1/collections/{cid}/assets?pageSize=10"
        if after is not None:
            path += f"&paginationToken={cursors.encode(owner.user_id, cid, 'asset', after)}"
        ms, commands, shown = await item_page_ms(bench, path, owner)
        times[f"{size} {name}"] = ms
        commands_seen.add(commands)
        table.add(size, name, ms, f"{commands:.0f}", shown)
        print(f"    item page, {size} members, {name}: {ms:.1f} ms, {commands:.0f} commands", flush=True)
    slowest = max(times.values())
    depth = ratio(times[f"{large:,} last"], times[f"{large:,} first"]) or 0.0
    fast, flat = slowest < PAGE_TARGET_MS, depth < TARGET
    verdicts = section.table("Item lists: verdict", ["figure", "value", "target", "verdict"])
    verdicts.add("slowest item page, ms", slowest, f"< {PAGE_TARGET_MS}", PASS if fast else MISS)
    verdicts.add(
        f"{large:,}: last page / first page", depth, f"< {TARGET:.0f} (flat)", PASS if flat else MISS
    )
    verdicts.add(
        "catalog commands per item page (collection, members page, registry documents)",
        "/".join(f"{c:.0f}" for c in sorted(commands_seen)),
        "3",
        PASS if commands_seen == {3.0} else MISS,
    )
    section.data["item_pages"] = {"ms": times, "commands": sorted(commands_seen)}
    return fast and flat and commands_seen == {3.0}


# --- depth ------------------------------------------------------------------------------------------------
async def seed_collections(bench: Bench, owner: Actor, count: int) -> tuple[str, float]:
    """`count` collections owned by one user, in its personal project, with the two views its lists read
    (`u:U` for B and C, `u:U@P` for A) as catalog keeps them; the project id and the seconds it took.

    The first is created through the API (its project and views come into being as they do for a user);
    the rest are inserted directly, in the shape `Collections.create` writes, appended to both views.
    The places (`I` documents, read only by writes) are left out: a page never reads them."""
    await bench.ok("POST", "/v1/collections", actor=owner, json={"name": "deep-0"})
    project_id = f"personal-{owner.user_id}"
    db = bench.db("catalog_service")
    principal = Principal(user_id=owner.user_id, email="deep@example.com", role="user", auth="api_key")
    lists = [view_key(user_reader(owner.user_id)), view_key(user_reader(owner.user_id), project_id)]
    started = time.perf_counter()
    collections: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for position in range(2, count + 1):
        cid = new_id()
        name = f"deep-{position}"
        doc = collection_document(cid, project_id, principal, name=name, key=free_key(project_id, name, cid))
        collections.append({**doc, "outbox": {}, "outbox_count": 0})
        entries += [
            {"_id": entry_id(view, position), "k": "E", "v": view, "c": cid, "pos": position, "w": 2}
            for view in lists
        ]
        if len(collections) == SEED_BATCH:
            await db["collections"].insert_many(collections, ordered=False)
            await db["views"].insert_many(entries, ordered=False)
            collections, entries = [], []
    if collections:
        await db["collections"].insert_many(collections, ordered=False)
        await db["views"].insert_many(entries, ordered=False)
    for view in lists:
        await db["views"].update_one({"_id": head_id(view)}, {"$set": {"n": count, "ver": 2}})
    return project_id, time.perf_counter() - started


async def page_ms(
    bench: Bench,
    path: str,
    actor: Actor,
    *,
    listed: str = "collections",
    calls: int = 3,
    warm_up: bool = False,
) -> tuple[float, float, int]:
    """Median ms of a page through the gateway (`calls` calls, after one untimed call with `warm_up`),
    catalog's commands for one, and how many of `listed` it showed.

    (No `bench.settle()` between calls: it counts pending outboxes over every collection, a scan that
    would take longer than the pages, and lists write nothing.)"""
    times, commands, size = [], 0.0, 0
    for n in range(calls + 1 if warm_up else calls):
        before = await catalog_commands(bench)
        started = time.perf_counter()
        async with bench.http.get(f"{bench.gateway}{path}", headers=actor.headers()) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"GET {path} -> {r.status}")
        if n or not warm_up:
            times.append((time.perf_counter() - started) * 1000)
        after = await catalog_commands(bench)
        commands = sum(after[c] - before.get(c, 0.0) for c in after)
        size = len(body[listed])
    return statistics.median(times), commands, size


async def depth_scale(bench: Bench, section: Section) -> bool:
    """C keyset and A offset pages at depth 0, middle and end of 100,000 and 1,000,000 collections."""
    sizes = (COLLECTIONS, int(os.environ.get("BENCH_SCALE_COLLECTIONS", LARGE_COLLECTIONS)))
    table = section.table(
        "List pages deep into the collections one user sees (pageSize=10; median of 3 through the gateway)",
        ["collections", "depth", "C keyset ms", "A offset ms", "catalog commands (C / A)", "page size (C/A)"],
    )
    worst: dict[int, float] = {}
    depth_ratio: dict[int, float | None] = {}
    seeded: dict[int, float] = {}
    commands_seen: set[float] = set()
    for size in sizes:
        deep = await bench.create_actor(f"deep{size}")
        _, seeded[size] = await seed_collections(bench, deep, size)
        print(f"    seeded {size:,} collections and their views in {seeded[size]:.0f} s", flush=True)
        cursors = ListCursors(bench.stack.internal_secret)
        a_base = f"/namespaces/personal/projects/user-{deep.user_id}/collections"
        times: dict[int, float] = {}
        for depth in (0, size // 2, size - 10):
            token = cursors.encode_cursor(deep.user_id, depth) if depth else None
            c_path = "/v1/collections?pageSize=10" + (f"&paginationToken={token}" if token else "")
            c_ms, c_commands, c_size = await page_ms(bench, c_path, deep)
            a_ms, a_commands, a_size = await page_ms(
                bench, f"{a_base}?page={depth // 10 + 1}&pageSize=10", deep
            )
            commands_seen |= {c_commands, a_commands}
            times[depth] = max(c_ms, a_ms)
            table.add(
                f"{size:,}",
                f"{depth:,}",
                c_ms,
                a_ms,
                f"{c_commands:.0f} / {a_commands:.0f}",
                f"{c_size}/{a_size}",
            )
            print(f"    {size:,} depth {depth:,}: C {c_ms:.1f} ms, A {a_ms:.1f} ms", flush=True)
        worst[size] = max(times.values())
        depth_ratio[size] = ratio(times[size - 10], times[0])
    small, large = sizes
    size_ratio = ratio(worst[large], worst[small]) or 0.0
    fast = max(worst.values()) < PAGE_TARGET_MS
    flat_size = size_ratio <= FLAT
    flat_depth = all((r or 0) < TARGET for r in depth_ratio.values())
    verdicts = section.table("Depth: verdict", ["figure", "value", "target", "verdict"])
    verdicts.add(
        "slowest page, ms (any size, any depth)",
        max(worst.values()),
        f"< {PAGE_TARGET_MS}",
        PASS if fast else MISS,
    )
    verdicts.add(
        f"slowest page at {large:,} / at {small:,}", size_ratio, f"<= {FLAT}x", PASS if flat_size else MISS
    )
    for size in sizes:
        verdicts.add(
            f"{size:,}: deepest page / first page",
            depth_ratio[size],
            f"< {TARGET:.0f} (flat)",
            PASS if flat_depth else MISS,
        )
    verdicts.add(
        "catalog commands per list page (C: view page + collections; A: + members)",
        "/".join(f"{c:.0f}" for c in sorted(commands_seen)),
        "2 / 3",
        "info",
    )
    section.notes.append(
        'Depth: lists read the caller\'s view (docs/scale.md, "Lists"): a page is one `_id $in` of the '
        "view's head and the positions it covers, then the page's collections by `_id`; A also streams "
        "the members of each collection on the page that has nodes (none here). Seeding: "
        + ", ".join(f"{s:,} collections in {seeded[s]:.0f} s" for s in sizes)
        + " (collection documents and both views, inserted directly)."
    )
    section.data["depth"] = {
        "worst_ms": worst,
        "depth_ratio": depth_ratio,
        "size_ratio": size_ratio,
        "seed_seconds": seeded,
    }
    return fast and flat_size and flat_depth


FANOUT_COLLECTIONS = 10_000
FANOUT_USERS = 1_000
FANOUT_TARGET_S = 2.0


async def fanout_scale(bench: Bench, section: Section) -> bool:
    """A role on a project of 10,000 collections, and a share with a group of 1,000 users: each timed from
    the call to its answer, and every list it changes checked complete at that moment (read from catalog's
    views right after the answer: the change brings them up to date before access_service answers)."""
    assert bench.owner is not None
    owner = bench.owner
    table = section.table(
        "Fan-out: a change that reaches many lists, timed to its answer through the gateway",
        ["change", "reaches", "answer s", "complete at the answer", "target", "verdict"],
    )
    db = bench.db("catalog_service")
    slug = f"fan-{uuid.uuid4().hex[:6]}"
    project = await bench.ok(
        "POST", f"/admin/namespaces/{bench.namespace}/projects", json={"slug": slug}, expect=201
    )
    project_id = project["id"]
    principal = Principal(user_id=owner.user_id, email="fan@example.com", role="user", auth="api_key")
    batch: list[dict[str, Any]] = []
    for n in range(FANOUT_COLLECTIONS):
        cid, name = new_id(), f"fan-{n}"
        doc = collection_document(cid, project_id, principal, name=name, key=free_key(project_id, name, cid))
        batch.append({**doc, "outbox": {}, "outbox_count": 0})
        if len(batch) == SEED_BATCH:
            await db["collections"].insert_many(batch, ordered=False)
            batch = []
    if batch:
        await db["collections"].insert_many(batch, ordered=False)
    holder = await bench.create_actor("fanrole")
    started = time.perf_counter()
    await bench.ok(
        "PUT",
        f"/admin/namespaces/{bench.namespace}/projects/{slug}/members/{holder.user_id}",
        json={"role": "viewer"},
    )
    role_s = time.perf_counter() - started
    head = await db["views"].find_one({"_id": head_id(view_key(user_reader(holder.user_id)))})
    role_listed = int(head["n"]) if head else 0
    role_ok = role_s < FANOUT_TARGET_S and role_listed >= FANOUT_COLLECTIONS
    table.add(
        "role on a project",
        f"{FANOUT_COLLECTIONS:,} collections",
        role_s,
        f"{role_listed:,} of {FANOUT_COLLECTIONS:,} listed",
        f"< {FANOUT_TARGET_S:.0f} s, complete",
        PASS if role_ok else MISS,
    )
    print(
        f"    role on {FANOUT_COLLECTIONS:,} collections: {role_s:.2f} s, {role_listed:,} listed", flush=True
    )

    tag = uuid.uuid4().hex[:6]
    users: list[int] = []
    for start in range(0, FANOUT_USERS, 50):
        made = await asyncio.gather(
            *(
                bench.ok("POST", "/admin/users", json={"email": f"fan{tag}-{n}@example.com"}, expect=201)
                for n in range(start, min(start + 50, FANOUT_USERS))
            )
        )
        users += [int(user["id"]) for user in made]
    group = await bench.ok("POST", "/admin/groups", json={"name": f"fan-{tag}"}, expect=201)
    for start in range(0, len(users), 100):
        await bench.ok(
            "POST", f"/admin/groups/{group['id']}/members", json={"user_ids": users[start : start + 100]}
        )
    shared = await bench.ok("POST", "/api/v2/collections", actor=owner, json={"title": f"fan-{tag}"})
    collection_id = shared["collection"]["id"] if "collection" in shared else shared["id"]
    started = time.perf_counter()
    await bench.ok("POST", f"/api/v2/collections/{collection_id}/user_groups/{group['id']}", actor=owner)
    share_s = time.perf_counter() - started
    wanted = {f"I\x1f{view_key(user_reader(user))}\x1f{collection_id}" for user in users}
    places = await db["views"].find({"_id": {"$in": sorted(wanted)}, "pos": {"$gt": 0}}, {"_id": 1}).to_list()
    share_ok = share_s < FANOUT_TARGET_S and len(places) == len(users)
    table.add(
        "share with a group",
        f"{len(users):,} users' lists",
        share_s,
        f"{len(places):,} of {len(users):,} lists",
        f"< {FANOUT_TARGET_S:.0f} s, complete",
        PASS if share_ok else MISS,
    )
    print(f"    share with {len(users):,} users: {share_s:.2f} s, {len(places):,} lists", flush=True)
    section.notes.append(
        "Fan-out: the 10,000 collections are inserted straight into catalog's database (the role's fan-out "
        "reads them from the collections, not from a view); the 1,000 users and the group go through the "
        "admin API. Complete means read from catalog's views right after the answer: the role holder's "
        "`u:U` head counts the collections, and each member's place of the shared collection in its `u:U` "
        "view is set."
    )
    section.data["fanout"] = {"role_seconds": role_s, "role_listed": role_listed, "share_seconds": share_s}
    return role_ok and share_ok


async def run(bench: Bench) -> Section:
    """Both halves; each one's verdict."""
    section = Section(5, "Scale: membership size and list depth")
    section.summary = (
        f"Target: the largest case at < {TARGET:.0f}x the smallest (time per call, through the gateway). "
        "Calls are made one at a time, so these are latencies of an otherwise idle stack."
    )
    verdicts = []
    for label, half in (
        (f"5: member writes, {LARGE:,} / 0 members <= {FLAT}x, <= 3 commands", members_scale),
        (f"5: list pages < {PAGE_TARGET_MS} ms, flat in depth and size", depth_scale),
        (f"5: fan-out (a role on {FANOUT_COLLECTIONS:,}, a group of {FANOUT_USERS:,}) < 2 s", fanout_scale),
    ):
        only = os.environ.get("BENCH_SCALE_PARTS")  # "members", "lists" or "fanout": one part alone
        part = {"members": "member", "lists": "list", "fanout": "fan-out"}.get(only or "", "")
        if only and not label.startswith(f"5: {part}"):
            continue
        try:
            verdicts.append((label, PASS if await half(bench, section) else MISS))
        except Exception as exc:  # one half failing must not lose the other's figures
            section.notes.append(f"{label}: not measured, it failed: {exc!r}")
            verdicts.append((label, f"{SKIP}: {type(exc).__name__}"))
    section.data["verdicts"] = verdicts
    return section

"""Section 7: `collections-hub migrate` throughput beside a plain copy loop, and export's peak memory.

Migrate copies one user's library to another user of the same stack (the source speaks dialect C, as a
hosted service would); the plain loop does the same reads and writes with the same client but keeps no
journal, adopts nothing and restores no visibility or shares, so the gap between them is what
resumability costs. Export runs as its own process (`collections-hub export --project`) on a collection
of N node members, at two sizes, and its peak RSS comes from `wait4`: flat memory means the same peak at
both sizes. Sizes: BENCH_MIGRATE_COLLECTIONS (40) x BENCH_MIGRATE_ASSETS (20) to migrate;
BENCH_EXPORT_MEMBERS (50,000; `bench.run --export-members 1000000` for the large case) to export.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.harness import Bench
from bench.report import Section
from bench.scale import seed_members
from collections_hub.client import Hub
from collections_hub.client.ops import MAX_LINK_IDS, chunks
from collections_hub.transfer.items import linked_items, register, source_item
from collections_hub.transfer.journal import Journal
from collections_hub.transfer.migrate import Migrator
from collections_hub.transfer.source import SourceReader


def sizes() -> tuple[int, int, int]:
    """(collections, assets each, export members), from the environment."""
    env = os.environ
    return (
        int(env.get("BENCH_MIGRATE_COLLECTIONS", "40")),
        int(env.get("BENCH_MIGRATE_ASSETS", "20")),
        int(env.get("BENCH_EXPORT_MEMBERS", "50000")),
    )


def new_user_key(admin: Hub, prefix: str) -> str:
    """A fresh user's key."""
    user = admin.admin.create_user(f"{prefix}-{uuid.uuid4().hex[:8]}@example.com")
    return admin.admin.create_key(user.id).key


def seed_library(url: str, key: str, collections: int, assets: int) -> None:
    """`collections` collections of `assets` assets each, and wait until history shows every link."""
    with Hub(url, api_key=key) as hub:
        made = []
        for n in range(collections):
            box = hub.collections.create(f"bench {n}")
            ids = [
                hub.assets.create(f"a{n}.{i}", url=f"https://bench.test/{n}/{i}").id for i in range(assets)
            ]
            hub.collections.assets.add(box.id, ids)
            made.append(box.id)
        for cid in made:
            linked_items(lambda cid=cid: hub.history.list(cid), (assets, 0), settle=30)


def plain_copy(url: str, source_key: str, dest_key: str) -> tuple[int, int]:
    """The loop a user would write: list, read items from history, register, create, link."""
    copied = members = 0
    with Hub(url, api_key=source_key) as source, Hub(url, api_key=dest_key) as dest:
        me = str(source.me().user_id)
        for c in source.collections.list():
            if c.ownerId != me:
                continue
            items = linked_items(lambda cid=c.id: source.history.list(cid), (c.assetCount, c.modelCount))
            made = dest.collections.create(c.name)
            ids = []
            for asset in items.of("asset"):
                name, asset_url = source_item(source, "asset", asset)
                ids.append(register(dest, "asset", asset, name, asset_url))
            for chunk in chunks(ids, MAX_LINK_IDS):
                dest.collections.assets.add(made.id, chunk)
            copied, members = copied + 1, members + len(ids)
    return copied, members


def run_migrate(url: str, source_key: str, dest_key: str, state: Path) -> tuple[int, int]:
    """The migrate command's engine, journal and all."""
    with Hub(url, api_key=source_key) as source, Hub(url, api_key=dest_key) as dest:
        journal = Journal(state, url)
        try:
            report = Migrator(SourceReader(source, "c"), dest, journal).run()
        finally:
            journal.close()
    return report.copied, report.members


def timed(work: object, *args: object) -> tuple[float, tuple[int, int]]:
    """(seconds, result) of a call."""
    started = time.perf_counter()
    result = work(*args)  # type: ignore[operator]
    return time.perf_counter() - started, result


def big_collection(url: str, admin_key: str) -> tuple[str, str]:
    """A project holding one empty collection; its `namespace/project` and the collection's id."""
    tag = uuid.uuid4().hex[:8]
    with Hub(url, api_key=admin_key, timeout=120) as admin:
        admin.admin.create_namespace(f"bench-{tag}")
        admin.admin.create_project(f"bench-{tag}", "export")
        created = admin.project(f"bench-{tag}", "export").create("big")
    return f"bench-{tag}/export", created.id


def export_peak(url: str, admin_key: str, project: str, out: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS MB, bytes written) of `collections-hub export --project` as its own process."""
    env = {**os.environ, "HUB_ADMIN_API_KEY": admin_key}
    command = [sys.executable, "-m", "collections_hub.cli", "export", "--project", project, "-o", str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "--url", url, "--json"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"export exited with {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out.stat().st_size


async def run(bench: Bench) -> Section:
    """Migrate vs plain loop, then export at two sizes."""
    collections, assets, members = sizes()
    section = Section(7, "Migrate and export")
    section.summary = __doc__.split("\n\n", 1)[1].replace("\n", " ") if __doc__ else ""
    url, admin_key = bench.gateway, bench.stack.admin_api_key
    with Hub(url, api_key=admin_key) as admin:
        source_key, loop_key, migrate_key = (new_user_key(admin, p) for p in ("src", "loop", "mig"))
    await asyncio.to_thread(seed_library, url, source_key, collections, assets)
    table = section.table(
        f"Copying {collections} collections x {assets} assets (same stack, dialect C source)",
        ["copier", "seconds", "collections/s", "members/s"],
    )
    data: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state.jsonl"
        for name, work, args in (
            ("plain copy loop (same client)", plain_copy, (url, source_key, loop_key)),
            ("collections-hub migrate", run_migrate, (url, source_key, migrate_key, state)),
        ):
            seconds, (copied, linked) = await asyncio.to_thread(timed, work, *args)
            table.add(name, seconds, copied / seconds, linked / seconds)
            data[name] = {"seconds": seconds, "collections": copied, "members": linked}
        rerun, _ = await asyncio.to_thread(timed, run_migrate, url, source_key, migrate_key, state)
        table.add("migrate rerun (all journaled: skips)", rerun, collections / rerun, 0.0)

        export = section.table(
            "collections-hub export of one collection (separate process, peak RSS from wait4)",
            ["members", "seconds", "members/s", "peak RSS MB", "file MB"],
        )
        for size in sorted({max(1, members // 10), members}):
            project, collection_id = await asyncio.to_thread(big_collection, url, admin_key)
            # Members seeded straight into catalog's database, as section 5 does (through the API a
            # million-member collection would take most of the run).
            await seed_members(bench, collection_id, "node", size)
            out = Path(scratch) / f"export-{size}.jsonl"
            seconds, peak, written = await asyncio.to_thread(export_peak, url, admin_key, project, out)
            export.add(size, seconds, size / seconds, peak, written / 1e6)
            data[f"export_{size}"] = {"seconds": seconds, "peak_rss_mb": peak, "bytes": written}
    section.data.update(data)
    section.notes.append(
        "Export reads members through dialect A's list, spooled to disk and parsed as a stream (ijson), so "
        "its memory should not grow with the member count; the server's side of that answer is the "
        "catalog's own cost."
    )
    return section

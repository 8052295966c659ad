"""Member documents on a real server: exact changes under races, recovery after a crash, the migration
from member arrays, and a cost that does not grow with the collection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.items import Registry
from catalog_service.lookup import CollectionLookup
from catalog_service.member_repository import PENDING, PENDING_COUNT, MemberRepository, PendingChange
from catalog_service.membership import Membership, now_ms
from catalog_service.repository import CatalogRepository
from shared.authz import AccessDecisions
from shared.errors import Unavailable
from shared.internal import InternalClient
from shared.mongo import Document


@pytest.fixture
async def membership(mongo_db: AsyncDatabase[Document]) -> AsyncIterator[Membership]:
    """Membership use cases on a fresh database (access_service is never asked in these tests)."""
    repository = CatalogRepository(mongo_db)
    members = MemberRepository(mongo_db)
    await repository.ensure_indexes()
    await members.ensure_indexes()
    async with ClientSession() as session:
        access = AccessDecisions(InternalClient(session, "http://127.0.0.1:9", "unused"))
        yield Membership(
            members, CollectionLookup(repository, access), Registry(repository), stale_after_seconds=60.0
        )


async def new_collection(db: AsyncDatabase[Document], collection_id: str, **fields: object) -> None:
    """A live collection document as catalog writes it."""
    await db["collections"].insert_one(
        {
            "_id": collection_id,
            "project_id": "p1",
            "owner_id": 1,
            "name": collection_id,
            "deleted": False,
            "node_count": 0,
            "asset_count": 0,
            "model_count": 0,
            "version": 1,
            "outbox": {},
            "outbox_count": 0,
            **fields,
        }
    )


async def begin(
    membership: Membership, collection_id: str, count: int, *, add: bool, at_ms: int | None = None
) -> PendingChange:
    """Step 1 of a node change (no permission check: that is the use case's, tested end to end), now or
    at `at_ms` (0: long enough ago for recovery to take it for a crashed one)."""
    began = now_ms() if at_ms is None else at_ms
    change = await membership.members.begin(
        {"_id": collection_id}, "node", add=add, count=count, actor=1, now_ms=began
    )
    assert change is not None
    return change


async def members_of(membership: Membership, collection_id: str) -> list[str]:
    """The collection's node ids, in order."""
    return [item async for item in membership.items_of(collection_id, "node")]


async def test_changes_name_exactly_the_ids_they_flipped(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """An add reports only new ids, a remove only present ones (a mixed remove is read back exactly)."""
    await new_collection(mongo_db, "c1")

    async def change(ids: list[str], *, add: bool) -> list[str]:
        _, changed = await membership.complete(
            await begin(membership, "c1", len(ids), add=add), ids, actor=1, project_id="p1"
        )
        return changed

    assert await change(["a", "b", "c"], add=True) == ["a", "b", "c"]
    assert await change(["b", "d", "a"], add=True) == ["d"]
    assert await change(["x", "a", "y", "c"], add=False) == ["a", "c"]
    assert await change(["b", "d"], add=False) == ["b", "d"]
    assert await change(["zz"], add=False) == []
    assert await change(["a"], add=True) == ["a"]
    assert await members_of(membership, "c1") == ["a"]
    doc = await mongo_db["collections"].find_one({"_id": "c1"})
    assert doc is not None
    assert doc["node_count"] == 1


async def test_concurrent_changes_on_one_collection_stay_exact(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """32 writers adding and removing overlapping ids at once: every call succeeds, the count is the
    number of members, and the ids the calls reported sum up to it."""
    await new_collection(mongo_db, "c2")
    shared = [f"s{n}" for n in range(20)]

    async def writer(n: int) -> int:
        own = [f"w{n}-{k}" for k in range(5)]
        delta = 0
        for ids, add in ((own + shared, True), (own[:2] + shared[n % 20 :], False), (shared[:5], True)):
            _, changed = await membership.complete(
                await begin(membership, "c2", len(ids), add=add), ids, actor=1, project_id="p1"
            )
            delta += len(changed) if add else -len(changed)
        return delta

    deltas = await asyncio.gather(*(writer(n) for n in range(32)))
    members = await members_of(membership, "c2")
    doc = await mongo_db["collections"].find_one({"_id": "c2"})
    assert doc is not None
    assert len(members) == len(set(members)) == doc["node_count"] == sum(deltas)
    assert {f"w{n}-{k}" for n in range(32) for k in range(2, 5)} <= set(members)
    assert not {f"w{n}-{k}" for n in range(32) for k in range(2)} & set(members)
    assert doc[PENDING_COUNT] == 0


async def test_a_change_interrupted_after_apply_is_finished_once_by_recovery(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """A crash between apply and finish: its members are held from other changes, and recovery counts and
    announces exactly them, with the change's id as event id, once."""
    await new_collection(mongo_db, "c3")
    crashed = await begin(membership, "c3", 2, add=True, at_ms=0)
    assert await membership.members.apply(crashed, ["m1", "m2"]) == ["m1", "m2"]
    # A later change may not take the crashed change's members away while it is pending.
    later = await begin(membership, "c3", 2, add=False)
    assert later.held == (crashed.op_id,)
    _, removed = await membership.complete(later, ["m1", "m3"], actor=1, project_id="p1")
    assert removed == []
    assert await membership.recover_stale() == 1
    assert await membership.recover_stale() == 0
    doc = await mongo_db["collections"].find_one({"_id": "c3"})
    assert doc is not None
    assert doc["node_count"] == 2
    assert doc[PENDING] == {}
    event = doc["outbox"][crashed.op_id]
    assert event["type"] == "catalog.collection.members_added"
    assert event["data"]["ids"] == ["m1", "m2"]
    # Once finished, its members are free again.
    _, removed = await membership.complete(
        await begin(membership, "c3", 1, add=False), ["m1"], actor=1, project_id="p1"
    )
    assert removed == ["m1"]


async def test_a_change_too_old_to_apply_safely_is_refused_and_left_to_recovery(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """A change whose apply would start past half the stale limit is refused (503) without flipping
    anything: recovery may be about to take it for a crashed one, and a write landing after recovery read
    it would flip members no count or event ever tells. Recovery then finishes it with nothing changed."""
    await new_collection(mongo_db, "c5")
    late = await begin(membership, "c5", 2, add=True, at_ms=now_ms() - 61_000)
    with pytest.raises(Unavailable):
        await membership.complete(late, ["a", "b"], actor=1, project_id="p1")
    assert await members_of(membership, "c5") == []
    assert await membership.recover_stale() == 1
    doc = await mongo_db["collections"].find_one({"_id": "c5"})
    assert doc is not None
    assert (doc["node_count"], doc[PENDING], doc["outbox"]) == (0, {}, {})


async def test_recovery_reaches_a_stale_change_behind_any_number_of_fresh_ones(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """120 collections with a change in flight, then one whose change a crash left: recovery finishes that
    one, and leaves the live ones alone."""
    for n in range(120):
        await new_collection(mongo_db, f"busy{n:03}")
        await begin(membership, f"busy{n:03}", 1, add=True)
    await new_collection(mongo_db, "crashed")
    await begin(membership, "crashed", 1, add=True, at_ms=0)
    assert await membership.recover_stale() == 1
    doc = await mongo_db["collections"].find_one({"_id": "crashed"})
    assert doc is not None
    assert doc[PENDING] == {}
    assert await mongo_db["collections"].count_documents({PENDING_COUNT: 1}) == 120


async def asset_change(
    membership: Membership, ids: list[str], *, add: bool, at_ms: int | None = None
) -> PendingChange:
    """Step 1 of an asset change on collection "t"."""
    began = now_ms() if at_ms is None else at_ms
    change = await membership.members.begin(
        {"_id": "t"}, "asset", add=add, count=len(ids), actor=1, now_ms=began
    )
    assert change is not None
    return change


def right_away(membership: Membership) -> Membership:
    """The same use cases with a stale limit of 0: recovery takes every mark as old."""
    return Membership(membership.members, membership.lookup, membership.registry, stale_after_seconds=0.0)


async def test_a_thumbnail_step_a_crash_skipped_is_done_by_recovery(
    membership: Membership, mongo_db: AsyncDatabase[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thumbnail follows the counts in a step of its own. A crash between them (here: the step fails)
    leaves the collection marked, and recovery shows the first asset of a collection that has none, and
    takes away the thumbnail of an asset no longer linked."""
    await new_collection(mongo_db, "t", thumbnail=None)

    async def crash(*_args: object, **_kwargs: object) -> Document:
        raise RuntimeError("killed between finish and the thumbnail step")

    with monkeypatch.context() as patched:
        patched.setattr(membership, "_keep_thumbnail", crash)
        with pytest.raises(RuntimeError):
            await membership.complete(
                await asset_change(membership, ["a1", "a2"], add=True), ["a1", "a2"], actor=1, project_id="p1"
            )
    doc = await mongo_db["collections"].find_one({"_id": "t"})
    assert doc is not None
    assert (doc["asset_count"], doc["thumbnail"]) == (2, None)
    assert await membership.recover_thumbnails() == 0  # not stale yet: a live request may still be on it
    assert await right_away(membership).recover_thumbnails() == 1
    doc = await mongo_db["collections"].find_one({"_id": "t"})
    assert doc is not None
    assert doc["thumbnail"] == {"asset_id": "a1"}
    assert "thumbnail_due" not in doc
    with monkeypatch.context() as patched:
        patched.setattr(membership, "_keep_thumbnail", crash)
        with pytest.raises(RuntimeError):
            await membership.complete(
                await asset_change(membership, ["a1"], add=False), ["a1"], actor=1, project_id="p1"
            )
    assert await right_away(membership).recover_thumbnails() == 1
    doc = await mongo_db["collections"].find_one({"_id": "t"})
    assert doc is not None
    assert (doc["asset_count"], doc["thumbnail"]) == (1, None)


async def test_an_asset_change_a_crash_left_before_finish_gets_its_thumbnail_too(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """Recovery finishes a crashed asset add and marks it, so its thumbnail is then shown."""
    await new_collection(mongo_db, "t", thumbnail=None)
    crashed = await asset_change(membership, ["a9"], add=True, at_ms=0)
    assert await membership.members.apply(crashed, ["a9"]) == ["a9"]
    assert await membership.recover_stale() == 1
    assert await membership.recover_thumbnails() == 1
    doc = await mongo_db["collections"].find_one({"_id": "t"})
    assert doc is not None
    assert (doc["asset_count"], doc["thumbnail"]) == (1, {"asset_id": "a9"})


async def test_asset_changes_that_leave_the_thumbnail_alone_leave_no_mark(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """Adding to a collection that shows a thumbnail, or removing another asset, costs nothing more."""
    await new_collection(mongo_db, "t", thumbnail=None)
    for ids, add in ((["a1", "a2"], True), (["a3"], True), (["a2"], False)):
        await membership.complete(await asset_change(membership, ids, add=add), ids, actor=1, project_id="p1")
    doc = await mongo_db["collections"].find_one({"_id": "t"})
    assert doc is not None
    assert (doc["thumbnail"], doc["asset_count"]) == ({"asset_id": "a1"}, 2)
    assert "thumbnail_due" not in doc
    assert await right_away(membership).recover_thumbnails() == 0


async def test_a_thumbnail_chosen_while_its_asset_is_unlinked_goes(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """C's PUT shows the chosen asset, then looks again: an unlink that ran in between (and saw the old
    thumbnail, so left this one alone) is caught, and the thumbnail goes; a linked one stays."""
    await new_collection(mongo_db, "t", thumbnail=None)
    await membership.complete(
        await asset_change(membership, ["a1"], add=True), ["a1"], actor=1, project_id="p1"
    )
    doc = await mongo_db["collections"].find_one({"_id": "t"})
    assert doc is not None
    assert (await membership.recheck_thumbnail(doc, "a1", 1))["thumbnail"] == {"asset_id": "a1"}
    # The PUT showed a2, whose unlink had already run.
    await mongo_db["collections"].update_one({"_id": "t"}, {"$set": {"thumbnail": {"asset_id": "a2"}}})
    doc = await mongo_db["collections"].find_one({"_id": "t"})
    assert doc is not None
    assert (await membership.recheck_thumbnail(doc, "a2", 1))["thumbnail"] is None
    stored = await mongo_db["collections"].find_one({"_id": "t"})
    assert stored is not None
    assert stored["thumbnail"] is None


async def test_an_older_change_cannot_flip_a_member_a_newer_pending_one_flipped(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """A change that began before another (so does not know it is pending) still cannot undo its members:
    the member remembers the newer change's number."""
    await new_collection(mongo_db, "c4")
    older = await begin(membership, "c4", 1, add=False)
    newer = await begin(membership, "c4", 1, add=True)
    assert await membership.members.apply(newer, ["x"]) == ["x"]
    assert await membership.members.apply(older, ["x"]) == []  # linearised before the add


async def test_migration_moves_arrays_to_member_documents_idempotently(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """Collections of the old layout (member arrays) move to member documents with exact counts, in their
    order; a second run, or one after a crash half-way, changes nothing more."""
    nodes = [f"n{k}" for k in range(300)]
    await new_collection(mongo_db, "old1", nodes=nodes, assets=["a1", "a2"], models=[], node_count=300)
    await new_collection(mongo_db, "old2", nodes=["x", "y"], assets=[], models=["m"], node_count=2)
    # old2 was half-migrated when a crash stopped it: its member documents exist, its arrays too.
    await membership.members.migrate_legacy("old2")
    await mongo_db["collections"].update_one(
        {"_id": "old2"}, {"$set": {"nodes": ["x", "y"], "models": ["m"]}}
    )
    assert await membership.migrate_legacy_layout() == 305
    # Done once, said once: later starts read that mark instead of searching for arrays.
    await new_collection(mongo_db, "late", nodes=["z"])
    assert await membership.migrate_legacy_layout() == 0
    late = await mongo_db["collections"].find_one({"_id": "late"})
    assert late is not None
    assert late["nodes"] == ["z"]
    assert await members_of(membership, "old1") == nodes
    assert await members_of(membership, "old2") == ["x", "y"]
    for collection_id, counts in (("old1", (300, 2, 0)), ("old2", (2, 0, 1))):
        doc = await mongo_db["collections"].find_one({"_id": collection_id})
        assert doc is not None
        assert "nodes" not in doc
        assert "assets" not in doc
        assert (doc["node_count"], doc["asset_count"], doc["model_count"]) == counts
    # New members go after the migrated ones.
    _, added = await membership.complete(
        await begin(membership, "old1", 1, add=True), ["new"], actor=1, project_id="p1"
    )
    assert added == ["new"]
    assert (await members_of(membership, "old1"))[-1] == "new"


async def test_a_change_costs_the_same_at_any_size(
    membership: Membership, mongo_db: AsyncDatabase[Document]
) -> None:
    """No document grows with the collection: after 20,000 members the collection document is as small as
    at the start, and each member document is tiny."""
    await new_collection(mongo_db, "big")
    empty = await mongo_db["collections"].find_one({"_id": "big"})
    for batch in range(4):
        ids = [f"b{batch}-{k}" for k in range(5_000)]
        await membership.complete(
            await begin(membership, "big", len(ids), add=True), ids, actor=1, project_id="p1"
        )
    doc = await mongo_db["collections"].find_one({"_id": "big"}, {"outbox": 0})
    assert doc is not None
    assert empty is not None
    assert doc["node_count"] == 20_000
    assert len(str(doc)) < len(str(empty)) + 200
    assert await mongo_db["members"].count_documents({"c": "big"}) == 20_000

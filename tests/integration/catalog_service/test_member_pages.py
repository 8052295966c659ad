"""`MemberRepository.page` on a real server: live members of one collection and kind, by position, after a
bound, at most a limit, with positions handed out by `begin` (what the item lists' tokens rely on)."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.member_repository import MemberKind, MemberRepository, member_id
from shared.mongo import Document


async def live_collection(db: AsyncDatabase[Document], collection_id: str) -> None:
    """A live collection document with the counters a membership change needs."""
    await db["collections"].insert_one(
        {"_id": collection_id, "project_id": "p1", "owner_id": 1, "deleted": False, "outbox": {}}
    )


async def change(
    members: MemberRepository, collection_id: str, kind: MemberKind, ids: list[str], *, add: bool
) -> list[str]:
    """One whole membership change (begin, apply, finish); the ids it flipped."""
    pending = await members.begin({"_id": collection_id}, kind, add=add, count=len(ids), actor=1, now_ms=0)
    assert pending is not None
    changed = await members.apply(pending, ids)
    await members.finish(pending, len(changed), {"$set": {"updated_at": "now"}}, [], {"_id": 1})
    return changed


async def test_a_page_holds_only_live_members_of_its_collection_and_kind_in_order(
    mongo_db: AsyncDatabase[Document],
) -> None:
    """Removed members, other kinds and other collections never appear; pages follow the positions."""
    members = MemberRepository(mongo_db)
    await members.ensure_indexes()
    for cid in ("c1", "c2"):
        await live_collection(mongo_db, cid)
    await change(members, "c1", "asset", ["a3", "a1", "a2"], add=True)
    await change(members, "c1", "model", ["m1", "m2"], add=True)
    await change(members, "c2", "asset", ["a1", "a9"], add=True)
    await change(members, "c1", "asset", ["a4", "a5", "a6"], add=True)
    await change(members, "c1", "asset", ["a1", "a5"], add=False)
    everything = await members.page("c1", "asset", -1, 100)
    assert [item for _, item in everything] == ["a3", "a2", "a4", "a6"]
    positions = [position for position, _ in everything]
    assert positions == sorted(set(positions))
    first = await members.page("c1", "asset", -1, 2)
    rest = await members.page("c1", "asset", first[-1][0], 2)
    assert first + rest == everything
    assert await members.page("c1", "asset", everything[-1][0], 10) == []
    assert [item for _, item in await members.page("c1", "model", -1, 10)] == ["m1", "m2"]
    assert [item for _, item in await members.page("c2", "asset", -1, 10)] == ["a1", "a9"]
    assert await members.page("c3", "asset", -1, 10) == []


async def test_positions_are_never_reused_so_a_token_stays_in_place_across_changes(
    mongo_db: AsyncDatabase[Document],
) -> None:
    """After a page ends, removals before it and a re-add move nothing into the pages already walked."""
    members = MemberRepository(mongo_db)
    await members.ensure_indexes()
    await live_collection(mongo_db, "c1")
    await change(members, "c1", "asset", [f"a{n}" for n in range(6)], add=True)
    first = await members.page("c1", "asset", -1, 3)
    assert [item for _, item in first] == ["a0", "a1", "a2"]
    await change(members, "c1", "asset", ["a1"], add=False)
    await change(members, "c1", "asset", ["a1", "a6"], add=True)  # a1 comes back with a new position
    await change(members, "c1", "asset", ["a0"], add=True)  # already a member: it keeps its place
    rest = await members.page("c1", "asset", first[-1][0], 10)
    assert [item for _, item in rest] == ["a3", "a4", "a5", "a1", "a6"]
    stored = await mongo_db["members"].find_one({"_id": member_id("c1", "asset", "a0")})
    assert stored is not None
    assert stored["q"] == first[0][0]

"""The lists' read model on a real server: dense views under concurrent writers from two replicas, facts
that never let an older version win, a change cut short by a crash, and the migration of collections
written before views existed (catalog_service/reader_views.py, docs/scale.md "Lists")."""

from __future__ import annotations

import asyncio
import random

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.reader_views import EVERYONE, ReaderViews, user_reader, view_key
from catalog_service.repository import CatalogRepository
from catalog_service.view_repository import ViewChange, ViewRepository, entry_id, head_id
from shared.catalog_directory import VisibilityFact
from shared.mongo import Document


def replica(db: AsyncDatabase[Document]) -> ReaderViews:
    """One catalog replica's read model (each has its own in-process combiner)."""
    return ReaderViews(ViewRepository(db), CatalogRepository(db))


@pytest.fixture
async def views(mongo_db: AsyncDatabase[Document]) -> ReaderViews:
    await CatalogRepository(mongo_db).ensure_indexes()
    await ViewRepository(mongo_db).ensure_indexes()
    return replica(mongo_db)


async def new_collection(
    db: AsyncDatabase[Document], collection_id: str, owner: int = 1, **fields: object
) -> None:
    await db["collections"].insert_one(
        {"_id": collection_id, "project_id": "p1", "owner_id": owner, "name": collection_id, "deleted": False}
        | fields
    )


async def check_dense(views: ReaderViews, view: str) -> list[str]:
    """The view's ids, after checking its invariants: positions 1..n each hold one collection, no
    collection twice, and each one's recorded place is where it stands."""
    ids = await views.all_ids(view)
    assert len(ids) == len(set(ids)), "a collection twice in a view"
    head = await views.views.views.find_one({"_id": head_id(view)})
    assert head is not None
    assert "op" not in head  # every change written out
    assert head["n"] == len(ids)
    for position, collection_id in enumerate(ids, start=1):
        place = await views.views.views.find_one({"_id": f"I\x1f{view}\x1f{collection_id}"})
        assert place is not None
        assert place["pos"] == position
    return ids


async def test_two_replicas_adding_and_removing_at_once_keep_a_view_dense_and_exact(
    views: ReaderViews, mongo_db: AsyncDatabase[Document]
) -> None:
    ids = [f"c{n:03}" for n in range(120)]
    for collection_id in ids:
        await new_collection(mongo_db, collection_id)
    other = replica(mongo_db)
    view = view_key(user_reader(1))
    rng = random.Random(7)
    # Each collection joins through one replica; a third of them are deleted and leave through the other.
    await asyncio.gather(*(rng.choice([views, other]).touch(view, [c]) for c in ids))
    gone = ids[::3]
    await mongo_db["collections"].update_many({"_id": {"$in": gone}}, {"$set": {"deleted": True}})
    await asyncio.gather(
        *(rng.choice([views, other]).touch(view, [c]) for c in gone),
        *(rng.choice([views, other]).touch(view, [c]) for c in ids[1::3]),  # no-ops meanwhile
    )
    assert set(await check_dense(views, view)) == set(ids) - set(gone)
    page = await views.page(view, 70, 10)
    assert page.size == 80
    assert len(page.ids) == 10


async def test_touching_many_views_at_once_from_two_replicas_keeps_every_view_dense_and_exact(
    views: ReaderViews, mongo_db: AsyncDatabase[Document]
) -> None:
    """Each caller brings several overlapping views up to date in one round of commands; where another
    replica changed one of them meanwhile, only that view goes again, and none loses or doubles an id."""
    ids = [f"m{n:03}" for n in range(90)]
    for n, collection_id in enumerate(ids):
        await new_collection(mongo_db, collection_id, owner=1 + n % 3, project_id=f"p{n % 2}")
    other = replica(mongo_db)
    rng = random.Random(11)

    def scopes(n: int) -> list[str]:
        reader = user_reader(1 + n % 3)
        project = f"p{n % 2}"
        return [view_key(EVERYONE), view_key(EVERYONE, project), view_key(reader), view_key(reader, project)]

    await asyncio.gather(
        *(rng.choice([views, other]).touch_all({v: [c] for v in scopes(n)}) for n, c in enumerate(ids))
    )
    gone = set(ids[::4])
    await mongo_db["collections"].update_many({"_id": {"$in": list(gone)}}, {"$set": {"deleted": True}})
    await asyncio.gather(
        *(
            rng.choice([views, other]).touch_all({v: [c] for v in scopes(n)})
            for n, c in enumerate(ids)
            if c in gone or n % 5 == 0  # removals, and no-op touches beside them
        )
    )
    live = [c for c in ids if c not in gone]
    assert sorted(await check_dense(views, view_key(EVERYONE))) == live
    for project in ("p0", "p1"):
        wanted = [c for n, c in enumerate(ids) if c not in gone and f"p{n % 2}" == project]
        assert sorted(await check_dense(views, view_key(EVERYONE, project))) == wanted
    for owner in (1, 2, 3):
        wanted = [c for n, c in enumerate(ids) if c not in gone and 1 + n % 3 == owner]
        assert sorted(await check_dense(views, view_key(user_reader(owner)))) == wanted
        for project in ("p0", "p1"):
            in_project = [c for n, c in enumerate(ids) if c in wanted and f"p{n % 2}" == project]
            assert sorted(await check_dense(views, view_key(user_reader(owner), project))) == in_project


async def test_an_older_fact_never_wins_and_a_newer_one_does(
    views: ReaderViews, mongo_db: AsyncDatabase[Document]
) -> None:
    await new_collection(mongo_db, "s1", owner=1)
    reader = view_key(user_reader(2))

    def share(on: bool, version: int) -> VisibilityFact:
        return VisibilityFact(kind="share", on=on, version=version, collection_id="s1", user_id=2)

    assert await views.apply_facts([share(True, 1)]) == 1
    assert await views.all_ids(reader) == ["s1"]
    assert await views.apply_facts([share(False, 3)]) == 1
    assert await views.apply_facts([share(True, 2)]) == 0  # a late, older grant (an event redelivered)
    assert await views.apply_facts([share(False, 3)]) == 0  # the same fact twice
    assert await views.all_ids(reader) == []


async def test_a_role_granted_while_a_collection_is_created_reaches_it(
    views: ReaderViews, mongo_db: AsyncDatabase[Document]
) -> None:
    """A create inserts its collection, reads the project's role holders, then brings the views up to
    date. A role granted between the read and the views' update is not among the holders the create saw,
    and the project's view does not hold the new collection yet: the role's fan-out must find it among the
    collections themselves, or the holder's list misses it for good."""
    await new_collection(mongo_db, "old", owner=1)
    await views.touch_all({view_key(EVERYONE): ["old"], view_key(EVERYONE, "p1"): ["old"]})
    await new_collection(mongo_db, "new", owner=1)  # the create's insert; its holders read finds nobody
    role = VisibilityFact(kind="role", on=True, version=1, project_id="p1", user_id=9)
    assert await views.apply_facts([role]) == 1
    await views.touch_all({view_key(EVERYONE): ["new"], view_key(EVERYONE, "p1"): ["new"]})  # the create ends
    assert sorted(await check_dense(views, view_key(user_reader(9)))) == ["new", "old"]


async def test_a_change_committed_but_not_written_out_is_seen_by_readers_and_finished_by_the_next_writer(
    views: ReaderViews, mongo_db: AsyncDatabase[Document]
) -> None:
    for collection_id in ("a", "b", "c"):
        await new_collection(mongo_db, collection_id)
    view = view_key(EVERYONE)
    await views.touch(view, ["a", "b"])
    # A replica commits "c" at position 3 and dies before writing it out.
    docs = await views.views.by_ids([head_id(view)])
    head = docs[head_id(view)]
    crashed = ViewChange(version=head["ver"] + 1, size=3, entries={3: "c"}, places={"c": 3})
    await mongo_db["views"].update_one(
        {"_id": head_id(view)}, {"$set": {"ver": crashed.version, "n": 3, "op": crashed.as_document()}}
    )
    assert await mongo_db["views"].find_one({"_id": entry_id(view, 3)}) is None
    assert (await views.page(view, 0, 10)).ids == ["a", "b", "c"]  # readers apply the committed change
    await mongo_db["collections"].update_one({"_id": "a"}, {"$set": {"deleted": True}})
    await views.touch(view, ["a"])  # the next writer finishes the crashed change first
    assert await check_dense(views, view) == ["c", "b"]


async def test_migration_places_collections_written_before_views_once(
    views: ReaderViews, mongo_db: AsyncDatabase[Document]
) -> None:
    for n in range(7):
        await new_collection(mongo_db, f"old{n}", owner=5 + n % 2)
    await new_collection(mongo_db, "gone", owner=5, deleted=True)
    assert await views.migrate() == 7
    assert await views.migrate() == 0  # done once, said once
    assert sorted(await views.all_ids(view_key(EVERYONE))) == [f"old{n}" for n in range(7)]
    assert sorted(await views.all_ids(view_key(user_reader(5), "p1"))) == ["old0", "old2", "old4", "old6"]
    assert sorted(await check_dense(views, view_key(user_reader(6)))) == ["old1", "old3", "old5"]

"""The lists' verifier on a real server: views that follow the rules pass untouched; a view that drifted (an
entry it must not hold, one it lacks) is found, repaired and counted; the walk over every view resumes
where it stopped (catalog_service/view_verifier.py, docs/scale.md "Lists: the verifier")."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.reader_views import EVERYONE, ReaderViews, user_reader, view_key
from catalog_service.repository import CatalogRepository
from catalog_service.view_repository import Head, ViewChange, ViewRepository, head_id
from catalog_service.view_verifier import ViewVerifier
from shared.catalog_directory import VisibilityFact
from shared.metrics import Metrics
from shared.mongo import Document


@pytest.fixture
async def db(mongo_db: AsyncDatabase[Document]) -> AsyncDatabase[Document]:
    await CatalogRepository(mongo_db).ensure_indexes()
    await ViewRepository(mongo_db).ensure_indexes()
    return mongo_db


def verifier_of(db: AsyncDatabase[Document], metrics: Metrics | None = None) -> ViewVerifier:
    """A verifier that confirms a difference at once (nothing else writes in these tests)."""
    views = ReaderViews(ViewRepository(db), CatalogRepository(db))
    return ViewVerifier(views, views.repo, views.views, metrics, confirm_seconds=0)


async def seed(db: AsyncDatabase[Document]) -> ReaderViews:
    """Three collections of user 1 in p1 (one in dataset d1), one shared with user 2 through group 7."""
    views = ReaderViews(ViewRepository(db), CatalogRepository(db))
    for n, dataset in ((1, "d1"), (2, ""), (3, "")):
        doc: Document = {"_id": f"c{n}", "project_id": "p1", "owner_id": 1, "name": f"c{n}", "deleted": False}
        if dataset:
            doc["dataset_id"] = dataset
        await db["collections"].insert_one(dict(doc))
        await views.collection_changed(f"c{n}", doc)
    await views.apply_facts(
        [
            VisibilityFact(kind="member", on=True, version=1, group_id=7, user_id=2),
            VisibilityFact(kind="share", on=True, version=1, collection_id="c2", group_id=7),
        ]
    )
    return views


async def corrupt(views: ReaderViews, view: str, *, add: str | None = None, drop: str | None = None) -> None:
    """Change a view behind the rules' back, as a bug would: append an id, or move the last entry into
    the place of one."""
    docs = await views.views.by_ids([head_id(view)])
    head = Head.of(view, docs.get(head_id(view)))
    held = await views.all_ids(view)
    change = ViewChange(version=head.version + 1, size=head.size)
    if add is not None:
        change.size += 1
        change.entries[change.size] = add
        change.places[add] = change.size
    if drop is not None:
        place = held.index(drop) + 1
        last = held[-1]
        if last != drop:
            change.entries[place] = last
            change.places[last] = place
        change.places[drop] = 0
        change.size -= 1
    assert await views.views.commit({view: head}, {view: change}) == {view}
    await views.views.write_out({view: change})
    await views.views.settle({view: change.version})


def repairs(metrics: Metrics, drift: str) -> float:
    """How many repairs of a kind the metric counted."""
    value = metrics.registry.get_sample_value(
        "catalog_view_repairs_total", {"service": metrics.service, "drift": drift}
    )
    return value or 0.0


async def test_views_that_follow_the_rules_pass_untouched(db: AsyncDatabase[Document]) -> None:
    """Every view of a consistent hub checks clean, and nothing is counted."""
    await seed(db)
    metrics = Metrics("catalog_service")
    verifier = verifier_of(db, metrics)
    report = await verifier.check_after("", 100, repair=True)
    assert report.checked >= 8
    assert report.drifted == []
    assert repairs(metrics, "missing") == repairs(metrics, "extra") == 0


async def test_an_entry_a_reader_may_not_read_is_found_removed_and_counted(
    db: AsyncDatabase[Document],
) -> None:
    """The audit's leak as the verifier meets it: user 2's list holds c3, which nobody shared with it."""
    views = await seed(db)
    reader = view_key(user_reader(2))
    await corrupt(views, reader, add="c3")
    assert sorted(await views.all_ids(reader)) == ["c2", "c3"]
    metrics = Metrics("catalog_service")
    drift = await verifier_of(db, metrics).check(reader)
    assert (drift.extra, drift.missing) == (["c3"], [])
    assert await views.all_ids(reader) == ["c2"]
    assert repairs(metrics, "extra") == 1
    assert not await verifier_of(db, metrics).check(reader)  # and it stays repaired


async def test_a_missing_entry_is_found_put_back_and_counted(db: AsyncDatabase[Document]) -> None:
    """Everyone's list of dataset d1 lost c1; the owner's list of p1 lost c2: both come back."""
    views = await seed(db)
    dataset_view, owner_view = view_key(EVERYONE, "p1", "d1"), view_key(user_reader(1), "p1")
    await corrupt(views, dataset_view, drop="c1")
    await corrupt(views, owner_view, drop="c2")
    metrics = Metrics("catalog_service")
    report = await verifier_of(db, metrics).check_after("", 100, repair=True)
    assert sorted(d.view for d in report.drifted) == sorted([dataset_view, owner_view])
    assert await views.all_ids(dataset_view) == ["c1"]
    assert sorted(await views.all_ids(owner_view)) == ["c1", "c2", "c3"]
    assert repairs(metrics, "missing") == 2


async def test_without_repair_a_drift_is_reported_and_left(db: AsyncDatabase[Document]) -> None:
    """`views verify` without `--repair` only reports."""
    views = await seed(db)
    reader = view_key(user_reader(2))
    await corrupt(views, reader, add="c1")
    drift = await verifier_of(db).check(reader, repair=False)
    assert drift.extra == ["c1"]
    assert sorted(await views.all_ids(reader)) == ["c1", "c2"]


async def test_the_walk_over_every_view_resumes_where_it_stopped(db: AsyncDatabase[Document]) -> None:
    """Passes of two views each, from one verifier and then another (a restart), check every view once
    before starting over."""
    await seed(db)
    every = [doc["v"] async for doc in db["views"].find({"k": "H"}, {"v": 1})]
    seen: list[str] = []
    passes = 0
    while passes < 20:
        passes += 1
        verifier = verifier_of(db)  # a fresh one each pass: the place is kept in the store
        cursor_before = await verifier.view_repo.verify_cursor()
        report = await verifier.run_pass(2)
        seen += await verifier.view_repo.view_keys_after(cursor_before, report.checked)
        if report.next_view is None:
            break
    assert passes < 20
    assert sorted(seen) == sorted(every)
    assert len(seen) == len(set(seen))
    assert await verifier_of(db).view_repo.verify_cursor() == ""  # the next pass starts over

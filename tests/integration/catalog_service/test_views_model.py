"""The lists' read model against the rules, under concurrency: random changes of everything that decides
who sees a collection (creates, deletes, moves between datasets, shares with users and groups, group
joins and leaves, project roles), applied at once by several writers through two catalog replicas, then
every view compared with a model computed from the rules of docs/access.md. Short in `make test`;
`HUB_VIEWS_MODEL_RUNS=200` runs that many seeds (docs/scale.md, "Lists: the invariant")."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from catalog_service.reader_views import EVERYONE, ReaderViews, user_reader, view_key
from catalog_service.repository import CatalogRepository
from catalog_service.view_repository import ViewRepository
from catalog_service.view_verifier import ViewVerifier
from shared.catalog_directory import VisibilityFact
from shared.mongo import Document

USERS = (1, 2, 3, 4)
GROUPS = (1, 2)
PLACES = (("p1", ""), ("p1", "d1"), ("p1", "d2"), ("p2", ""))
RUNS = int(os.environ.get("HUB_VIEWS_MODEL_RUNS", "6"))
LIVE_MAX = 4


class Interleaving(ViewRepository):
    """The view repository with a pause after recording a fact and after reading facts: other writers'
    commands run in between, so the interleavings a busy server makes happen here on every run."""

    def __init__(self, db: AsyncDatabase[Document], rng: random.Random) -> None:
        super().__init__(db)
        self._rng = rng

    async def _pause(self) -> None:
        await asyncio.sleep(self._rng.random() * 0.003)

    async def record_fact(self, fact_id: str, fields: Document, on: bool, version: int) -> bool:
        """Record, then let others run."""
        recorded = await super().record_fact(fact_id, fields, on, version)
        await self._pause()
        return recorded

    async def facts(self, selector: Document) -> list[Document]:
        """Read, then let others run."""
        found = await super().facts(selector)
        await self._pause()
        return found


class Lockstep(ViewRepository):
    """The view repository of two writers that both record their fact before either reads any: the
    interleaving the audit hit 19 times in 40."""

    def __init__(self, db: AsyncDatabase[Document], barrier: asyncio.Barrier) -> None:
        super().__init__(db)
        self._barrier = barrier

    async def record_fact(self, fact_id: str, fields: Document, on: bool, version: int) -> bool:
        """Record, then wait for the other writer to have recorded too."""
        recorded = await super().record_fact(fact_id, fields, on, version)
        await self._barrier.wait()
        return recorded


def replica(db: AsyncDatabase[Document], views: ViewRepository | None = None) -> ReaderViews:
    """One catalog replica's read model (each has its own in-process combiner)."""
    return ReaderViews(views or ViewRepository(db), CatalogRepository(db))


@dataclass
class Model:
    """The rules' inputs: facts at their newest version, and the collections."""

    facts: dict[tuple[object, ...], tuple[int, bool]] = field(default_factory=dict)  # key -> (version, on)
    collections: dict[str, dict[str, object]] = field(default_factory=dict)

    def on(self, *key: object) -> bool:
        """Whether a fact is on at its newest version."""
        return self.facts.get(key, (0, False))[1]

    def may_read(self, user: int, collection_id: str, *, with_roles: bool) -> bool:
        """docs/access.md: owner, shared with the user or one of its groups, or (B and C lists) a role."""
        doc = self.collections[collection_id]
        return (
            doc["owner_id"] == user
            or self.on("share", collection_id, "u", user)
            or any(self.on("share", collection_id, "g", g) and self.on("member", g, user) for g in GROUPS)
            or (with_roles and self.on("role", doc["project_id"], user))
        )

    def expected(self, view: str) -> set[str]:
        """What a view must hold at rest."""
        reader, project, dataset = view.split("\x1e")
        return {
            c
            for c, doc in self.collections.items()
            if not doc["deleted"]
            and (not project or doc["project_id"] == project)
            and (not dataset or doc.get("dataset_id") == dataset)
            and (
                reader == EVERYONE or self.may_read(int(reader.removeprefix("u:")), c, with_roles=not project)
            )
        }


def every_view() -> list[str]:
    """Every view a model run can touch."""
    readers = [EVERYONE, *(user_reader(u) for u in USERS)]
    scopes = [("", ""), ("p1", ""), ("p2", ""), ("p1", "d1"), ("p1", "d2")]
    return [view_key(reader, p, d) for reader in readers for p, d in scopes]


class Writers:
    """Random changes, each applied the way catalog applies it, through one of two replicas."""

    def __init__(self, db: AsyncDatabase[Document], rng: random.Random) -> None:
        self.db = db
        self.rng = rng
        self.replicas = [replica(db, Interleaving(db, rng)), replica(db, Interleaving(db, rng))]
        self.model = Model()
        self.versions: dict[tuple[object, ...], int] = {}
        self.created = 0
        self.settled: set[str] = set()  # collections whose create has been applied (a round ago or more)
        self.moved: set[str] = set()  # collections moved in this round

    def _fact(self, key: tuple[object, ...], on: bool) -> VisibilityFact:
        version = self.versions[key] = self.versions.get(key, 0) + 1
        if self.model.facts.get(key, (0, False))[0] < version:
            self.model.facts[key] = (version, on)
        kind = key[0]
        if kind == "share":
            _, c, who, n = key
            ids = {"user_id": n} if who == "u" else {"group_id": n}
            return VisibilityFact(kind="share", on=on, version=version, collection_id=str(c), **ids)
        if kind == "member":
            return VisibilityFact(kind="member", on=on, version=version, group_id=key[1], user_id=key[2])
        return VisibilityFact(kind="role", on=on, version=version, project_id=str(key[1]), user_id=key[2])

    def change(self) -> Awaitable[object]:
        """One random change, planned now (model updated), applied when awaited."""
        rng = self.rng
        live = [c for c, doc in self.model.collections.items() if not doc["deleted"] and c in self.settled]
        what = rng.choice(["create", "delete", "move", "share", "share", "member", "member", "role", "pair"])
        views = rng.choice(self.replicas)
        if what == "create" and len(live) >= LIVE_MAX:
            what = "pair"  # few collections, so that changes meet in the same views often
        if what == "create" or not live:
            self.created += 1
            project, dataset = rng.choice(PLACES)
            doc: dict[str, object] = {
                "_id": f"c{self.created}",
                "project_id": project,
                "owner_id": rng.choice(USERS),
                "name": f"c{self.created}",
                "deleted": False,
            }
            if dataset:
                doc["dataset_id"] = dataset
            self.model.collections[str(doc["_id"])] = dict(doc)
            return self._create(views, doc)
        if what in ("delete", "move"):
            c = rng.choice(live)
            if what == "delete":
                self.model.collections[c]["deleted"] = True
                return self._update(views, c, {"deleted": True})
            if self.model.collections[c]["project_id"] != "p1" or c in self.moved:
                return self._noop()  # two moves at once: which lands last is not the model's to say
            self.moved.add(c)
            dataset = rng.choice(["d1", "d2"])
            self.model.collections[c]["dataset_id"] = dataset
            return self._update(views, c, {"dataset_id": dataset})
        if what == "pair":  # two facts that meet in one reader's view, changed at once (the audit's leak)
            group = rng.choice(GROUPS)
            member = self._fact(("member", group, rng.choice(USERS)), rng.random() < 0.5)
            share = self._fact(("share", rng.choice(live), "g", group), rng.random() < 0.5)
            return asyncio.gather(
                self.replicas[0].apply_facts([member]), self.replicas[1].apply_facts([share])
            )
        if what == "share":
            who = rng.choice(["u", "g"])
            key: tuple[object, ...] = (
                "share",
                rng.choice(live),
                who,
                rng.choice(USERS if who == "u" else GROUPS),
            )
        elif what == "member":
            key = ("member", rng.choice(GROUPS), rng.choice(USERS))
        else:
            key = ("role", rng.choice(["p1", "p2"]), rng.choice(USERS))
        return views.apply_facts([self._fact(key, rng.random() < 0.5)])

    async def _create(self, views: ReaderViews, doc: dict[str, object]) -> None:
        await self.db["collections"].insert_one(dict(doc))
        await views.collection_changed(str(doc["_id"]), dict(doc))

    async def _update(self, views: ReaderViews, c: str, fields: dict[str, object]) -> None:
        await self.db["collections"].update_one({"_id": c}, {"$set": fields})
        await views.collection_changed(c)

    async def _noop(self) -> None:
        return None


async def run_model(db: AsyncDatabase[Document], seed: int, rounds: int = 6, width: int = 8) -> list[str]:
    """Random rounds of `width` changes at once, every view compared with the model after each round (at
    rest: every change answered); the views that differed (empty: none)."""
    await db["collections"].delete_many({})
    await db["views"].delete_many({})
    rng = random.Random(seed)
    writers = Writers(db, rng)
    wrong = []
    for round_number in range(rounds):
        await asyncio.gather(*(writers.change() for _ in range(width)))
        writers.settled = set(writers.model.collections)
        writers.moved.clear()
        for view in every_view():
            held = await writers.replicas[0].all_ids(view)
            expected = writers.model.expected(view)
            if len(held) != len(set(held)) or set(held) != expected:
                found = f"held {sorted(held)}, rules {sorted(expected)}"
                wrong.append(f"seed {seed} round {round_number} {view!r}: {found}")
    # The verifier agrees with the model: at rest, it finds nothing to repair.
    views = writers.replicas[0]
    verifier = ViewVerifier(views, views.repo, views.views, confirm_seconds=0)
    report = await verifier.check_after("", 1000, repair=False)
    wrong += [f"seed {seed}: the verifier saw drift in {drift.view!r}" for drift in report.drifted]
    return wrong


@pytest.fixture
async def db(mongo_db: AsyncDatabase[Document]) -> AsyncDatabase[Document]:
    await CatalogRepository(mongo_db).ensure_indexes()
    await ViewRepository(mongo_db).ensure_indexes()
    return mongo_db


async def test_views_hold_exactly_what_the_rules_allow_after_random_concurrent_changes(
    db: AsyncDatabase[Document],
) -> None:
    """Random concurrent changes of every kind through two replicas: every view equals the model."""
    wrong = []
    for seed in range(RUNS):
        wrong += await run_model(db, seed)
    assert wrong == []


@pytest.mark.parametrize("trial", range(4))
async def test_a_member_leaving_as_the_group_is_unshared_loses_the_collection(
    db: AsyncDatabase[Document], trial: int
) -> None:
    """The audit's leak: U leaves G at the moment G is unshared from C (each through its own replica).
    Each fan-out, reading only facts that are on, saw the other already off and left U's views alone."""
    await db["collections"].delete_many({})
    await db["views"].delete_many({})
    first, second = replica(db), replica(db)
    doc = {"_id": "c", "project_id": "p1", "owner_id": 1, "name": "c", "deleted": False}
    await db["collections"].insert_one(dict(doc))
    await first.collection_changed("c", doc)
    member = VisibilityFact(kind="member", on=True, version=1, group_id=1, user_id=2)
    share = VisibilityFact(kind="share", on=True, version=1, collection_id="c", group_id=1)
    await first.apply_facts([member])
    await first.apply_facts([share])
    assert await first.all_ids(view_key(user_reader(2))) == ["c"]
    leave = member.model_copy(update={"on": False, "version": 2})
    unshare = share.model_copy(update={"on": False, "version": 2})
    barrier = asyncio.Barrier(2)
    first, second = replica(db, Lockstep(db, barrier)), replica(db, Lockstep(db, barrier))
    pair = [first.apply_facts([leave]), second.apply_facts([unshare])]
    await asyncio.gather(*(pair if trial % 2 else pair[::-1]))
    for view in (view_key(user_reader(2)), view_key(user_reader(2), "p1")):
        assert await first.all_ids(view) == [], view

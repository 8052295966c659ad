"""Use cases of the lists' read model: which collections each reader sees, kept as dense views.

A view is a sequence of collection ids at positions 1..n (catalog_service/view_repository.py), so a page
at any depth is one `_id $in` of the head and the positions it covers. Views (key: reader, project,
dataset; the last two may be empty):
- `*` / `*@P` / `*@P/D`: every live collection (of project P, of dataset D): admins, and holders of a role
  on P in dialect A's list of P;
- `u:U` / `u:U@P` / `u:U@P/D`: what user U sees: owns, shared with it or a group of its, and (only in
  `u:U`, the lists of dialects B and C) every collection of a project it holds a role on.

A view is never edited by a rule of thumb: `touch(view, ids)` asks, for each id, whether it belongs in the
view now (from the collection documents and the access facts access_service tells catalog), and commits
the difference as the view's next version (compare-and-set on the head, even when nothing changes, so
an attempt that read older facts cannot commit after one that read newer ones). A removal moves the last
entry into the freed place, so positions stay dense. Concurrent touches of one view in this process are
combined into one change. docs/scale.md ("Lists") has the why and the costs.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from catalog_service.repository import CatalogRepository
from catalog_service.view_repository import (
    Head,
    ViewChange,
    ViewRepository,
    entry_id,
    head_id,
    index_id,
    member_fact_id,
    role_id,
    share_id,
)
from shared.catalog_directory import VisibilityFact
from shared.mongo import Document

log = logging.getLogger(__name__)

PART = "\x1e"  # between a view's reader, project and dataset (no id holds a control character)
EVERYONE = "*"
CHUNK = 500  # collections per committed change (a head holds at most this many writes)
MIGRATION_MARK = "reader-views"
SCOPE_FIELDS = {"owner_id": 1, "project_id": 1, "dataset_id": 1, "deleted": 1}


def view_key(reader: str, project_id: str = "", dataset_id: str = "") -> str:
    """The key of a view: reader (`*` or `u:<user>`), project and dataset (empty: any)."""
    return f"{reader}{PART}{project_id}{PART}{dataset_id}"


def user_reader(user_id: int) -> str:
    """A user's reader name."""
    return f"u:{user_id}"


def reader_user(view: str) -> int:
    """The user of a view of one user (`u:<user>`)."""
    return int(view.split(PART, maxsplit=1)[0].removeprefix("u:"))


def views_of(reader: str, doc: Document) -> list[str]:
    """The views of one reader a collection can belong to."""
    keys = [view_key(reader), view_key(reader, doc["project_id"])]
    if doc.get("dataset_id"):
        keys.append(view_key(reader, doc["project_id"], doc["dataset_id"]))
    return keys


@dataclass(frozen=True)
class Page:
    """Collection ids at consecutive positions of a view, and the view's size."""

    ids: list[str]
    size: int


class _Batch:
    """Collection ids waiting to be brought up to date in one view, and the callers waiting for it."""

    def __init__(self) -> None:
        self.ids: dict[str, None] = {}
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class ReaderViews:
    """Keeps every view up to date, and reads pages of them."""

    def __init__(self, views: ViewRepository, repository: CatalogRepository) -> None:
        self.views = views
        self.repo = repository
        self._waiting: dict[str, _Batch] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # --- reading ------------------------------------------------------------------------------------------
    @staticmethod
    def _entries(head: Head, docs: dict[str, Document], positions: Iterable[int]) -> list[str]:
        """Collection ids at positions, with the committed change on top of what was written."""
        ids = []
        for position in positions:
            if position > head.visible_size:
                break
            if head.pending is not None and position in head.pending.entries:
                ids.append(head.pending.entries[position])
                continue
            doc = docs.get(entry_id(head.view, position))
            if doc is not None:
                ids.append(doc["c"])
        return ids

    async def page(self, view: str, after: int, size: int) -> Page:
        """Up to `size` ids after position `after` (one command)."""
        positions = range(after + 1, after + size + 1)
        docs = await self.views.by_ids([head_id(view), *(entry_id(view, p) for p in positions)])
        head = Head.of(view, docs.get(head_id(view)))
        return Page(self._entries(head, docs, positions), head.visible_size)

    async def project_page(
        self, user_id: int, is_admin: bool, project_id: str, dataset_id: str, *, after: int, size: int
    ) -> Page:
        """Dialect A: a page of what the user sees in a project (all of it with a role on the project).

        One command reads the user's own view, the project's and the user's role fact; the role picks one.
        """
        everyone = view_key(EVERYONE, project_id, dataset_id)
        if is_admin:
            return await self.page(everyone, after, size)
        own = view_key(user_reader(user_id), project_id, dataset_id)
        positions = range(after + 1, after + size + 1)
        wanted = [head_id(own), head_id(everyone), role_id(project_id, user_id)]
        wanted += [entry_id(view, p) for view in (own, everyone) for p in positions]
        docs = await self.views.by_ids(wanted)
        role = docs.get(role_id(project_id, user_id))
        view = everyone if role is not None and role.get("on") else own
        head = Head.of(view, docs.get(head_id(view)))
        return Page(self._entries(head, docs, positions), head.visible_size)

    async def all_ids(self, view: str) -> list[str]:
        """Every id in a view, in position order (one command: dialect B lists them all)."""
        docs = await self.views.view_documents(view)
        head = Head.of(view, next((doc for doc in docs if doc["k"] == "H"), None))
        by_position = {int(doc["pos"]): doc for doc in docs if doc["k"] == "E"}
        found = {entry_id(view, position): doc for position, doc in by_position.items()}
        return self._entries(head, found, range(1, head.visible_size + 1))

    # --- keeping views up to date -------------------------------------------------------------------------
    async def touch(self, view: str, collection_ids: Iterable[str]) -> None:
        """Bring one view up to date for these collections (returns once committed and written out)."""
        await self.touch_all({view: collection_ids})

    async def touch_all(self, changes: Mapping[str, Iterable[str]]) -> None:
        """Bring several views up to date at once: each step is one command for all of them.

        Callers touching a view while another holds it join its next batch, so concurrent requests of this
        process are combined into one change per view. Views are locked in key order (no two callers can
        wait on each other), and a caller runs only the batches still waiting when it holds their locks;
        the others were run by whoever took them, and it waits for those."""
        mine: dict[str, _Batch] = {}
        for view, ids in changes.items():
            batch = self._waiting.get(view)
            if batch is None:
                batch = self._waiting[view] = _Batch()
            batch.ids.update(dict.fromkeys(ids))
            mine[view] = batch
        held: list[asyncio.Lock] = []
        try:
            for view in sorted(mine):
                lock = self._locks.setdefault(view, asyncio.Lock())
                await lock.acquire()
                held.append(lock)
            taken = {view: batch for view, batch in mine.items() if self._waiting.get(view) is batch}
            for view in taken:
                del self._waiting[view]
            if taken:
                await self._run(taken)
        finally:
            for lock in held:
                lock.release()
            for view in mine:
                unused = self._locks.get(view)
                if unused is not None and not unused.locked() and view not in self._waiting:
                    del self._locks[view]
        outcomes = await asyncio.gather(*(batch.done for batch in mine.values()), return_exceptions=True)
        if failed := next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None):
            raise failed

    async def _run(self, taken: dict[str, _Batch]) -> None:
        """Bring the taken batches' views up to date, `CHUNK` collections per view and change at a time;
        every caller waiting on one of them learns how it went."""
        try:
            work = {view: list(batch.ids) for view, batch in taken.items()}
            for start in range(0, max(len(ids) for ids in work.values()), CHUNK):
                chunk = {view: ids[start : start + CHUNK] for view, ids in work.items() if len(ids) > start}
                await self._bring_up_to_date(chunk)
        except asyncio.CancelledError:
            for batch in taken.values():
                batch.done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every caller waiting on these batches gets it
            for batch in taken.values():
                batch.done.set_exception(exc)
        else:
            for batch in taken.values():
                batch.done.set_result(None)

    async def _bring_up_to_date(self, work: dict[str, list[str]]) -> None:
        """Plan, commit and write out one change per view; views whose head moved meanwhile go again."""
        while work:
            wanted = [head_id(view) for view in work]
            wanted += [index_id(view, c) for view, ids in work.items() for c in ids]
            docs = await self.views.by_ids(wanted)
            heads = {view: Head.of(view, docs.get(head_id(view))) for view in work}
            crashed = {view: head.pending for view, head in heads.items() if head.pending is not None}
            if crashed:  # someone committed and has not written out (or died): finish it, then read again
                await self._write_out(crashed)
                continue
            places = {
                view: {c: int(doc["pos"]) for c in ids if (doc := docs.get(index_id(view, c))) and doc["pos"]}
                for view, ids in work.items()
            }
            belongs = await self._belongs(work)
            planned = await self._plan(heads, work, belongs, places)
            committed = await self.views.commit(heads, planned)
            await self._write_out({view: planned[view] for view in committed})
            work = {view: ids for view, ids in work.items() if view not in committed}
            if work:
                await asyncio.sleep(random.uniform(0, 0.005))  # noqa: S311 - jitter: another writer won

    async def _write_out(self, changes: dict[str, ViewChange]) -> None:
        await self.views.write_out(changes)
        await self.views.settle({view: change.version for view, change in changes.items()})

    async def _plan(
        self,
        heads: dict[str, Head],
        work: dict[str, list[str]],
        belongs: dict[str, set[str]],
        places: dict[str, dict[str, int]],
    ) -> dict[str, ViewChange]:
        """Each view's next version: removals fill their places with the last entries, additions go at
        the end (one read of the entries that move, for every view)."""
        leaving = {view: self._leaving(ids, places[view], belongs[view]) for view, ids in work.items()}
        tails = {
            view: range(heads[view].size - len(gone) + 1, heads[view].size + 1)
            for view, gone in leaving.items()
            if gone
        }
        freed = {view: {places[view][c] for c in leaving[view]} for view in tails}
        tail_docs = await self.views.by_ids(
            entry_id(view, p) for view, tail in tails.items() for p in tail if p not in freed[view]
        )
        changes = {}
        for view, ids in work.items():
            head = heads[view]
            change = ViewChange(version=head.version + 1, size=head.size)
            if view in tails:
                kept = head.size - len(leaving[view])
                movers = [tail_docs[entry_id(view, p)]["c"] for p in tails[view] if p not in freed[view]]
                holes = sorted(p for p in freed[view] if p <= kept)
                for position, collection_id in zip(holes, movers, strict=True):
                    change.entries[position] = collection_id
                    change.places[collection_id] = position
                for collection_id in leaving[view]:
                    change.places[collection_id] = 0
                change.size = kept
            for collection_id in ids:
                if collection_id in belongs[view] and collection_id not in places[view]:
                    change.size += 1
                    change.entries[change.size] = collection_id
                    change.places[collection_id] = change.size
            changes[view] = change
        return changes

    async def belonging(self, work: Mapping[str, list[str]]) -> dict[str, set[str]]:
        """Which of the collections belong in each view now, by the rules the changes use (the verifier)."""
        return await self._belongs(dict(work))

    @staticmethod
    def _leaving(ids: list[str], places: dict[str, int], belongs: set[str]) -> list[str]:
        """The ids that stand in the view and no longer belong there."""
        return [c for c in ids if c in places and c not in belongs]

    async def _belongs(self, work: dict[str, list[str]]) -> dict[str, set[str]]:
        """Which of the collections belong in each view now: one read of the collections, one of each
        reader's facts (only for readers who do not own them all), one of the shares that could apply."""
        every = list(dict.fromkeys(c for ids in work.values() for c in ids))
        docs = {doc["_id"]: doc for doc in await self.repo.collections_by_ids(every, SCOPE_FIELDS)}
        in_scope: dict[str, list[Document]] = {}
        for view, ids in work.items():
            _, project_id, dataset_id = view.split(PART)
            in_scope[view] = [
                doc
                for c in ids
                if (doc := docs.get(c)) is not None
                and not doc.get("deleted")
                and (not project_id or doc["project_id"] == project_id)
                and (not dataset_id or doc.get("dataset_id") == dataset_id)
            ]
        belongs: dict[str, set[str]] = {}
        rest: dict[str, list[Document]] = {}
        for view, found in in_scope.items():
            if view.split(PART)[0] == EVERYONE:
                belongs[view] = {doc["_id"] for doc in found}
                continue
            user_id = reader_user(view)
            belongs[view] = {doc["_id"] for doc in found if doc["owner_id"] == user_id}
            if others := [doc for doc in found if doc["_id"] not in belongs[view]]:
                rest[view] = others
        if not rest:
            return belongs
        users = sorted({reader_user(view) for view in rest})
        # One equality per reader, at once: `u $in` is not served by the index on the stand-in (it scans).
        found_facts = await asyncio.gather(*(self.views.facts({"u": user_id}) for user_id in users))
        held = dict(zip(users, found_facts, strict=True))
        whos = {
            user_id: [user_reader(user_id), *(f"g:{fact['g']}" for fact in facts if fact["k"] == "M")]
            for user_id, facts in held.items()
        }
        wanted = []
        for view, others in rest.items():
            user_id = reader_user(view)
            wanted += [share_id(doc["_id"], who) for doc in others for who in whos[user_id]]
        shares = await self.views.by_ids(wanted)
        for view, others in rest.items():
            user_id = reader_user(view)
            roles = {fact["project"] for fact in held[user_id] if fact["k"] == "R"}
            projects = roles if not view.split(PART)[1] else set()
            for doc in others:
                shared = any(
                    (fact := shares.get(share_id(doc["_id"], who))) is not None and fact.get("on")
                    for who in whos[user_id]
                )
                if shared or doc["project_id"] in projects:
                    belongs[view].add(doc["_id"])
        return belongs

    # --- what changes views -------------------------------------------------------------------------------
    async def collection_changed(self, collection_id: str, created: Document | None = None) -> None:
        """A collection was created (`created`: its document), deleted or moved to another dataset: every
        view it is or may be in. A new one is in no view yet and shared with nobody.

        The views it may be in are worked out from the document even when it is deleted: a change a crash
        left committed but not written out has not recorded its place in a view yet, so `views_holding`
        alone could miss one."""
        changes: dict[str, set[str]] = defaultdict(set)
        readers: set[int] = set()
        doc = created
        if doc is None:
            docs = await self.repo.collections_by_ids([collection_id], SCOPE_FIELDS)
            doc = docs[0] if docs else None
            for view in await self.views.views_holding(collection_id):
                changes[view].add(collection_id)
            if doc is not None:
                readers = await self._share_readers(collection_id)
        if doc is not None:
            readers.add(doc["owner_id"])
            role_facts = await self.views.facts_in_flux({"project": doc["project_id"], "k": "R"})
            holders = {fact["u"] for fact in role_facts}
            for view in views_of(EVERYONE, doc):
                changes[view].add(collection_id)
            for user_id in readers:
                for view in views_of(user_reader(user_id), doc):
                    changes[view].add(collection_id)
            for user_id in holders - readers:
                changes[view_key(user_reader(user_id))].add(collection_id)
        await self.touch_all(changes)

    async def _share_readers(self, collection_id: str) -> set[int]:
        """Users a collection is shared with, directly or through a group, or were a moment ago (facts in
        flux: see `_fan_out`)."""
        readers: set[int] = set()
        for fact in await self.views.facts_in_flux({"c": collection_id, "k": "S"}):
            who = fact["who"]
            if who.startswith("u:"):
                readers.add(int(who[2:]))
            else:
                members = await self.views.facts_in_flux({"g": int(who[2:]), "k": "M"})
                readers |= {m["u"] for m in members}
        return readers

    async def apply_facts(self, facts: list[VisibilityFact]) -> int:
        """Record what access_service says, and bring the views each new fact changes up to date."""
        applied = 0
        for fact in facts:
            fact_id, fields = _fact_document(fact)
            if not await self.views.record_fact(fact_id, fields, fact.on, fact.version):
                continue  # the same or a newer version was applied already
            await self._fan_out({**fields, "_id": fact_id})
            await self.views.fact_done(fact_id, fact.version)
            applied += 1
        return applied

    async def _fan_out(self, fact: Document) -> None:
        """The views a fact can change, touched for the collections it concerns.

        A share with a group reaches its members, and a membership the group's collections, through the
        other kind of fact: those that are on, and those in flux (turned on or off, their own fan-out not
        finished). Only those that are on would not do: when a member leaves a group as the group is
        unshared, each fan-out may read the other fact already off and leave the member's views alone,
        and the collection stays listed for good (issue 26). With facts in flux: of two facts that change
        at once, the one recorded second reads the other's new value. On or due, it is included, and this
        touch runs after both were recorded; off and settled, the other's fan-out has run with that value,
        and the reader-collection pair needs both facts on (docs/scale.md, "Lists: the invariant")."""
        kind = fact["k"]
        if kind == "S":
            who = fact["who"]
            if who.startswith("u:"):
                readers = [int(who[2:])]
            else:
                readers = [m["u"] for m in await self.views.facts_in_flux({"g": int(who[2:]), "k": "M"})]
            await self._touch_readers(readers, [fact["c"]])
        elif kind == "M":
            shared = await self.views.facts_in_flux({"who": f"g:{fact['g']}", "k": "S"})
            await self._touch_readers([fact["u"]], [share["c"] for share in shared])
        else:  # a role reaches every collection of the project, in the reader's B and C lists
            # Read from the collections, not from the project's view: a create inserts its collection
            # before it reads the project's role holders, and a role is recorded before this read, so
            # one of the two always sees the other (the view may not hold a new collection yet).
            ids = await self.repo.live_ids_in_project(fact["project"])
            await self.touch(view_key(user_reader(fact["u"])), ids)

    async def _touch_readers(self, readers: list[int], collection_ids: list[str]) -> None:
        docs = await self.repo.collections_by_ids(collection_ids, SCOPE_FIELDS) if collection_ids else []
        changes: dict[str, set[str]] = defaultdict(set)
        for user_id in readers:
            for doc in docs:
                for view in views_of(user_reader(user_id), doc):
                    changes[view].add(doc["_id"])
        await self.touch_all(changes)

    # --- recovery and migration ---------------------------------------------------------------------------
    async def recover(self, limit: int = 100) -> int:
        """Finish what a crash interrupted: changes committed and not written out, collections and facts
        marked due. The number finished. (Safe beside live writers: every step is idempotent.)"""
        finished = 0
        if unsettled := await self.views.unsettled(limit):
            await self._write_out({head["v"]: ViewChange.from_document(head["op"]) for head in unsettled})
            finished += len(unsettled)
        for doc in await self.repo.collections_due(limit):
            await self.collection_changed(doc["_id"])
            await self.repo.collection_views_done(doc["_id"], doc["views_due"])
            finished += 1
        for fact in await self.views.due_facts(limit):
            await self._fan_out(fact)
            await self.views.fact_done(fact["_id"], fact["ver"])
            finished += 1
        return finished

    async def migrate(self) -> int:
        """Build the views of collections written before views existed (idempotent, resumable): every
        collection joins its owner's views and everyone's; shares and roles come from access_service."""
        if await self.repo.layout_marked(MIGRATION_MARK):
            return 0
        done = 0
        async for batch in self.repo.live_collections(SCOPE_FIELDS, CHUNK):
            changes: dict[str, set[str]] = defaultdict(set)
            for doc in batch:
                for view in views_of(EVERYONE, doc) + views_of(user_reader(doc["owner_id"]), doc):
                    changes[view].add(doc["_id"])
            await self.touch_all(changes)
            done += len(batch)
            log.info("reader views: %d collections placed", done)
        await self.repo.mark_layout(MIGRATION_MARK)
        return done


def _fact_document(fact: VisibilityFact) -> tuple[str, Document]:
    """A fact's `_id` and the fields it is found by (the model guarantees the ids each kind names)."""
    user_id, group_id = fact.user_id or 0, fact.group_id or 0
    if fact.kind == "share":
        who = user_reader(user_id) if fact.user_id is not None else f"g:{group_id}"
        return share_id(str(fact.collection_id), who), {"k": "S", "c": fact.collection_id, "who": who}
    if fact.kind == "member":
        return member_fact_id(group_id, user_id), {"k": "M", "g": group_id, "u": user_id}
    project_id = str(fact.project_id)
    return role_id(project_id, user_id), {"k": "R", "project": project_id, "u": user_id}

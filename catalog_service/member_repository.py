"""All MongoDB access for collection members: a document per member, never an array that grows.

`members` documents (docs/scale.md has the why):
- `_id` "<collection>\\x1f<kind>\\x1f<item>" (ids may not hold control characters, so it is unambiguous);
- `c`, `k`, `i`: collection id, kind (`node`, `asset`, `model`) and item id; `q`: position (insertion order);
- `s`: 1 while a member, 0 once removed (the document stays, so a re-add keeps working by `_id`);
- `op`, `o`: the change that last flipped `s`, and that change's sequence number in its collection.

A change of membership is three single-document-atomic commands, each addressed by `_id`:
1. `begin`: the collection document records the change as pending (`member_ops.<op>`), hands it the next
   change number and positions, and returns the other pending changes;
2. `apply`: one unordered bulk write flips each member's `s` only if it is not held by a pending change
   and was last flipped by an older one. Adds upsert: per statement, a duplicate-key error (not changed),
   an upsert or a match (changed) say exactly which ids this change flipped. Removes never upsert (that
   would leave documents for ids that never were members): all or none flipped is told by the count, and
   only a mixed answer is read back by the change's id (one more command);
3. `finish`: the collection document takes the counts and the event (ids that changed) and drops the
   pending mark, in one update filtered on that mark, so it happens once.
A crash between 1 and 3 leaves the mark: members it flipped keep `op` = the change (no other change may
flip them while it is pending), so `recover` finds exactly them, and finishes it with the same event id.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.events import EventEnvelope
from shared.mongo import Document, duplicates_of
from shared.outbox import with_events, written

MemberKind = Literal["node", "asset", "model"]
SEPARATOR = "\x1f"
COUNT_FIELD: dict[MemberKind, str] = {"node": "node_count", "asset": "asset_count", "model": "model_count"}
PENDING = "member_ops"
PENDING_COUNT = "member_ops_count"
POSITION = "member_position"
CHANGE_NUMBER = "member_change_number"
LAYOUT_MARK = "member-documents"
# When an asset change that may move the thumbnail finished (ms): the thumbnail step after it clears it, and
# recovery checks the thumbnail of a collection whose mark is old (that step never ran: a crash).
THUMBNAIL_DUE = "thumbnail_due"
# Member documents stream in batches of this many (a page of a getMore).
BATCH = 2_000


def member_id(collection_id: str, kind: MemberKind, item_id: str) -> str:
    """The `_id` of one member document."""
    return f"{collection_id}{SEPARATOR}{kind}{SEPARATOR}{item_id}"


@dataclass(frozen=True)
class PendingChange:
    """A change of membership between `begin` and `finish`."""

    op_id: str
    collection_id: str
    kind: MemberKind
    add: bool
    number: int
    first_position: int
    # Other changes pending when this one began: their members are not this change's to flip.
    held: tuple[str, ...]
    collection: Document
    began_ms: int = 0  # when `begin` ran (wall clock): the change must be applied well before it goes stale


class MemberRepository:
    """Members, and the pending-change marks they need on the collection document."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.members = db["members"]
        self.collections = db["collections"]
        # One document saying the array layout is gone, so a start does not look for arrays again.
        self.layout = db["layout"]

    async def ensure_indexes(self) -> None:
        """The listing index (collection, kind, state, position), the recovery index, pending marks."""
        await self.members.create_index(
            [("c", ASCENDING), ("k", ASCENDING), ("s", ASCENDING), ("q", ASCENDING)]
        )
        await self.members.create_index("op")
        await self.collections.create_index(PENDING_COUNT)
        await self.collections.create_index(THUMBNAIL_DUE)

    # --- changing -----------------------------------------------------------------------------------------
    async def begin(
        self,
        selector: Document,
        kind: MemberKind,
        *,
        add: bool,
        count: int,
        actor: int,
        now_ms: int,
    ) -> PendingChange | None:
        """Mark a change pending on the live collection `selector` names; None when there is none.

        The answer holds only what a change needs (an inclusion projection: MongoDB refuses one that mixes
        inclusion and exclusion, which the stand-in accepts)."""
        op_id = uuid.uuid4().hex
        mark = {"k": kind, "a": int(add), "t": now_ms, "u": actor}
        before = await self.collections.find_one_and_update(
            {**selector, "deleted": False},
            {
                "$set": {f"{PENDING}.{op_id}": mark},
                "$inc": {PENDING_COUNT: 1, CHANGE_NUMBER: 1, POSITION: count if add else 0},
            },
            projection={"project_id": 1, "thumbnail": 1, PENDING: 1, CHANGE_NUMBER: 1, POSITION: 1},
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            return None
        return PendingChange(
            op_id=op_id,
            collection_id=before["_id"],
            kind=kind,
            add=add,
            number=int(before.get(CHANGE_NUMBER, 0)) + 1,
            first_position=int(before.get(POSITION, 0)),
            held=tuple(before.get(PENDING) or {}),
            collection=before,
            began_ms=now_ms,
        )

    def begin_with_new_collection(
        self, doc: Document, kind: MemberKind, count: int, actor: int, now_ms: int
    ) -> PendingChange:
        """The pending change a collection is inserted with, to add its first members (fields for `doc`)."""
        op_id = uuid.uuid4().hex
        # "n": the first members of a new collection, which its created event already announces.
        doc[PENDING] = {op_id: {"k": kind, "a": 1, "t": now_ms, "u": actor, "n": 1}}
        doc[PENDING_COUNT] = 1
        doc[CHANGE_NUMBER] = 1
        doc[POSITION] = count
        return PendingChange(op_id, doc["_id"], kind, True, 1, 0, (), doc, began_ms=now_ms)

    async def apply(self, change: PendingChange, item_ids: Sequence[str]) -> list[str]:
        """Flip the members; return the ids this change flipped (in the order given)."""
        if not item_ids:
            return []
        return await (self._add if change.add else self._remove)(change, item_ids)

    def _free(self, change: PendingChange) -> Document:
        """A member this change may flip: last flipped by an older change, and held by no pending one."""
        free: Document = {"o": {"$lt": change.number}}
        if change.held:
            free["op"] = {"$nin": list(change.held)}
        return free

    async def _add(self, change: PendingChange, item_ids: Sequence[str]) -> list[str]:
        free = self._free(change)
        statements = [
            UpdateOne(
                {"_id": member_id(change.collection_id, change.kind, item_id), "s": 0, **free},
                {
                    "$set": {
                        "s": 1,
                        "op": change.op_id,
                        "o": change.number,
                        "q": change.first_position + n,
                        "c": change.collection_id,
                        "k": change.kind,
                        "i": item_id,
                    }
                },
                upsert=True,
            )
            for n, item_id in enumerate(item_ids)
        ]
        try:
            await self.members.bulk_write(statements, ordered=False)
        except BulkWriteError as exc:
            errors = duplicates_of(exc)
            # Present already (or held by another change): the upsert met the existing `_id`.
            refused = {int(error["index"]) for error in errors}
            return [item_id for n, item_id in enumerate(item_ids) if n not in refused]
        return list(item_ids)

    async def _remove(self, change: PendingChange, item_ids: Sequence[str]) -> list[str]:
        free = self._free(change)
        keys = [member_id(change.collection_id, change.kind, item_id) for item_id in item_ids]
        result = await self.members.bulk_write(
            [
                UpdateOne(
                    {"_id": key, "s": 1, **free}, {"$set": {"s": 0, "op": change.op_id, "o": change.number}}
                )
                for key in keys
            ],
            ordered=False,
        )
        if result.modified_count in (0, len(item_ids)):
            return list(item_ids) if result.modified_count else []
        # Some were members and some not: the ones this change holds now are the ones it removed.
        cursor = self.members.find({"_id": {"$in": keys}, "op": change.op_id}, {"i": 1})
        flipped = {doc["i"] for doc in await cursor.to_list()}
        return [item_id for item_id in item_ids if item_id in flipped]

    async def finish(
        self,
        change: PendingChange,
        changed: int,
        update: Document,
        events: Sequence[EventEnvelope],
        projection: dict[str, int],
    ) -> Document | None:
        """Take the counts and events and drop the pending mark, once; the collection after, or None when
        the change was finished already (by recovery)."""
        delta = changed if change.add else -changed
        merged: dict[str, Any] = {op: dict(fields) for op, fields in update.items()}
        merged.setdefault("$inc", {}).update(
            {COUNT_FIELD[change.kind]: delta, PENDING_COUNT: -1, "version": 1}
        )
        merged.setdefault("$unset", {})[f"{PENDING}.{change.op_id}"] = ""
        doc = await self.collections.find_one_and_update(
            {"_id": change.collection_id, f"{PENDING}.{change.op_id}": {"$exists": True}},
            with_events(merged, *events) if events else merged,
            projection=projection,
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            written(*events)
        return doc

    async def thumbnail_checked(self, collection_id: str, due: int) -> None:
        """The thumbnail step of the change that marked `due` ran (a newer mark stays)."""
        await self.collections.update_one(
            {"_id": collection_id, THUMBNAIL_DUE: due}, {"$unset": {THUMBNAIL_DUE: ""}}
        )

    async def thumbnails_due(self, before_ms: int, limit: int = 100) -> list[Document]:
        """Collections whose thumbnail step may not have run (marked before `before_ms`)."""
        cursor = self.collections.find(
            {THUMBNAIL_DUE: {"$lt": before_ms}},
            {"thumbnail": 1, "project_id": 1, THUMBNAIL_DUE: 1},
            limit=limit,
        )
        return await cursor.to_list()

    # --- recovery -----------------------------------------------------------------------------------------
    async def collections_with_pending_changes(self) -> AsyncGenerator[Document, None]:
        """Every collection holding pending marks (with the marks and what an event needs), streamed in
        batches: a stale change must not wait behind any number of fresh ones."""
        cursor = self.collections.find(
            {PENDING_COUNT: {"$gt": 0}}, {PENDING: 1, "project_id": 1, "thumbnail": 1}, batch_size=100
        )
        async for doc in cursor:
            yield doc

    async def flipped_by(self, change: PendingChange) -> tuple[list[str], int]:
        """The ids a change flipped, read back from the members it holds (in position order), and the
        change's number (which they carry; 0 when it flipped none)."""
        selector: Document = {"op": change.op_id, "s": int(change.add)}
        found = await self.members.find(selector, {"i": 1, "q": 1, "o": 1}).to_list()
        docs = sorted(found, key=lambda doc: doc.get("q", 0))
        return [doc["i"] for doc in docs], int(docs[0]["o"]) if docs else 0

    # --- reading ------------------------------------------------------------------------------------------
    async def is_member(self, collection_id: str, kind: MemberKind, item_id: str) -> bool:
        """Whether the item is a member now."""
        found = await self.members.find_one(
            {"_id": member_id(collection_id, kind, item_id), "s": 1}, {"_id": 1}
        )
        return found is not None

    async def page(
        self, collection_id: str, kind: MemberKind, after: int, limit: int
    ) -> list[tuple[int, str]]:
        """Up to `limit` members after position `after`, by position: (position, item id) each.

        One query the listing index serves whole: equalities on its first three fields, a range on the
        fourth, sorted by it. The equalities are spelled `$eq`, which means the same on MongoDB; the
        stand-in then compares the field plainly, and SQLite seeks the compound index and stops at
        `limit` (about 1 ms at any size). Spelled `{"c": id}`, the stand-in adds an array-containment
        test to each equality (it does so only for a field it sees an index of its own for), and that
        `OR` turns the same query into a scan of the collection's members (about 0.2 s at 100,000)."""
        cursor = self.members.find(
            {"c": {"$eq": collection_id}, "k": {"$eq": kind}, "s": {"$eq": 1}, "q": {"$gt": after}},
            {"_id": 0, "q": 1, "i": 1},
            sort=[("q", ASCENDING)],
            limit=limit,
        )
        return [(int(doc["q"]), str(doc["i"])) for doc in await cursor.to_list()]

    async def item_ids(self, collection_id: str, kind: MemberKind) -> AsyncGenerator[str, None]:
        """The item ids of one collection's members, by position (an equality on the members index; an
        `$in` of several collections would be a scan on nx-27017)."""
        cursor = self.members.find(
            {"c": collection_id, "k": kind, "s": 1},
            {"_id": 0, "i": 1},
            sort=[("c", ASCENDING), ("q", ASCENDING)],
            batch_size=BATCH,
        )
        async for doc in cursor:
            yield doc["i"]

    # --- the layout before this one ----------------------------------------------------------------------
    async def migrated(self) -> bool:
        """Whether every collection was moved to member documents already (by an earlier start)."""
        return await self.layout.find_one({"_id": LAYOUT_MARK}) is not None

    async def mark_migrated(self) -> None:
        """Record that no collection holds member arrays any more."""
        await self.layout.update_one({"_id": LAYOUT_MARK}, {"$set": {"done": 1}}, upsert=True)

    async def legacy_collections(self, limit: int) -> list[Document]:
        """Collections that still hold member arrays (written by the layout before member documents)."""
        found: dict[str, Document] = {}
        for field in ("nodes", "assets", "models"):
            cursor = self.collections.find({field: {"$exists": True}}, {"_id": 1}, limit=limit)
            found.update((doc["_id"], doc) for doc in await cursor.to_list())
        return list(found.values())

    async def migrate_legacy(self, collection_id: str) -> int:
        """Move one collection's member arrays into member documents (idempotent); members moved."""
        doc = await self.collections.find_one(
            {"_id": collection_id}, {"nodes": 1, "assets": 1, "models": 1, POSITION: 1}
        )
        if doc is None or not any(field in doc for field in ("nodes", "assets", "models")):
            return 0  # gone, or moved already: counts stay as the member changes since keep them
        moved = 0
        counts: Document = {}
        position = int(doc.get(POSITION, 0))
        layout: tuple[tuple[str, MemberKind], ...] = (
            ("nodes", "node"),
            ("assets", "asset"),
            ("models", "model"),
        )
        for field, kind in layout:
            ids = list(dict.fromkeys(doc.get(field) or []))
            statements = [
                UpdateOne(
                    {"_id": member_id(collection_id, kind, item_id)},
                    {
                        "$setOnInsert": {
                            "c": collection_id,
                            "k": kind,
                            "i": item_id,
                            "s": 1,
                            "q": position + n,
                            "op": "legacy",
                            "o": 0,
                        }
                    },
                    upsert=True,
                )
                for n, item_id in enumerate(ids)
            ]
            if statements:
                await self.members.bulk_write(statements, ordered=False)
            position += len(ids)
            moved += len(ids)
            counts[COUNT_FIELD[kind]] = len(ids)
        # The arrays go only after every member document exists: a crash before this reruns harmlessly.
        await self.collections.update_one(
            {"_id": collection_id},
            {"$unset": {"nodes": "", "assets": "", "models": ""}, "$set": {**counts, POSITION: position}},
        )
        return moved

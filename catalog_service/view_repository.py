"""All MongoDB access for the lists' read model: per-reader views and the access facts they come from.

One collection, `views`; every document has a kind `k` (docs/scale.md, "Lists"):
- `H` the head of a view: `_id` "H\\x1f<view>", `v` the view, `n` its size, `ver` bumped by every change,
  `op` a change committed but perhaps not written out yet (readers apply it on top of what they read),
  with `o` 1 while there is one;
- `E` an entry: `_id` "E\\x1f<view>\\x1f<position>", `v`, `c` the collection at that position (1..n),
  `w` the version that wrote it (a late writer of an older change never overwrites a newer one);
- `I` where a collection stands in a view: `_id` "I\\x1f<view>\\x1f<collection>", `iv`, `c`, `pos` (0:
  not in it), `w`;
- `S` a share (access fact): `_id` "S\\x1f<collection>\\x1f<who>", `c`, `who` ("u:<user>" or "g:<group>");
- `M` a group membership: `_id` "M\\x1f<group>\\x1f<user>", `g`, `u`;
- `R` a role on a project: `_id` "R\\x1f<project>\\x1f<user>", `project`, `u`.
Facts carry `on`, `ver` (access_service's entity version: an older fact never wins) and `due` while the
views it changes are not yet brought up to date.

Every read of a page is one `_id $in`; every write is addressed by `_id` (MONGO_SUBSET.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from shared.mongo import Document, duplicates_of

SEPARATOR = "\x1f"
VERIFY_CURSOR_ID = f"X{SEPARATOR}verify"  # where the verifier's walk over the views stands
BATCH = 5_000


def head_id(view: str) -> str:
    """The `_id` of a view's head."""
    return f"H{SEPARATOR}{view}"


def entry_id(view: str, position: int) -> str:
    """The `_id` of the entry at a position (1-based)."""
    return f"E{SEPARATOR}{view}{SEPARATOR}{position}"


def index_id(view: str, collection_id: str) -> str:
    """The `_id` of a collection's place in a view."""
    return f"I{SEPARATOR}{view}{SEPARATOR}{collection_id}"


def share_id(collection_id: str, who: str) -> str:
    """The `_id` of a share fact."""
    return f"S{SEPARATOR}{collection_id}{SEPARATOR}{who}"


def member_fact_id(group_id: int, user_id: int) -> str:
    """The `_id` of a group membership fact."""
    return f"M{SEPARATOR}{group_id}{SEPARATOR}{user_id}"


def role_id(project_id: str, user_id: int) -> str:
    """The `_id` of a project role fact."""
    return f"R{SEPARATOR}{project_id}{SEPARATOR}{user_id}"


@dataclass
class ViewChange:
    """A change of one view, as committed in its head: the writes that make it so, and the new size."""

    version: int
    size: int
    entries: dict[int, str] = field(default_factory=dict)  # position -> collection
    places: dict[str, int] = field(default_factory=dict)  # collection -> position (0: out)

    def as_document(self) -> Document:
        """Parallel arrays of scalars (the stand-in keeps those faithfully; ids never become keys)."""
        return {
            "ver": self.version,
            "n": self.size,
            "ep": list(self.entries),
            "ec": list(self.entries.values()),
            "ic": list(self.places),
            "ip": list(self.places.values()),
        }

    @classmethod
    def from_document(cls, doc: Document) -> ViewChange:
        """The change a head holds."""
        return cls(
            version=int(doc["ver"]),
            size=int(doc["n"]),
            entries=dict(zip((int(p) for p in doc["ep"]), doc["ec"], strict=True)),
            places=dict(zip(doc["ic"], (int(p) for p in doc["ip"]), strict=True)),
        )


@dataclass
class Head:
    """A view's head as read: its version, its size and the change not yet written out, if any."""

    view: str
    version: int = 0
    size: int = 0
    pending: ViewChange | None = None

    @classmethod
    def of(cls, view: str, doc: Document | None) -> Head:
        """The head read (or a fresh one when the view was never written)."""
        if doc is None:
            return cls(view)
        pending = ViewChange.from_document(doc["op"]) if doc.get("op") else None
        return cls(view, int(doc["ver"]), int(doc["n"]), pending)

    @property
    def visible_size(self) -> int:
        """The size readers see: a committed change counts even before it is written out."""
        return self.pending.size if self.pending else self.size


class ViewRepository:
    """Views (heads, entries, places) and the access facts, in one collection."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.views = db["views"]

    async def ensure_indexes(self) -> None:
        """Equality look-ups: a view's entries, a collection's places and shares, facts by each id."""
        for key in ("v", "c", "who", "g", "u", "project", "due", "o"):
            await self.views.create_index(key)

    # --- reading ------------------------------------------------------------------------------------------
    async def by_ids(self, ids: Iterable[str]) -> dict[str, Document]:
        """Documents by `_id` (one `$in`); absent ones are missing from the answer."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        return {doc["_id"]: doc async for doc in self.views.find({"_id": {"$in": wanted}})}

    async def view_documents(self, view: str) -> list[Document]:
        """A view's head and every entry it ever had (one equality; entries past the size are stale), in
        batches of `BATCH` (one command up to that many)."""
        wanted = {"_id": 1, "k": 1, "c": 1, "pos": 1, "n": 1, "ver": 1, "op": 1}
        return await self.views.find({"v": view}, wanted, batch_size=BATCH).to_list()

    async def views_holding(self, collection_id: str) -> list[str]:
        """Every view the collection is in."""
        cursor = self.views.find({"c": collection_id, "k": "I", "pos": {"$gt": 0}}, {"iv": 1})
        return [doc["iv"] async for doc in cursor]

    async def facts(self, selector: Document) -> list[Document]:
        """Facts that are on, matching an indexed equality (`who`, `g`, `u`, `project` or `c`)."""
        return await self.views.find({**selector, "on": True}).to_list()

    async def facts_in_flux(self, selector: Document) -> list[Document]:
        """Facts that are on, or whose views are not up to date yet (`due`: turned on or off, its fan-out
        not finished), matching an indexed equality: what a fan-out must consider, so that two facts
        turning off at once never each leave the other's readers alone (docs/scale.md, "Lists: the
        invariant"). One command; facts that are off and settled are read and dropped here."""
        return [fact async for fact in self.views.find(selector) if fact.get("on") or fact.get("due")]

    async def due_facts(self, limit: int) -> list[Document]:
        """Facts whose views may not be up to date (a crash between recording and applying them)."""
        return await self.views.find({"due": True}).limit(limit).to_list()

    # --- writing views ------------------------------------------------------------------------------------
    async def commit(self, heads: Mapping[str, Head], changes: Mapping[str, ViewChange]) -> set[str]:
        """Make each change its view's next version, if nobody changed the view since its head was read:
        the views committed. One command for all of them (plus one read when some lost the race)."""
        tokens = {view: uuid.uuid4().hex for view in changes}
        requests: list[InsertOne[Document] | UpdateOne] = []
        for view, change in changes.items():
            op = change.as_document() | {"t": tokens[view]}
            head = heads[view]
            if head.version == 0:
                head_doc = {"_id": head_id(view), "k": "H", "v": view, "ver": 1}
                requests.append(InsertOne(head_doc | {"n": change.size, "op": op, "o": 1}))
            else:
                requests.append(
                    UpdateOne(
                        {"_id": head_id(view), "ver": head.version},
                        {"$set": {"ver": change.version, "n": change.size, "op": op, "o": 1}},
                    )
                )
        if not requests:
            return set()
        try:
            result = await self.views.bulk_write(requests, ordered=False)
            if result.inserted_count + result.modified_count == len(requests):
                return set(changes)
        except BulkWriteError as exc:  # a view created meanwhile by another writer: it won that race
            duplicates_of(exc)
        # Some lost: the heads that hold this attempt's change say which won (a head that moved on since
        # was written out by its next writer first, so retrying that view is only redundant, never wrong).
        now = await self.by_ids(head_id(view) for view in changes)
        return {
            view for view in changes if (now.get(head_id(view)) or {}).get("op", {}).get("t") == tokens[view]
        }

    async def write_out(self, changes: Mapping[str, ViewChange]) -> None:
        """Write committed changes' entries and places (one command); a newer write of a document wins."""
        requests: list[UpdateOne] = []
        for view, change in changes.items():
            written = change.version
            requests += [
                UpdateOne(
                    {"_id": entry_id(view, position), "w": {"$lt": written}},
                    {"$set": {"k": "E", "v": view, "c": collection_id, "pos": position, "w": written}},
                    upsert=True,
                )
                for position, collection_id in change.entries.items()
            ]
            requests += [
                UpdateOne(
                    {"_id": index_id(view, collection_id), "w": {"$lt": written}},
                    {"$set": {"k": "I", "iv": view, "c": collection_id, "pos": position, "w": written}},
                    upsert=True,
                )
                for collection_id, position in change.places.items()
            ]
        if not requests:
            return
        try:
            await self.views.bulk_write(requests, ordered=False)
        except BulkWriteError as exc:
            duplicates_of(exc)  # a newer change wrote that document already: it stays as it is

    async def settle(self, versions: Mapping[str, int]) -> None:
        """Each view's change at its version is written out: drop it from the head (unless a newer one
        replaced it). One command."""
        if versions:
            await self.views.bulk_write(
                [
                    UpdateOne({"_id": head_id(view), "ver": version}, {"$unset": {"op": "", "o": ""}})
                    for view, version in versions.items()
                ],
                ordered=False,
            )

    async def unsettled(self, limit: int) -> list[Document]:
        """Heads holding a change not yet written out (its writer may have died)."""
        return await self.views.find({"o": 1}).limit(limit).to_list()

    # --- the verifier's walk ------------------------------------------------------------------------------
    async def view_keys_after(self, after: str, limit: int) -> list[str]:
        """Up to `limit` view keys following `after` in key order (a range of head `_id`s)."""
        low, high = head_id(after), f"H{chr(ord(SEPARATOR) + 1)}"
        cursor = self.views.find({"_id": {"$gt": low, "$lt": high}}, {"v": 1}).sort("_id", 1).limit(limit)
        return [doc["v"] async for doc in cursor]

    async def verify_cursor(self) -> str:
        """Where the verifier's last pass stopped (empty: at the start)."""
        doc = await self.views.find_one({"_id": VERIFY_CURSOR_ID})
        return str(doc["after"]) if doc else ""

    async def set_verify_cursor(self, after: str) -> None:
        """Record where the verifier's next pass starts."""
        await self.views.update_one(
            {"_id": VERIFY_CURSOR_ID}, {"$set": {"k": "X", "after": after}}, upsert=True
        )

    # --- facts --------------------------------------------------------------------------------------------
    async def record_fact(self, fact_id: str, fields: Document, on: bool, version: int) -> bool:
        """Record a fact at its version, marked due; False when the same or a newer version is recorded."""
        try:
            result = await self.views.update_one(
                {"_id": fact_id, "ver": {"$lt": version}},
                {"$set": {**fields, "on": on, "ver": version, "due": True}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return result.modified_count == 1 or result.upserted_id is not None

    async def fact_done(self, fact_id: str, version: int) -> None:
        """The views a fact changes are up to date."""
        await self.views.update_one({"_id": fact_id, "ver": version}, {"$unset": {"due": ""}})

    async def seed(self, documents: Sequence[dict[str, Any]]) -> None:
        """Insert documents as they are (the bench seeds large views directly)."""
        if documents:
            await self.views.insert_many(list(documents), ordered=False)

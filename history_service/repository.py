"""All MongoDB access of history_service: event records, collection heads, and small read models.

`events` holds two kinds of document, so that one `find` answers a history page:
- a record per event: `_id` = event id (a redelivery cannot add a second one), `seq` = its place in
  history (`order_key`: when the change was made, then its stream position) and the integer the APIs
  show as `id`, the collection it belongs to, the event's type, ids and data, and the names of the user
  and group it names as they stood (`people`; the rest of its targets is rendered when read);
- a head per collection: `_id` = `collection:<id>`, what authorization and dialect A need (owner,
  project, current name, deleted) and the collection's integer id. Its `seq` is `HEAD_SEQ_BASE` + that
  integer, above every record's, so a newest-first read of a collection returns the head first.
`users`, `groups` and `projects` keep the names and slugs events carry (string `_id`s throughout).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.mongo import Document, duplicates_of

HEAD_SEQ_BASE = 1 << 60
HEAD_PREFIX = "collection:"

# A record's `seq` is `milliseconds since ORDER_EPOCH * TIE_SLOTS + tie`: newest first by `seq` is newest
# first by occurrence, and one integer keeps keyset pages to one indexed equality plus a bound. Below 2**53
# (until the year 2298), so the `id` the APIs show survives a JavaScript client; far below the heads'.
ORDER_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
TIE_SLOTS = 1024
MAX_ORDER_MILLIS = (1 << 53) // TIE_SLOTS - 1
# A record whose `seq` another event already took moves up one slot at a time, at most this often.
_REKEY_ATTEMPTS = 16


def order_key(occurred_at: datetime, stream_seq: int, event_id: str) -> int:
    """A record's `seq`: its occurrence in milliseconds, then its stream position among that millisecond's.

    Events of one millisecond (rare within one collection) are ordered by where JetStream stored them, in
    slots of `stream_seq % TIE_SLOTS` (the event id's hash when the position is unknown), so every
    replica and every redelivery computes the same key. Two events of one millisecond in the same slot
    (stored exactly a multiple of 1,024 messages apart) collide on the unique index; `insert_records`
    moves the later one up a slot.
    """
    millis = min(max((occurred_at - ORDER_EPOCH) // timedelta(milliseconds=1), 0), MAX_ORDER_MILLIS)
    if stream_seq > 0:
        tie = stream_seq % TIE_SLOTS
    else:
        tie = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=4).digest()) % TIE_SLOTS
    return max(millis * TIE_SLOTS + tie, 1)


def head_id(collection_id: str) -> str:
    """The `_id` of a collection's head document."""
    return f"{HEAD_PREFIX}{collection_id}"


# --- read-model changes the projection asks for --------------------------------------------------------
@dataclass(frozen=True)
class CollectionSeen:
    """An event names this collection: make sure it has a head, with this integer id if it is new."""

    collection_id: str
    number: int


@dataclass(frozen=True)
class CollectionCreated:
    """The collection's owner and project, from its created event."""

    collection_id: str
    owner_id: int
    project_id: str


@dataclass(frozen=True)
class CollectionNamed:
    """The collection's name as of `order` (an event with a lower order never overwrites the name)."""

    collection_id: str
    name: str
    order: int


@dataclass(frozen=True)
class CollectionRemoved:
    """The collection was deleted."""

    collection_id: str


@dataclass(frozen=True)
class UserNamed:
    """A user's names."""

    user_id: str
    first_name: str | None
    last_name: str | None


@dataclass(frozen=True)
class GroupNamed:
    """A user group's name."""

    group_id: str
    name: str | None


@dataclass(frozen=True)
class ProjectSlugs:
    """Where a project lives: its namespace slug and its own slug."""

    project_id: str
    namespace: str
    project: str


ReadModelChange = (
    CollectionSeen
    | CollectionCreated
    | CollectionNamed
    | CollectionRemoved
    | UserNamed
    | GroupNamed
    | ProjectSlugs
)


class HistoryRepository:
    """Event records with integer ids, collection heads, and the names rendering uses."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.events = db["events"]
        self.counters = db["counters"]
        self.users = db["users"]
        self.groups = db["groups"]
        self.projects = db["projects"]

    async def ensure_indexes(self) -> None:
        """Indexes the queries rely on (idempotent), and no other: each costs every record's insert (an
        index on `type`, which no query reads, is no longer made; section 4 did not move measurably)."""
        await self.events.create_index("seq", unique=True)
        await self.events.create_index([("collection_id", ASCENDING), ("seq", DESCENDING)])
        await self.events.create_index([("project_id", ASCENDING), ("name", ASCENDING)])
        await self.projects.create_index([("namespace", ASCENDING), ("project", ASCENDING)])

    # --- the projection --------------------------------------------------------------------------------
    async def recorded(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events have a record already."""
        if not event_ids:
            return set()
        cursor = self.events.find({"_id": {"$in": list(event_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def heads(self, collection_ids: Iterable[str]) -> set[str]:
        """Which of these collections have a head."""
        wanted = sorted({head_id(cid) for cid in collection_ids})
        if not wanted:
            return set()
        cursor = self.events.find({"_id": {"$in": wanted}}, {"_id": 1, "collection_id": 1})
        return {doc["collection_id"] async for doc in cursor}

    async def names(self, read_model: str, ids: Iterable[str]) -> dict[str, Document]:
        """Entries of `users` or `groups` by id."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        return {doc["_id"]: doc async for doc in self.db[read_model].find({"_id": {"$in": wanted}})}

    async def allocate(self, sequence: str, count: int) -> int:
        """Reserve `count` consecutive integers of a named sequence; return the last one."""
        counter = await self.counters.find_one_and_update(
            {"_id": sequence}, {"$inc": {"seq": count}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None  # upsert with AFTER always returns the document
        return int(counter["seq"])

    async def apply(self, changes: Sequence[ReadModelChange]) -> None:
        """Apply read-model changes, in the order given within each collection of documents. Idempotent."""
        writes: dict[str, list[UpdateOne]] = {}
        for change in changes:
            target, operation = self._operation(change)
            writes.setdefault(target, []).append(operation)
        for target, operations in writes.items():
            await self.db[target].bulk_write(operations, ordered=True)

    @staticmethod
    def _operation(change: ReadModelChange) -> tuple[str, UpdateOne]:
        """The collection a change touches and the update that makes it."""
        operation: UpdateOne
        match change:
            case CollectionSeen(collection_id=cid, number=number):
                new_head = {
                    "collection_id": cid,
                    "seq": HEAD_SEQ_BASE + number,
                    "number": number,
                    "name": None,
                    "name_order": -1,
                    "deleted": False,
                    "known": False,
                }
                operation = UpdateOne({"_id": head_id(cid)}, {"$setOnInsert": new_head}, upsert=True)
            case CollectionCreated(collection_id=cid, owner_id=owner, project_id=project):
                update = {"$set": {"owner_id": owner, "project_id": project, "known": True}}
                operation = UpdateOne({"_id": head_id(cid)}, update)
            case CollectionNamed(collection_id=cid, name=name, order=order):
                # Only a newer event renames: a redelivered old event must not bring an old name back.
                # An integer, not the ISO timestamp: nx-27017 compares timestamp-like strings wrongly
                # against strings of another shape (`"" < "2026-...Z#1"` is false there).
                operation = UpdateOne(
                    {"_id": head_id(cid), "name_order": {"$lt": order}},
                    {"$set": {"name": name, "name_order": order}},
                )
            case CollectionRemoved(collection_id=cid):
                operation = UpdateOne({"_id": head_id(cid)}, {"$set": {"deleted": True}})
            case UserNamed(user_id=uid, first_name=first, last_name=last):
                names = {"first_name": first, "last_name": last}
                return "users", UpdateOne({"_id": uid}, {"$set": names}, upsert=True)
            case GroupNamed(group_id=gid, name=name):
                return "groups", UpdateOne({"_id": gid}, {"$set": {"name": name}}, upsert=True)
            case ProjectSlugs(project_id=pid, namespace=namespace, project=project):
                slugs = {"namespace": namespace, "project": project}
                return "projects", UpdateOne({"_id": pid}, {"$set": slugs}, upsert=True)
        return "events", operation

    async def insert_records(self, records: list[Document]) -> int:
        """Insert event records, each once; return how many were new.

        One unordered `insert_many`. A duplicate `_id` is an event recorded before (a redelivery, or a
        copy republished past JetStream's duplicate window): it counts as done. Only when a duplicate
        comes back does it cost more: a look-up of those ids tells a recorded event from one whose `seq`
        another event holds (see `order_key`), which moves up a slot and is inserted again.
        """
        inserted = 0
        pending = records
        for _ in range(_REKEY_ATTEMPTS):
            if not pending:
                return inserted
            try:
                result = await self.events.insert_many(pending, ordered=False)
            except BulkWriteError as exc:
                errors = duplicates_of(exc)
                inserted += int(exc.details.get("nInserted", len(pending) - len(errors)))
                clashed = [pending[error["index"]] for error in errors]
                already = await self.recorded([doc["_id"] for doc in clashed])
                pending = [{**doc, "seq": doc["seq"] + 1} for doc in clashed if doc["_id"] not in already]
            else:
                return inserted + len(result.inserted_ids)
        raise RuntimeError(f"{len(pending)} records found no free seq in {_REKEY_ATTEMPTS} slots")

    # --- reads -----------------------------------------------------------------------------------------
    async def head_and_page(
        self, collection_id: str, before_seq: int | None, limit: int
    ) -> tuple[Document | None, list[Document]]:
        """The collection's head and up to `limit` records newest first, below `before_seq` when given.

        The first page is one read (the head sorts above every record). A later page reads the head by
        `_id` apart: one `$or` query would do both, but nx-27017 answers it ten times slower.
        """
        if before_seq is None:
            docs = (
                await self.events.find({"collection_id": collection_id})
                .sort("seq", DESCENDING)
                .limit(limit + 1)
                .to_list()
            )
            return _split_head(docs)
        query = {"collection_id": collection_id, "seq": {"$lt": before_seq}}
        docs = await self.events.find(query).sort("seq", DESCENDING).limit(limit).to_list()
        return await self.head(collection_id), docs

    async def head(self, collection_id: str) -> Document | None:
        """A collection's head."""
        return await self.events.find_one({"_id": head_id(collection_id)})

    async def page_at(self, collection_id: str, skip: int, limit: int) -> list[Document]:
        """One numbered page of a collection's records, newest first."""
        query = {"collection_id": collection_id, "seq": {"$lt": HEAD_SEQ_BASE}}
        return await self.events.find(query).sort("seq", DESCENDING).skip(skip).limit(limit).to_list()

    async def count(self, collection_id: str) -> int:
        """How many records a collection has."""
        return await self.events.count_documents(
            {"collection_id": collection_id, "seq": {"$lt": HEAD_SEQ_BASE}}
        )

    async def heads_named(self, project_id: str, name: str) -> list[Document]:
        """Heads of live, known collections of a project with this name."""
        query = {"project_id": project_id, "name": name, "deleted": False, "known": True}
        return await self.events.find(query).to_list()

    async def project_by_slugs(self, namespace: str, project: str) -> Document | None:
        """A project by its namespace slug and its own slug."""
        return await self.projects.find_one({"namespace": namespace, "project": project})


def _split_head(docs: list[Document]) -> tuple[Document | None, list[Document]]:
    """The head (first when present: its seq is above every record's) and the records."""
    if docs and docs[0]["seq"] >= HEAD_SEQ_BASE:
        return docs[0], docs[1:]
    return None, docs

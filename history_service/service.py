"""Use cases of history_service: recording events (the projection) and reading a collection's history."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from history_service.cursors import HistoryCursors, InvalidCursor
from history_service.repository import (
    CollectionCreated,
    CollectionNamed,
    CollectionRemoved,
    CollectionSeen,
    GroupNamed,
    HistoryRepository,
    ProjectSlugs,
    ReadModelChange,
    UserNamed,
    order_key,
)
from history_service.schemas import (
    PAGE_SIZE_V2,
    EventTarget,
    HistoryEntry,
    HistoryPageA,
    HistoryPageC,
    HistoryPageV2,
    HistoryQueryA,
    HistoryQueryC,
    HistoryResultsV2,
)
from shared import event_types as catalogue
from shared.authz import AccessDecisions
from shared.catalog_directory import CollectionDirectory, CollectionInfo
from shared.clock import stamp, timestamp
from shared.cursors import invalid_cursor
from shared.errors import NotFound
from shared.events import EventEnvelope
from shared.mongo import Document
from shared.principal import Principal

COLLECTION_SEQUENCE = "collections"
_NAME_CACHE_LIMIT = 50_000
# Heads, users and groups a recorder remembers (their integer ids and names never change once stored).
_KNOWN_LIMIT = 50_000

_ITEM_TARGETS = {"node": "Node", "asset": "Asset", "model": "Model"}


@dataclass(frozen=True)
class Incoming:
    """A validated event on its way into the projection, with its position in the stream (0: unknown)."""

    envelope: EventEnvelope
    data: catalogue.EventData
    stream_seq: int = 0


# --- the projection --------------------------------------------------------------------------------------
def collection_id_of(envelope: EventEnvelope) -> str | None:
    """The collection an event is about, if any."""
    value = envelope.ids.get("collection_id")
    return None if value is None else str(value)


def change_order(incoming: Incoming) -> int:
    """Orders changes to one entity: occurred_at in milliseconds, then stream position within one."""
    millis = int(incoming.envelope.occurred_at.timestamp() * 1000)
    return millis * 1_000_000 + incoming.stream_seq % 1_000_000


def read_model_changes(incoming: Incoming) -> list[ReadModelChange]:
    """What an event changes in the read models, beyond its collection's head existing (`CollectionSeen`).

    Each change is idempotent and none goes back in time (a name only for a newer event; users', groups'
    and projects' names and slugs are set once, by their created events), so a redelivery may apply
    it again.
    """
    envelope, data = incoming.envelope, incoming.data
    ids = envelope.ids
    changes: list[ReadModelChange] = []
    collection_id = collection_id_of(envelope)
    if collection_id is not None:
        name = collection_name(data)
        if isinstance(data, catalogue.CollectionCreated) and "project_id" in ids:
            changes.append(CollectionCreated(collection_id, data.owner_id, str(ids["project_id"])))
        if name is not None:
            changes.append(CollectionNamed(collection_id, name, change_order(incoming)))
        if isinstance(data, catalogue.CollectionDeleted):
            changes.append(CollectionRemoved(collection_id))
    if isinstance(data, catalogue.UserCreated) and "user_id" in ids:
        changes.append(UserNamed(str(ids["user_id"]), data.first_name, data.last_name))
    if isinstance(data, catalogue.GroupChanged) and "group_id" in ids and data.name is not None:
        changes.append(GroupNamed(str(ids["group_id"]), data.name))
    if envelope.type == "catalog.project.created" and {"project_id", "namespace", "project"} <= ids.keys():
        changes.append(ProjectSlugs(str(ids["project_id"]), str(ids["namespace"]), str(ids["project"])))
    return changes


def collection_name(data: catalogue.EventData) -> str | None:
    """The collection's name an event states: on creation, and on an update (the new one)."""
    if isinstance(data, catalogue.CollectionCreated):
        return data.name
    if isinstance(data, catalogue.CollectionUpdated):
        # `changes` holds a rename; else `name` is the current name ("" when the writer did not know).
        renamed = data.changes.get("name")
        return renamed if isinstance(renamed, str) else (data.name or None)
    return None


@dataclass
class RenderContext:
    """Users' and groups' names as of the event being recorded (what its stored targets show)."""

    users: dict[str, Document]
    groups: dict[str, Document]

    def advance(self, incoming: Incoming) -> None:
        """Take in the names this event states, so the next events render with them."""
        envelope, data = incoming.envelope, incoming.data
        if isinstance(data, catalogue.UserCreated) and "user_id" in envelope.ids:
            self.users[str(envelope.ids["user_id"])] = {
                "first_name": data.first_name,
                "last_name": data.last_name,
            }
        if isinstance(data, catalogue.GroupChanged) and "group_id" in envelope.ids and data.name is not None:
            self.groups[str(envelope.ids["group_id"])] = {"name": data.name}

    def people(self, envelope: EventEnvelope) -> list[Document]:
        """The user and group the event names, with their names as they stand now (stored with it)."""
        ids = envelope.ids
        targets: list[Document] = []
        if "user_id" in ids:
            user = self.users.get(str(ids["user_id"]), {})
            targets.append(
                _target(
                    "User",
                    id=_int_or_str(ids["user_id"]),
                    first_name=user.get("first_name"),
                    last_name=user.get("last_name"),
                )
            )
        if "group_id" in ids:
            group = self.groups.get(str(ids["group_id"]), {})
            targets.append(_target("UserGroup", id=_int_or_str(ids["group_id"]), name=group.get("name")))
        return targets


def _target(target_type: str, **target: Any) -> Document:
    """One target, in the API's shape."""
    return {"target_type": target_type, "target": target}


def item_targets(event_type: str, data: Document) -> list[Document]:
    """The items a stored event's data names (members, assets, models, a thumbnail), as targets."""
    model = catalogue.EVENT_TYPES.get(event_type, (None,))[0]
    if model is catalogue.ItemsChanged:
        return [_target(_ITEM_TARGETS[data["kind"]], id=item) for item in data["ids"]]
    if model is catalogue.ThumbnailSet and data.get("asset_id") is not None:
        return [_target("Asset", id=data["asset_id"])]
    return []


def record_of(incoming: Incoming, context: RenderContext, recorded_at: str) -> Document:
    """The stored record of an event: what every dialect's history entry is read from.

    Kept lean (the stand-in server's cost of an insert grows with every field and sub-document): what
    can be rendered from the event when it is read is not stored twice. Only the names of the user and
    group it names (`people`) are stored as they stood, since those read models move on; its items come
    from `data`, and its collection target from the collection's head, when read. Fields without a value
    (`collection_id`, `entity_version`, `request_id`, `people`) are left out.
    """
    envelope = incoming.envelope
    record: Document = {
        "_id": envelope.id,
        "seq": order_key(envelope.occurred_at, incoming.stream_seq, envelope.id),
        "type": envelope.type,
        "version": envelope.version,
        "event_type": catalogue.history_name(envelope.type),
        "user_id": envelope.actor if envelope.actor is not None else 0,
        "created_at": stamp(envelope.occurred_at),
        "ids": dict(envelope.ids),
        "data": incoming.data.model_dump(mode="json"),
        "stream_seq": incoming.stream_seq,
        "recorded_at": recorded_at,
    }
    optional = {
        "collection_id": collection_id_of(envelope),
        "entity_version": envelope.entity_version,
        "request_id": envelope.request_id,
        "people": context.people(envelope) or None,
    }
    record.update({key: value for key, value in optional.items() if value is not None})
    return record


# --- reading ---------------------------------------------------------------------------------------------
def _int_or_str(value: Any) -> int | str:
    """Ids travel as integers or strings; show integers as integers."""
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if text.isdigit() else text


def entry_of(doc: Document, head: Document | None, current: CollectionInfo) -> HistoryEntry:
    """A stored record as a history entry, its collection as the head shows it now.

    The title is the current one; the integer id is the head's, since two replicas meeting a new
    collection at once may each have rendered their own before one head won. Records written before
    records were kept lean carry every target already rendered (`targets`).
    """
    shown = {"title": (head or {}).get("name") or current.name}
    if head is not None:
        shown["id"] = head["number"]
    if "targets" in doc:
        stored = doc["targets"]
    else:
        collection = {"id": 0, "elasticsearch_id": current.collection_id, "title": None}
        stored = [
            *doc.get("people", []),
            *item_targets(doc["type"], doc["data"]),
            _target("Collection", **collection),
        ]
    targets = []
    for target in stored:
        if (
            target["target_type"] == "Collection"
            and target["target"].get("elasticsearch_id") == current.collection_id
        ):
            fresh = {key: value for key, value in shown.items() if value is not None}
            targets.append(EventTarget.model_validate({**target, "target": {**target["target"], **fresh}}))
        else:
            targets.append(EventTarget.model_validate(target))
    return HistoryEntry(
        id=doc["seq"],
        user_id=doc["user_id"],
        event_type=doc["event_type"],
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at", doc["created_at"]),
        event_targets=targets,
    )


class HistoryService:
    """Records events once each and serves collection history to callers who may read the collection."""

    def __init__(
        self,
        repository: HistoryRepository,
        directory: CollectionDirectory,
        decisions: AccessDecisions,
        cursors: HistoryCursors | None = None,
    ) -> None:
        self.repository = repository
        self.directory = directory
        self.decisions = decisions
        # Without the shared secret (a recorder, which never pages), cursors are good on this process only.
        self.cursors = cursors or HistoryCursors("")
        # (namespace, project, name) -> collection id; checked against the head on every read.
        self._names: dict[tuple[str, str, str], str] = {}
        # The recorder's memory: collections with a head, and users' and groups' names by read model.
        self._heads: set[str] = set()
        self._people: dict[str, dict[str, Document]] = {}

    # --- recording -----------------------------------------------------------------------------------
    async def record(self, batch: Sequence[Incoming]) -> int:
        """Project a batch of events; an event already recorded is skipped. Return how many were new.

        At steady state that is one MongoDB command: the records' unordered `insert_many`, where a
        redelivered event's duplicate `_id` counts as recorded. Read-model updates are added only for
        events that change a read model (a collection's creation, rename or deletion, a new collection,
        user, group or project), and look-ups only for collections, users and groups this process has
        not met yet. A redelivery, or two batches written at once, may apply read-model changes again or
        in another order: each is idempotent, and a name changes only for a newer event.
        """
        unique: dict[str, Incoming] = {}
        for incoming in batch:
            unique.setdefault(incoming.envelope.id, incoming)
        events = list(unique.values())
        new = await self._new_collections(events)
        context = RenderContext(
            users=await self._known_names("users", events, "user_id"),
            groups=await self._known_names("groups", events, "group_id"),
        )
        # A new head first: the other changes to it are updates of the document it inserts.
        changes: list[ReadModelChange] = list(new)
        changes += [change for incoming in events for change in read_model_changes(incoming)]
        recorded_at = timestamp()
        records = []
        for incoming in events:
            context.advance(incoming)
            records.append(record_of(incoming, context, recorded_at))
        if changes:
            await self.repository.apply(changes)
        recorded = await self.repository.insert_records(records)
        self._remember(events, context)
        return recorded

    async def _new_collections(self, events: list[Incoming]) -> list[CollectionSeen]:
        """Heads to insert for the collections these events name that history has not met, with their
        integer ids.

        What this process met before is known from memory; the rest is one look-up. If another replica
        inserts the same head at the same moment, the first insert wins and reads show its id (records
        do not store it).
        """
        named = {cid for i in events if (cid := collection_id_of(i.envelope)) is not None}
        missing = named - self._heads
        if missing:
            found = await self.repository.heads(missing)
            self._learn(self._heads, found)
            missing -= found
        if not missing:
            return []
        new = sorted(missing)
        last = await self.repository.allocate(COLLECTION_SEQUENCE, len(new))
        return [CollectionSeen(cid, last - len(new) + 1 + offset) for offset, cid in enumerate(new)]

    async def _known_names(self, read_model: str, events: list[Incoming], key: str) -> dict[str, Document]:
        """Users' or groups' names the events need: from memory, else one read of those not met yet."""
        ids = {str(i.envelope.ids[key]) for i in events if key in i.envelope.ids}
        known = self._people.setdefault(read_model, {})
        names = {name_id: known[name_id] for name_id in ids if name_id in known}
        if missing := ids - names.keys():
            names.update(await self.repository.names(read_model, missing))
        return names

    def _remember(self, events: list[Incoming], context: RenderContext) -> None:
        """Keep what a recorded batch met, for the next batches: the collections (each has a head now)
        and users' and groups' names (set once, by their created events)."""
        self._learn(self._heads, {cid for i in events if (cid := collection_id_of(i.envelope)) is not None})
        self._learn(self._people.setdefault("users", {}), context.users)
        self._learn(self._people.setdefault("groups", {}), context.groups)

    @staticmethod
    def _learn(known: Any, learned: Any) -> None:
        """Add to a bounded memory (a set or a dict), forgetting everything when it would overflow."""
        if len(known) + len(learned) > _KNOWN_LIMIT:
            known.clear()
        known.update(learned)

    async def is_recorded(self, event_id: str) -> bool:
        """Whether the event already has a record."""
        return bool(await self.repository.recorded([event_id]))

    # --- reading ---------------------------------------------------------------------------------------
    async def history_v2(self, principal: Principal, collection_id: str, cursor: str) -> HistoryPageV2:
        """Dialect B: 20 entries newest first below the cursor (`0` = the newest)."""
        before, invalid = self._position(collection_id, cursor)
        head, docs, info = await self._read(collection_id, before, PAGE_SIZE_V2 + 1)
        info = await self._visible(principal, collection_id, head, info, "collection not found")
        if invalid:
            raise invalid_cursor("cursor", cursor, "Invalid cursor")
        page = docs[:PAGE_SIZE_V2]
        following = self.cursors.encode(collection_id, page[-1]["seq"]) if len(docs) > PAGE_SIZE_V2 else None
        results = [entry_of(doc, head, info) for doc in page]
        return HistoryPageV2(history=HistoryResultsV2(results=results, next_cursor=following))

    async def history_c(self, principal: Principal, collection_id: str, query: HistoryQueryC) -> HistoryPageC:
        """Dialect C: `pageSize` entries newest first after `paginationToken`."""
        token = query.pagination_token
        before, invalid = self._position(collection_id, token) if token else (None, False)
        head, docs, info = await self._read(collection_id, before, query.page_size + 1)
        info = await self._visible(principal, collection_id, head, info, "collection not found")
        if invalid:
            raise invalid_cursor("paginationToken", token or "", "Invalid pagination token")
        page = docs[: query.page_size]
        following = (
            self.cursors.encode(collection_id, page[-1]["seq"]) if len(docs) > query.page_size else None
        )
        return HistoryPageC(data=[entry_of(doc, head, info) for doc in page], next_pagination_token=following)

    def _position(self, collection_id: str, cursor: str) -> tuple[int | None, bool]:
        """Where a cursor continues, and whether it was refused (told only after the 404 check)."""
        try:
            return self.cursors.decode(collection_id, cursor), False
        except InvalidCursor:
            return None, True

    async def _read(
        self, collection_id: str, before: int | None, limit: int
    ) -> tuple[Document | None, list[Document], CollectionInfo | None]:
        """The head and a page from the projection, and catalog's answer, side by side.

        Catalog decides whether the collection is live: the projection learns of a delete only when the
        event arrives, tens of milliseconds after catalog answered it.
        """
        page = asyncio.ensure_future(self.repository.head_and_page(collection_id, before, limit))
        try:
            live = await self.directory.collection(collection_id)
        except BaseException:
            # Not a TaskGroup: its ExceptionGroup would hide the domain error (503) from the middleware.
            page.cancel()
            await asyncio.gather(page, return_exceptions=True)
            raise
        head, docs = await page
        return head, docs, live

    async def history_a(
        self, principal: Principal, namespace: str, project: str, name: str, query: HistoryQueryA
    ) -> HistoryPageA:
        """Dialect A: a numbered page (1-based) of `pageSize` entries newest first, with totals."""
        key = (namespace, project, name)
        skip = (query.page - 1) * query.page_size
        head: Document | None = None
        docs: list[Document] = []
        collection_id = self._names.get(key)
        if collection_id is not None:
            head, docs = await self._numbered_page(collection_id, skip, query.page_size)
            if head is None or head.get("name") != name or head.get("deleted"):
                self._names.pop(key, None)  # renamed or deleted since: look the name up again
                collection_id = None
        if collection_id is None:
            collection_id = await self._collection_named(namespace, project, name)
            if collection_id is None:
                raise NotFound("Collection not found")
            head, docs = await self._numbered_page(collection_id, skip, query.page_size)
        live = await self.directory.collection(collection_id)
        if live is not None and live.name is not None and live.name != name:
            # Catalog says that collection is called otherwise now (its rename not projected yet): the name
            # may belong to another collection. Ask catalog for it, never show the old one's history.
            self._names.pop(key, None)
            live = await self.directory.collection_by_name(namespace, project, name)
            if live is None:
                raise NotFound("Collection not found")
            collection_id = live.collection_id
            head, docs = await self._numbered_page(collection_id, skip, query.page_size)
        info = await self._visible(principal, collection_id, head, live, "Collection not found")
        if head is not None and head.get("name") == name:
            if len(self._names) >= _NAME_CACHE_LIMIT:
                self._names.clear()
            self._names[key] = collection_id
        total = await self.repository.count(collection_id)
        return HistoryPageA(
            history=[entry_of(doc, head, info) for doc in docs],
            page=query.page,
            page_size=query.page_size,
            total=total,
            total_pages=math.ceil(total / query.page_size),
        )

    async def _numbered_page(
        self, collection_id: str, skip: int, limit: int
    ) -> tuple[Document | None, list[Document]]:
        """The head and one numbered page: one read for the first page, two for the others."""
        if skip == 0:
            head, docs = await self.repository.head_and_page(collection_id, None, limit)
            return head, docs[:limit]
        return await self.repository.head(collection_id), await self.repository.page_at(
            collection_id, skip, limit
        )

    async def _collection_named(self, namespace: str, project: str, name: str) -> str | None:
        """A dialect A collection's id by slugs and name: from the projection when unambiguous there."""
        found = await self.repository.project_by_slugs(namespace, project)
        if found is not None:
            heads = await self.repository.heads_named(found["_id"], name)
            if len(heads) == 1:
                return str(heads[0]["collection_id"])
        info = await self.directory.collection_by_name(namespace, project, name)
        return None if info is None else info.collection_id

    async def _visible(
        self,
        principal: Principal,
        collection_id: str,
        head: Document | None,
        live: CollectionInfo | None,
        missing: str,
    ) -> CollectionInfo:
        """The collection if it is live (catalog's answer, `live`) and the caller may read it, else 404."""
        if live is None or (head is not None and head.get("deleted")):
            raise NotFound(missing)
        if not (await self.decisions.permissions(principal, live.ref)).read:
            raise NotFound(missing)
        return live

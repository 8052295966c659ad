"""All MongoDB access of catalog_service: namespaces, projects, datasets, the item registry, collections."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Literal

from pymongo import ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.errors import Conflict
from shared.events import EventEnvelope
from shared.mongo import Document
from shared.outbox import ensure_outbox_index, new_document_outbox, with_events, written

ItemKind = Literal["asset", "model"]

# A collection as the answers show it: members live in their own documents (member_repository.py); the
# arrays of the layout before them are never read, and neither are pending events or pending changes.
WITHOUT_MEMBERS = {
    "nodes": 0,
    "assets": 0,
    "models": 0,
    "outbox": 0,
    "member_ops": 0,
    "views_due": 0,
    "vd": 0,
}
# The newest access_service entity version whose visibility event set `is_public` (0: none yet).
VISIBILITY_VERSION = "visibility_version"
# The newest version of access_service's access document of the collection (public flag, shared users,
# guests, groups) catalog was told of, by either a visibility change or a share fact; it only grows.
# Decision caches key their allows on it (shared/authz.py), which is why it is on the document every
# request reads anyway. A document without it (written before it existed) reads as 0.
ACCESS_VERSION = "access_version"


class CatalogRepository:
    """One class, one database: every query catalog_service makes."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.namespaces = db["namespaces"]
        self.projects = db["projects"]
        self.datasets = db["datasets"]
        self.items: dict[ItemKind, AsyncCollection[Document]] = {"asset": db["assets"], "model": db["models"]}
        self.collections = db["collections"]

    @property
    def outbox_collections(self) -> list[str]:
        """Collections whose documents carry pending events."""
        return ["namespaces", "projects", "datasets", "assets", "models", "collections"]

    async def ensure_indexes(self) -> None:
        """Indexes the queries rely on (idempotent)."""
        await self.projects.create_index("key", unique=True)
        await self.datasets.create_index("project_id")
        await self.collections.create_index("name_key", unique=True)
        await self.collections.create_index([("project_id", 1), ("deleted", 1)])
        await self.collections.create_index("owner_id")
        await self.collections.create_index("vd")
        for name in self.outbox_collections:
            await ensure_outbox_index(self.db[name])
        # Collections written before visibility was versioned: any versioned event is newer.
        await self.collections.update_many(
            {VISIBILITY_VERSION: {"$exists": False}}, {"$set": {VISIBILITY_VERSION: 0}}
        )

    # --- namespaces, projects, datasets -------------------------------------------------------------------
    async def insert(
        self, collection: AsyncCollection[Document], doc: Document, event: EventEnvelope
    ) -> None:
        """Insert a document with its event; 409 when a unique key is taken."""
        try:
            await collection.insert_one({**doc, **new_document_outbox(event)})
        except DuplicateKeyError as exc:
            raise Conflict("already exists") from exc
        written(event)

    async def upsert_quietly(self, collection: AsyncCollection[Document], doc: Document) -> None:
        """Create a document unless it exists (no event: used for implicit personal projects)."""
        fields = {k: v for k, v in doc.items() if k != "_id"}
        with contextlib.suppress(DuplicateKeyError):  # a concurrent request created it
            await collection.update_one(
                {"_id": doc["_id"]},
                {"$setOnInsert": {**fields, "outbox": {}, "outbox_count": 0}},
                upsert=True,
            )

    async def namespace(self, slug: str) -> Document | None:
        """One namespace by slug."""
        return await self.namespaces.find_one({"_id": slug}, {"outbox": 0})

    async def project_by_key(self, namespace: str, slug: str) -> Document | None:
        """One project by namespace and slug."""
        return await self.projects.find_one({"key": f"{namespace}/{slug}"}, {"outbox": 0})

    async def dataset(self, dataset_id: str) -> Document | None:
        """One dataset by id."""
        return await self.datasets.find_one({"_id": dataset_id}, {"outbox": 0})

    # --- the item registry --------------------------------------------------------------------------------
    async def item(self, kind: ItemKind, item_id: str) -> Document | None:
        """One asset or model."""
        return await self.items[kind].find_one({"_id": item_id, "deleted": False}, {"outbox": 0})

    async def existing_items(self, kind: ItemKind, ids: list[str]) -> list[Document]:
        """Those of `ids` that exist."""
        cursor = self.items[kind].find({"_id": {"$in": ids}, "deleted": False}, {"outbox": 0})
        return await cursor.to_list()

    async def items_by_ids(self, kind: ItemKind, ids: list[str]) -> list[Document]:
        """Those of `ids` the registry holds, deleted ones included (a collection keeps a deleted item's id,
        and its list shows it as such): one `_id $in`."""
        cursor = self.items[kind].find(
            {"_id": {"$in": ids}}, {"name": 1, "owner_id": 1, "created_at": 1, "url": 1, "deleted": 1}
        )
        return await cursor.to_list()

    async def delete_item(
        self, kind: ItemKind, item_id: str, at: str, event: EventEnvelope, *, owner_id: int | None
    ) -> bool:
        """Mark an item deleted (only if `owner_id` owns it, when given), with its event; False otherwise."""
        selector: Document = {"_id": item_id, "deleted": False}
        if owner_id is not None:
            selector["owner_id"] = owner_id
        result = await self.items[kind].update_one(
            selector, with_events({"$set": {"deleted": True, "deleted_at": at}}, event)
        )
        if result.modified_count == 1:
            written(event)
        return result.modified_count == 1

    # --- collections --------------------------------------------------------------------------------------
    async def insert_collection(self, doc: Document, event: EventEnvelope) -> None:
        """Insert a collection with its created event; DuplicateKeyError when its name key is taken."""
        await self.collections.insert_one(
            {VISIBILITY_VERSION: 0, ACCESS_VERSION: 0, **doc, **new_document_outbox(event)}
        )
        written(event)

    async def apply_visibility(self, collection_id: str, is_public: bool, entity_version: int | None) -> bool:
        """Set the public flag from access_service's event unless a newer one was applied; True if set.

        `entity_version` is the version of access_service's record of the collection the event brought
        it to. One without a version predates versioning, so it is older than any versioned one.
        """
        if entity_version is None:
            result = await self.collections.update_one(
                {"_id": collection_id, VISIBILITY_VERSION: {"$lt": 1}}, {"$set": {"is_public": is_public}}
            )
        else:
            result = await self.collections.update_one(
                {"_id": collection_id, VISIBILITY_VERSION: {"$lt": entity_version}},
                {
                    "$set": {"is_public": is_public, VISIBILITY_VERSION: entity_version},
                    # `$max`: a share fact of a newer version may have raised it already.
                    "$max": {ACCESS_VERSION: entity_version},
                },
            )
        return result.modified_count == 1

    async def raise_access_versions(self, versions: dict[str, int]) -> None:
        """Raise each collection's access version to at least the one given (one command for them all;
        an older version changes nothing, so facts may arrive in any order)."""
        if versions:
            await self.collections.bulk_write(
                [
                    UpdateOne({"_id": collection_id}, {"$max": {ACCESS_VERSION: version}})
                    for collection_id, version in versions.items()
                ],
                ordered=False,
            )

    async def collections_by_ids(self, ids: list[str], projection: dict[str, int]) -> list[Document]:
        """Collections by id, deleted ones included (one `$in`)."""
        return await self.collections.find({"_id": {"$in": ids}}, projection).to_list()

    async def live_by_ids(self, ids: list[str], projection: dict[str, int]) -> list[Document]:
        """Live collections by id, in the order of `ids` (one `$in`; deleted or unknown ones left out)."""
        found = {
            doc["_id"]: doc
            async for doc in self.collections.find({"_id": {"$in": ids}, "deleted": False}, projection)
        }
        return [found[c] for c in ids if c in found]

    async def collections_due(self, limit: int) -> list[Document]:
        """Collections whose views may be behind (a crash between their change and the views')."""
        return await self.collections.find({"vd": 1}, {"_id": 1, "views_due": 1}, limit=limit).to_list()

    async def collection_views_done(self, collection_id: str, token: str) -> None:
        """The views of the collection are up to date with the change that left `token`."""
        await self.collections.update_one(
            {"_id": collection_id, "views_due": token}, {"$unset": {"views_due": "", "vd": ""}}
        )

    async def live_collections(self, projection: dict[str, int], batch: int) -> AsyncIterator[list[Document]]:
        """Every live collection, a batch at a time (the views' migration)."""
        cursor = self.collections.find({"deleted": False}, projection, batch_size=batch)
        chunk: list[Document] = []
        async for doc in cursor:
            chunk.append(doc)
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    async def live_ids_in_project(self, project_id: str) -> list[str]:
        """The ids of a project's live collections (one equality on the project index, in batches)."""
        cursor = self.collections.find(
            {"project_id": project_id, "deleted": False}, {"_id": 1}, batch_size=5000
        )
        return [doc["_id"] async for doc in cursor]

    async def live_ids_of_owner(self, owner_id: int) -> list[str]:
        """The ids of a user's live collections (one equality on the owner index, in batches)."""
        cursor = self.collections.find({"owner_id": owner_id, "deleted": False}, {"_id": 1}, batch_size=5000)
        return [doc["_id"] async for doc in cursor]

    async def layout_marked(self, mark: str) -> bool:
        """Whether a one-off migration recorded that it is done."""
        return await self.db["layout"].find_one({"_id": mark}) is not None

    async def mark_layout(self, mark: str) -> None:
        """Record that a one-off migration is done."""
        await self.db["layout"].update_one({"_id": mark}, {"$set": {"done": 1}}, upsert=True)

    async def collection(self, collection_id: str, projection: dict[str, int]) -> Document | None:
        """One live collection by id."""
        return await self.collections.find_one({"_id": collection_id, "deleted": False}, projection)

    async def collection_any(self, collection_id: str, projection: dict[str, int]) -> Document | None:
        """One collection by id, deleted or not."""
        return await self.collections.find_one({"_id": collection_id}, projection)

    async def collection_named(
        self, collection_id: str, name: str, projection: dict[str, int]
    ) -> Document | None:
        """One live collection by id, if it still has this name."""
        return await self.collections.find_one(
            {"_id": collection_id, "name": name, "deleted": False}, projection
        )

    async def collection_by_name(self, name_key: str, projection: dict[str, int]) -> Document | None:
        """One live collection by its project-scoped name key."""
        return await self.collections.find_one({"name_key": name_key, "deleted": False}, projection)

    async def first_named(self, project_id: str, name: str, projection: dict[str, int]) -> Document | None:
        """The oldest live collection with this title in the project (titles from B and C may repeat)."""
        cursor = self.collections.find(
            {"project_id": project_id, "name": name, "deleted": False}, projection, sort=[("_id", 1)], limit=1
        )
        found = await cursor.to_list()
        return found[0] if found else None

    async def update_collection(
        self,
        selector: Document,
        update: Document,
        event: EventEnvelope | None,
        projection: dict[str, int],
        *,
        before: bool = False,
    ) -> Document | None:
        """One atomic update of a live collection (with its event); the document after (or before) it."""
        doc = await self.collections.find_one_and_update(
            {**selector, "deleted": False},
            with_events(update, event) if event else update,
            projection=projection,
            return_document=ReturnDocument.BEFORE if before else ReturnDocument.AFTER,
        )
        if doc is not None and event is not None:
            written(event)
        return doc

    async def set_thumbnail(
        self, collection_id: str, expected: str | None, thumbnail: Document | None, event: EventEnvelope
    ) -> bool:
        """Show `thumbnail` (None: none) if the thumbnail shows `expected` (None: none), with its event."""
        selector: Document = (
            {"_id": collection_id, "thumbnail": None}
            if expected is None
            else {"_id": collection_id, "thumbnail.asset_id": expected}
        )
        result = await self.collections.update_one(
            selector, with_events({"$set": {"thumbnail": thumbnail}}, event)
        )
        if result.modified_count == 1:
            written(event)
        return result.modified_count == 1

    async def find_collections(
        self,
        selector: Document,
        projection: dict[str, int],
        *,
        sort: list[tuple[str, int]],
        skip: int,
        limit: int,
    ) -> list[Document]:
        """A page of live collections."""
        cursor = self.collections.find(
            {**selector, "deleted": False}, projection, sort=sort, skip=skip, limit=limit
        )
        return await cursor.to_list()

    async def page_with_total(
        self, selector: Document, projection: dict[str, int], *, skip: int, limit: int
    ) -> tuple[list[Document], int]:
        """A page of live collections in id order and how many match in all: one `$facet` command."""
        pipeline: list[Document] = [
            {"$match": {**selector, "deleted": False}},
            {"$sort": {"_id": 1}},
            {
                "$facet": {
                    "page": [{"$skip": skip}, {"$limit": limit}, {"$project": projection}],
                    "total": [{"$count": "n"}],
                }
            },
        ]
        result = await (await self.collections.aggregate(pipeline)).to_list()
        facet = result[0] if result else {"page": [], "total": []}
        total = facet["total"][0]["n"] if facet["total"] else 0
        return list(facet["page"]), int(total)

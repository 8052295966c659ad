"""Use cases of catalog_service: one collection model behind all three dialects.

Every request spends at most one MongoDB command at steady state: slugs, names and collection owners are
resolved from in-process caches (projects, namespaces and datasets never move; a collection's owner and
project never change), and writes go by `_id`, with the name kept in the filter so that a stale name
cache can never redirect a write (a miss re-resolves the name once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from pymongo.errors import DuplicateKeyError

from catalog_service.ids import new_id
from catalog_service.repository import WITH_NODES, WITHOUT_MEMBERS, CatalogRepository, ItemKind
from shared import event_types as ev
from shared.authz import AccessDecisions, CollectionRef, Permissions
from shared.clock import timestamp
from shared.cursors import InvalidToken, TokenSigner
from shared.errors import Conflict, Dialect, Forbidden, Invalid, NotFound
from shared.mongo import Document
from shared.principal import Principal, require_admin

MemberField = Literal["nodes", "assets", "models"]
COUNT_FIELD: dict[MemberField, str] = {
    "nodes": "node_count",
    "assets": "asset_count",
    "models": "model_count",
}
KIND: dict[MemberField, Literal["node", "asset", "model"]] = {
    "nodes": "node",
    "assets": "asset",
    "models": "model",
}
EVENTS: dict[tuple[MemberField, bool], str] = {
    ("nodes", True): "catalog.collection.members_added",
    ("nodes", False): "catalog.collection.members_removed",
    ("assets", True): "catalog.collection.assets_linked",
    ("assets", False): "catalog.collection.assets_unlinked",
    ("models", True): "catalog.collection.models_linked",
    ("models", False): "catalog.collection.models_unlinked",
}
PERSONAL_NAMESPACE = "personal"
SEPARATOR = "\x1f"  # names may not contain control characters, so this never clashes with a name
MAX_CAS_ATTEMPTS = 8
CACHE_LIMIT = 100_000
T = TypeVar("T")


def collection_not_found() -> NotFound:
    """The same answer whether the collection is missing or hidden from the caller."""
    return NotFound("collection not found", wording={Dialect.A: "Collection not found"})


def name_key(project_id: str, name: str) -> str:
    """The unique key of a live collection name within its project."""
    return f"{project_id}{SEPARATOR}{name}"


def free_key(project_id: str, name: str, collection_id: str) -> str:
    """A name key that claims nothing: for titles from dialects B and C, which may repeat."""
    return f"{name_key(project_id, name)}{SEPARATOR}{collection_id}"


class ListCursors:
    """Dialect C's list `paginationToken`: signed, and bound to the caller it was issued to."""

    def __init__(self, secret: str) -> None:
        self._signer = TokenSigner(secret, "catalog-list")

    def encode_cursor(self, user_id: int, last_id: str) -> str:
        """An opaque pagination token for the id a page of this user's list ended at."""
        return self._signer.issue(_list_scope(user_id), last_id)

    def decode_cursor(self, user_id: int, token: str) -> str:
        """The id a token continues after; 400 for anything not issued to this user."""
        try:
            return self._signer.verify(_list_scope(user_id), token)
        except InvalidToken as exc:
            raise Invalid("invalid paginationToken") from exc


def _list_scope(user_id: int) -> str:
    """What a list token pages: one caller's view (another caller's token is refused)."""
    return f"user:{user_id}"


class BoundedCache(dict[Any, Any]):
    """A dict that forgets everything when it grows past its limit (entries are cheap to re-read)."""

    def remember(self, key: Any, value: Any) -> None:
        """Store, clearing first when full."""
        if len(self) >= CACHE_LIMIT:
            self.clear()
        self[key] = value


class CatalogService:
    """Collections and membership, the registry, namespaces, projects and datasets."""

    def __init__(
        self, repository: CatalogRepository, access: AccessDecisions, cursors: ListCursors | None = None
    ) -> None:
        self.repo = repository
        self.access = access
        # Without the shared secret, list tokens are good on this process only (never forgeable).
        self.cursors = cursors or ListCursors("")
        self._projects = BoundedCache()  # (namespace, slug) -> project document
        self._namespaces = BoundedCache()  # slug -> True
        self._datasets = BoundedCache()  # dataset id -> project id
        self._refs = BoundedCache()  # collection id -> CollectionRef
        self._names = BoundedCache()  # name key -> collection id
        self._items = BoundedCache()  # (kind, id) -> item document

    # --- namespaces, projects, datasets -------------------------------------------------------------------
    async def create_namespace(self, principal: Principal, slug: str, name: str | None) -> Document:
        """An admin creates a namespace."""
        require_admin(principal)
        doc = {"_id": slug, "slug": slug, "name": name or slug, "created_at": timestamp()}
        event = ev.event(
            "catalog.namespace.created",
            ev.NamedEntityCreated(name=doc["name"]),
            actor=principal.user_id,
            namespace=slug,
        )
        try:
            await self.repo.insert(self.repo.namespaces, doc, event)
        except Conflict as exc:
            raise Conflict("namespace already exists") from exc
        return doc

    async def create_project(
        self, principal: Principal, namespace: str, slug: str, name: str | None
    ) -> Document:
        """An admin creates a project in a namespace."""
        require_admin(principal)
        await self._require_namespace(namespace)
        project_id = new_id("prj_")
        doc = {
            "_id": project_id,
            "key": f"{namespace}/{slug}",
            "namespace": namespace,
            "slug": slug,
            "name": name or slug,
            "created_at": timestamp(),
        }
        event = ev.event(
            "catalog.project.created",
            ev.NamedEntityCreated(name=doc["name"]),
            actor=principal.user_id,
            project_id=project_id,
            namespace=namespace,
            project=slug,
        )
        try:
            await self.repo.insert(self.repo.projects, doc, event)
        except Conflict as exc:
            raise Conflict("project already exists in this namespace") from exc
        return doc

    async def project(self, namespace: str, slug: str) -> Document:
        """A project by slugs (cached: projects never move); 404 naming what is missing."""
        cached = self._projects.get((namespace, slug))
        if cached is not None:
            return dict(cached)
        doc = await self.repo.project_by_key(namespace, slug)
        if doc is None:
            await self._require_namespace(namespace)
            raise NotFound("Project not found")
        self._projects.remember((namespace, slug), doc)
        return dict(doc)

    async def project_for(self, principal: Principal, namespace: str, slug: str) -> Document:
        """A project by slugs as the caller sees it: its own personal project exists from the first call."""
        if namespace == PERSONAL_NAMESPACE and slug == f"user-{principal.user_id}":
            await self.personal_project(principal)
        return await self.project(namespace, slug)

    async def _require_namespace(self, slug: str) -> None:
        if slug in self._namespaces:
            return
        if await self.repo.namespace(slug) is None:
            raise NotFound("Namespace not found")
        self._namespaces.remember(slug, True)

    async def require_project_writer(self, principal: Principal, project: Document) -> None:
        """Owners and editors of the project, admins, and a user in its own personal project; else 404."""
        if project["_id"] == f"personal-{principal.user_id}":
            return
        if not (await self.access.project_role(principal, project["_id"])).can_write:
            raise NotFound("Project not found")  # callers with no write role learn nothing about it

    async def create_dataset(self, principal: Principal, namespace: str, slug: str, name: str) -> Document:
        """A project editor (or admin) creates a dataset in the project."""
        project = await self.project_for(principal, namespace, slug)
        await self.require_project_writer(principal, project)
        doc = {"_id": new_id("ds_"), "project_id": project["_id"], "name": name, "created_at": timestamp()}
        event = ev.event(
            "catalog.dataset.created",
            ev.NamedEntityCreated(name=name),
            actor=principal.user_id,
            dataset_id=doc["_id"],
            project_id=project["_id"],
        )
        await self.repo.insert(self.repo.datasets, doc, event)
        self._datasets.remember(doc["_id"], project["_id"])
        return doc

    async def _require_dataset(self, dataset_id: str, project_id: str) -> None:
        owner = self._datasets.get(dataset_id)
        if owner is None:
            doc = await self.repo.dataset(dataset_id)
            owner = doc["project_id"] if doc else None
            if owner is not None:
                self._datasets.remember(dataset_id, owner)
        if owner != project_id:
            raise NotFound("Dataset not found")

    async def personal_project(self, principal: Principal) -> str:
        """The caller's default project for dialects B and C (created on first use, then cached)."""
        slug = f"user-{principal.user_id}"
        cached = self._projects.get((PERSONAL_NAMESPACE, slug))
        if cached is not None:
            return str(cached["_id"])
        doc = {
            "_id": f"personal-{principal.user_id}",
            "key": f"{PERSONAL_NAMESPACE}/{slug}",
            "namespace": PERSONAL_NAMESPACE,
            "slug": slug,
            "name": f"{principal.email} (personal)",
            "created_at": timestamp(),
        }
        await self.repo.upsert_quietly(self.repo.projects, doc)
        self._projects.remember((PERSONAL_NAMESPACE, slug), doc)
        return str(doc["_id"])

    async def ensure_personal_namespace(self) -> None:
        """The namespace that holds every user's personal project."""
        await self.repo.upsert_quietly(
            self.repo.namespaces,
            {
                "_id": PERSONAL_NAMESPACE,
                "slug": PERSONAL_NAMESPACE,
                "name": "Personal",
                "created_at": timestamp(),
            },
        )

    # --- the item registry --------------------------------------------------------------------------------
    async def create_item(
        self, principal: Principal, kind: ItemKind, item_id: str | None, name: str, url: str | None
    ) -> Document:
        """Register an asset or model (any authenticated caller; it becomes the owner)."""
        doc: Document = {
            "_id": item_id or new_id(f"{kind}_"),
            "name": name,
            "owner_id": principal.user_id,
            "deleted": False,
            "created_at": timestamp(),
        }
        if kind == "asset" and url is not None:
            doc["url"] = url  # 003 types `url` as a string: an asset without one has no key at all
        event = ev.event(
            f"catalog.{kind}.created",
            ev.NamedEntityCreated(name=name),
            actor=principal.user_id,
            **{f"{kind}_id": doc["_id"]},
        )
        try:
            await self.repo.insert(self.repo.items[kind], doc, event)
        except Conflict as exc:
            raise Conflict(f"{kind} id already exists") from exc
        self._items.remember((kind, doc["_id"]), doc)
        return doc

    async def get_item(self, kind: ItemKind, item_id: str) -> Document:
        """One asset or model; 404 when unknown or deleted."""
        doc = await self.repo.item(kind, item_id)
        if doc is None:
            raise NotFound(f"{kind} not found")
        return doc

    async def delete_item(self, principal: Principal, kind: ItemKind, item_id: str) -> None:
        """Its owner or an admin removes an item from the registry (collections keep the id)."""
        event = ev.event(
            f"catalog.{kind}.deleted", ev.EntityDeleted(), actor=principal.user_id, **{f"{kind}_id": item_id}
        )
        owner = None if principal.is_admin else principal.user_id
        if not await self.repo.delete_item(kind, item_id, timestamp(), event, owner_id=owner):
            # Only on the failure path: tell "no such item" from "someone else's".
            await self.get_item(kind, item_id)
            raise Forbidden(f"only the owner may delete this {kind}")
        self._items.pop((kind, item_id), None)

    async def known_items(self, kind: ItemKind, ids: list[str]) -> dict[str, Document]:
        """The registry entries of `ids` (from cache, reading only the ones not seen yet)."""
        found = {i: self._items[(kind, i)] for i in ids if (kind, i) in self._items}
        missing = [i for i in ids if i not in found]
        if missing:
            for doc in await self.repo.existing_items(kind, missing):
                self._items.remember((kind, doc["_id"]), doc)
                found[doc["_id"]] = doc
        return found

    # --- access -------------------------------------------------------------------------------------------
    async def _permissions(self, principal: Principal, doc: Document) -> Permissions:
        ref = CollectionRef(collection_id=doc["_id"], owner_id=doc["owner_id"], project_id=doc["project_id"])
        self._refs.remember(ref.collection_id, ref)
        return await self.access.permissions(principal, ref)

    async def _ref(self, collection_id: str) -> CollectionRef:
        """Owner and project of a collection (cached: they never change)."""
        ref = self._refs.get(collection_id)
        if ref is None:
            doc = await self.repo.collection(collection_id, {"owner_id": 1, "project_id": 1})
            if doc is None:
                raise collection_not_found()
            ref = CollectionRef(
                collection_id=collection_id, owner_id=doc["owner_id"], project_id=doc["project_id"]
            )
            self._refs.remember(collection_id, ref)
        return ref

    async def _require(
        self, principal: Principal, ref: CollectionRef, need: Literal["read", "write"]
    ) -> None:
        permissions = await self.access.permissions(principal, ref)
        if not permissions.read:
            raise collection_not_found()
        if need == "write" and not permissions.write:
            raise Forbidden("you may not change this collection")

    # --- reading ------------------------------------------------------------------------------------------
    async def get(self, principal: Principal, collection_id: str, *, with_nodes: bool = False) -> Document:
        """One collection the caller may read (one command)."""
        doc = await self.repo.collection(collection_id, WITH_NODES if with_nodes else WITHOUT_MEMBERS)
        if doc is None or not (await self._permissions(principal, doc)).read:
            raise collection_not_found()
        return doc

    async def resolve_name(self, project_id: str, name: str) -> str:
        """The id of the live collection with this name in the project."""
        key = name_key(project_id, name)
        cached = self._names.get(key)
        if cached is not None:
            return str(cached)
        doc = await self.repo.collection_by_name(key, {"_id": 1, "owner_id": 1, "project_id": 1})
        if doc is None:
            doc = await self.repo.first_named(project_id, name, {"_id": 1, "owner_id": 1, "project_id": 1})
        if doc is None:
            raise collection_not_found()
        self._names.remember(key, doc["_id"])
        self._refs.remember(
            doc["_id"],
            CollectionRef(collection_id=doc["_id"], owner_id=doc["owner_id"], project_id=project_id),
        )
        return str(doc["_id"])

    async def by_name(self, project_id: str, name: str, operation: Callable[[str, str], Awaitable[T]]) -> T:
        """Run a write on the collection named `name`; a stale cached name is dropped and resolved once more.

        The write keeps the name in its filter, so a stale id can only miss, never change another collection.
        """
        key = name_key(project_id, name)
        was_cached = key in self._names
        collection_id = await self.resolve_name(project_id, name)
        try:
            return await operation(collection_id, name)
        except NotFound:
            if not was_cached:
                raise
            self._names.pop(key, None)
            fresh = await self.resolve_name(project_id, name)
            if fresh == collection_id:
                raise
            return await operation(fresh, name)

    async def get_by_name(self, principal: Principal, project_id: str, name: str) -> Document:
        """Dialect A: one collection by name, with its members."""
        key = name_key(project_id, name)
        cached = self._names.get(key)
        doc = None
        if cached is not None:
            doc = await self.repo.collections.find_one(
                {"_id": cached, "name": name, "deleted": False}, WITH_NODES
            )
        if doc is None:
            doc = await self.repo.collection_by_name(key, WITH_NODES)
            if doc is None:
                doc = await self.repo.first_named(project_id, name, WITH_NODES)
            if doc is None:
                raise collection_not_found()
            self._names.remember(key, doc["_id"])
        if not (await self._permissions(principal, doc)).read:
            raise collection_not_found()
        return doc

    async def list_in_project(
        self, principal: Principal, project_id: str, *, page: int, page_size: int, dataset_id: str | None
    ) -> tuple[list[Document], int]:
        """Dialect A: a page of the project's collections the caller may see, and their total."""
        selector: Document = {"project_id": project_id}
        if dataset_id is not None:
            selector["dataset_id"] = dataset_id
        if not principal.is_admin:
            visibility = await self.access.visibility(principal)
            if project_id not in visibility.project_ids:
                selector["$or"] = [
                    {"owner_id": principal.user_id},
                    {"_id": {"$in": visibility.collection_ids}},
                ]
        return await self.repo.page_with_total(
            selector, WITH_NODES, skip=(page - 1) * page_size, limit=page_size
        )

    async def _visible_selector(self, principal: Principal) -> Document:
        if principal.is_admin:
            return {}
        visibility = await self.access.visibility(principal)
        return {
            "$or": [
                {"owner_id": principal.user_id},
                {"_id": {"$in": visibility.collection_ids}},
                {"project_id": {"$in": visibility.project_ids}},
            ]
        }

    async def list_visible(
        self, principal: Principal, *, page_size: int, token: str | None
    ) -> tuple[list[Document], str | None]:
        """Dialect C: a keyset page of what the caller may see, oldest first, and the next token."""
        after = None if token is None else self.cursors.decode_cursor(principal.user_id, token)
        selector = await self._visible_selector(principal)
        if after is not None:
            selector = {"$and": [selector, {"_id": {"$gt": after}}]} if selector else {"_id": {"$gt": after}}
        docs = await self.repo.find_collections(
            selector, WITHOUT_MEMBERS, sort=[("_id", 1)], skip=0, limit=page_size + 1
        )
        last = docs[page_size - 1]["_id"] if len(docs) > page_size else None
        next_token = None if last is None else self.cursors.encode_cursor(principal.user_id, last)
        return docs[:page_size], next_token

    async def visible_ids(self, principal: Principal) -> list[str]:
        """Dialect B: ids of every collection the caller may see."""
        selector = await self._visible_selector(principal)
        docs = await self.repo.find_collections(selector, {"_id": 1}, sort=[("_id", 1)], skip=0, limit=0)
        return [doc["_id"] for doc in docs]

    # --- creating -----------------------------------------------------------------------------------------
    async def create(
        self,
        principal: Principal,
        project_id: str,
        *,
        name: str,
        unique_name: bool,
        description: str | None = None,
        category: str | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        dataset_id: str | None = None,
        nodes: list[str] | None = None,
    ) -> Document:
        """Create a collection; with `unique_name` (dialect A) a taken name is a 409."""
        if dataset_id is not None:
            await self._require_dataset(dataset_id, project_id)
        now = timestamp()
        collection_id = new_id()
        members = list(dict.fromkeys(nodes or []))
        doc: Document = {
            "_id": collection_id,
            "project_id": project_id,
            "owner_id": principal.user_id,
            "owner_email": principal.email,
            "name": name,
            "name_key": name_key(project_id, name),
            "original_title": name,
            "description": description,
            "category": category,
            "tags": list(tags or []),
            "metadata": dict(metadata or {}),
            "dataset_id": dataset_id,
            "nodes": members,
            "assets": [],
            "models": [],
            "node_count": len(members),
            "asset_count": 0,
            "model_count": 0,
            "thumbnail": None,
            "is_public": False,
            "deleted": False,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        event = ev.event(
            "catalog.collection.created",
            ev.CollectionCreated(
                name=name, owner_id=principal.user_id, description=description, dataset_id=dataset_id
            ),
            actor=principal.user_id,
            collection_id=collection_id,
            project_id=project_id,
        )
        if not unique_name:
            # Titles repeat freely in dialects B and C, so they never claim the project's unique name.
            doc["name_key"] = free_key(project_id, name, collection_id)
        try:
            await self.repo.insert_collection(doc, event)
        except DuplicateKeyError as exc:
            raise Conflict("Collection name already exists in this project") from exc
        self._refs.remember(
            collection_id,
            CollectionRef(collection_id=collection_id, owner_id=principal.user_id, project_id=project_id),
        )
        if unique_name:
            self._names.remember(doc["name_key"], collection_id)
        return doc

    # --- changing -----------------------------------------------------------------------------------------
    async def update(
        self,
        principal: Principal,
        collection_id: str,
        changes: dict[str, Any],
        *,
        expected_name: str | None = None,
        unique_name: bool = False,
        projection: dict[str, int] = WITHOUT_MEMBERS,
    ) -> Document:
        """Change fields of a collection the caller may write (one command); 409 on a taken name (A)."""
        ref = await self._ref(collection_id)
        await self._require(principal, ref, "write")
        if "dataset_id" in changes and changes["dataset_id"] is not None:
            await self._require_dataset(changes["dataset_id"], ref.project_id)
        update_set: Document = {**changes, "updated_at": timestamp()}
        if "name" in changes:
            update_set["name_key"] = name_key(ref.project_id, changes["name"])
        if "nodes" in changes:
            update_set["nodes"] = list(dict.fromkeys(changes["nodes"]))
            update_set["node_count"] = len(update_set["nodes"])
        selector: Document = {"_id": collection_id}
        if expected_name is not None:
            selector["name"] = expected_name
        event_changes = {k: v for k, v in changes.items() if k != "nodes"}
        if "nodes" in changes:
            event_changes["members"] = update_set["nodes"]
        event = ev.event(
            "catalog.collection.updated",
            ev.CollectionUpdated(name=changes.get("name", expected_name or ""), changes=event_changes),
            actor=principal.user_id,
            collection_id=collection_id,
            project_id=ref.project_id,
        )
        if "name" in changes and not unique_name:
            update_set["name_key"] = free_key(ref.project_id, changes["name"], collection_id)
        doc = await self._update_naming(selector, update_set, event, projection, collection_id)
        if doc is None:
            raise Conflict("Collection name already exists in this project")
        if doc is None:
            raise collection_not_found()
        if expected_name is not None and "name" in changes:
            self._names.pop(name_key(ref.project_id, expected_name), None)
            self._names.remember(update_set["name_key"], collection_id)
        return doc

    async def _update_naming(
        self,
        selector: Document,
        update_set: Document,
        event: Any,
        projection: dict[str, int],
        collection_id: str,
    ) -> Document | None:
        """Apply a `$set`; None when a new name key is taken by another collection; 404 when it is gone.

        MongoDB raises DuplicateKeyError for a taken key; the stand-in's findAndModify returns no document
        instead (docs/mongo.md). Both end here, and only then is the name looked up to tell them apart, so
        the failure path pays one more command and the success path none.
        """
        update = {"$set": update_set, "$inc": {"version": 1}}
        try:
            doc = await self.repo.update_collection(selector, update, event, projection)
        except DuplicateKeyError:
            return None
        if doc is None:
            holder = None
            if "name_key" in update_set:
                holder = await self.repo.collection_by_name(update_set["name_key"], {"_id": 1})
            if holder is None or holder["_id"] == collection_id:
                raise collection_not_found()
        return doc

    async def delete(
        self, principal: Principal, collection_id: str, *, expected_name: str | None = None
    ) -> None:
        """Soft-delete: the document stays, the name is free again, every dialect answers 404 after."""
        ref = await self._ref(collection_id)
        await self._require(principal, ref, "write")
        selector: Document = {"_id": collection_id}
        if expected_name is not None:
            selector["name"] = expected_name
        now = timestamp()
        event = ev.event(
            "catalog.collection.deleted",
            ev.CollectionDeleted(name=expected_name or ""),
            actor=principal.user_id,
            collection_id=collection_id,
            project_id=ref.project_id,
        )
        tombstone = f"{ref.project_id}{SEPARATOR}deleted{SEPARATOR}{collection_id}"
        doc = await self.repo.update_collection(
            selector,
            {
                "$set": {"deleted": True, "deleted_at": now, "updated_at": now, "name_key": tombstone},
                "$inc": {"version": 1},
            },
            event,
            {"name": 1, "name_key": 1},
            before=True,
        )
        if doc is None:
            raise collection_not_found()
        self._names.pop(doc["name_key"], None)

    async def change_members(
        self,
        principal: Principal,
        collection_id: str,
        field: MemberField,
        ids: list[str],
        *,
        add: bool,
        expected_name: str | None = None,
        projection: dict[str, int] = WITHOUT_MEMBERS,
    ) -> tuple[Document, list[str]]:
        """Add or remove members; return the document as it was before (but with the new `updated_at`)
        and the ids that actually changed.

        Fast path, one command: when none of the ids is present (add) or all are (remove), the update is
        filtered on exactly that, so the event names exactly the ids that changed. Otherwise the document is
        read and the change retried with a version check, naming only the ids that really change.
        """
        ref = await self._ref(collection_id)
        await self._require(principal, ref, "write")
        ids = list(dict.fromkeys(ids))
        now = timestamp()
        selector: Document = {"_id": collection_id}
        if expected_name is not None:
            selector["name"] = expected_name
        fast: Document = {str(field): {"$nin": ids}} if add else {str(field): {"$all": ids}}
        doc = await self.repo.update_collection(
            {**selector, **fast},
            self._member_update(field, ids, add, now),
            self._member_event(principal, ref, field, ids, add),
            projection,
            before=True,
        )
        if doc is not None:
            return {**doc, "updated_at": now}, ids
        for _ in range(MAX_CAS_ATTEMPTS):
            current = await self.repo.collections.find_one(
                {**selector, "deleted": False}, projection_with(projection, field)
            )
            if current is None:
                raise collection_not_found()
            present = set(current.get(field, []))
            changed = [i for i in ids if (i not in present) == add]
            if not changed:
                return current, []
            doc = await self.repo.update_collection(
                {**selector, "version": current["version"]},
                self._member_update(field, changed, add, now),
                self._member_event(principal, ref, field, changed, add),
                projection,
                before=True,
            )
            if doc is not None:
                return {**doc, "updated_at": now}, changed
        raise Conflict("the collection is changing too fast; try again")

    @staticmethod
    def _member_update(field: MemberField, ids: list[str], add: bool, now: str) -> Document:
        key = str(field)
        # `$push`, not `$addToSet`: the filter (`$nin`, or the version read) already proves every id is new,
        # and `$addToSet` dedupes by scanning, which is quadratic on the stand-in (10k ids: ~10 s).
        change: Document = {"$push": {key: {"$each": ids}}} if add else {"$pull": {key: {"$in": ids}}}
        return {
            **change,
            "$inc": {COUNT_FIELD[field]: len(ids) if add else -len(ids), "version": 1},
            "$set": {"updated_at": now},
        }

    @staticmethod
    def _member_event(
        principal: Principal, ref: CollectionRef, field: MemberField, ids: list[str], add: bool
    ) -> Any:
        return ev.event(
            EVENTS[(field, add)],
            ev.ItemsChanged(kind=KIND[field], ids=ids),
            actor=principal.user_id,
            collection_id=ref.collection_id,
            project_id=ref.project_id,
        )

    async def link_items(
        self, principal: Principal, collection_id: str, kind: ItemKind, ids: list[str], *, add: bool
    ) -> Document:
        """Dialects B and C: link or unlink registered assets or models; unknown ids are rejected (400)."""
        known = await self.known_items(kind, list(dict.fromkeys(ids)))
        if unknown := [i for i in ids if i not in known]:
            raise Invalid(
                f"{kind} not found: {', '.join(unknown[:10])}", wording={Dialect.B: f"{kind} not found"}
            )
        field: MemberField = "assets" if kind == "asset" else "models"
        before, changed = await self.change_members(
            principal, collection_id, field, ids, add=add, projection=WITHOUT_MEMBERS
        )
        doc = apply_counts(before, field, changed, add)
        if kind == "asset":
            doc = await self._keep_thumbnail(
                principal, doc=doc, before=before, changed=changed, add=add, known=known
            )
        return doc

    async def _keep_thumbnail(
        self,
        principal: Principal,
        *,
        doc: Document,
        before: Document,
        changed: list[str],
        add: bool,
        known: dict[str, Document],
    ) -> Document:
        """The first asset added while none is set becomes the thumbnail; removing it clears it."""
        thumbnail = before.get("thumbnail")
        if add and thumbnail is None and changed:
            new = {"asset_id": changed[0], "url": known[changed[0]].get("url")}
        elif not add and thumbnail is not None and thumbnail["asset_id"] in changed:
            new = None
        else:
            return doc
        await self._set_thumbnail(principal, doc, new, only_if=thumbnail)
        return {**doc, "thumbnail": new}

    async def _set_thumbnail(
        self, principal: Principal, doc: Document, thumbnail: Document | None, *, only_if: Any = ...
    ) -> None:
        selector: Document = {"_id": doc["_id"]}
        if only_if is not ...:
            selector["thumbnail"] = only_if
        event = ev.event(
            "catalog.collection.thumbnail_set",
            ev.ThumbnailSet(asset_id=thumbnail["asset_id"] if thumbnail else None),
            actor=principal.user_id,
            collection_id=doc["_id"],
            project_id=doc["project_id"],
        )
        await self.repo.update_collection(selector, {"$set": {"thumbnail": thumbnail}}, event, {"_id": 1})

    async def update_c(
        self, principal: Principal, collection_id: str, name: str | None, thumbnail_asset: str | None
    ) -> Document:
        """Dialect C's PUT: rename and/or choose the thumbnail among the collection's assets."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if thumbnail_asset is not None:
            ref = await self._ref(collection_id)
            await self._require(principal, ref, "write")
            member = await self.repo.collections.find_one(
                {"_id": collection_id, "deleted": False, "assets": thumbnail_asset}, {"_id": 1}
            )
            if member is None:
                raise Invalid("thumbnail asset is not in this collection")
            known = await self.known_items("asset", [thumbnail_asset])
            url = known[thumbnail_asset].get("url") if thumbnail_asset in known else None
            changes["thumbnail"] = {"asset_id": thumbnail_asset, "url": url}
        if not changes:
            return await self.get(principal, collection_id)
        return await self.update(principal, collection_id, changes)


def projection_with(projection: dict[str, int], field: str) -> dict[str, int]:
    """The projection, but including one member array and the version (never mixing in and out)."""
    if any(value == 0 for value in projection.values()):
        return {k: v for k, v in projection.items() if k != field}
    return {**projection, field: 1, "version": 1}


def apply_counts(before: Document, field: MemberField, changed: list[str], add: bool) -> Document:
    """The document after a membership change, from the one before it (counts and, if read, the array)."""
    doc = dict(before)
    count = COUNT_FIELD[field]
    doc[count] = before.get(count, 0) + (len(changed) if add else -len(changed))
    if field in before:
        if add:
            doc[field] = [*before[field], *changed]
        else:
            gone = set(changed)
            doc[field] = [m for m in before[field] if m not in gone]
    return doc

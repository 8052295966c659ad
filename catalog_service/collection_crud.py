"""Use cases of collections themselves: create, read, list, update and delete, in every dialect.

Every request spends at most one MongoDB command at steady state on the collection: slugs, names and
owners are resolved from in-process caches (catalog_service/lookup.py), and writes go by `_id`, with the
name kept in the filter so that a stale name cache can never redirect a write. Members are the business
of catalog_service/membership.py.
"""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError

from catalog_service.ids import new_id
from catalog_service.items import Registry
from catalog_service.lookup import (
    SEPARATOR,
    CollectionLookup,
    collection_not_found,
    free_key,
    name_key,
    selector_of,
)
from catalog_service.member_repository import MemberKind
from catalog_service.membership import Membership, now_ms, thumbnail_of
from catalog_service.projects import Projects
from catalog_service.reader_views import EVERYONE, ReaderViews, user_reader, view_key
from catalog_service.repository import WITHOUT_MEMBERS, CatalogRepository
from catalog_service.schemas import CollectionImport
from shared import event_types as ev
from shared.catalog_directory import VisibilityFact
from shared.clock import timestamp
from shared.cursors import InvalidToken, TokenSigner
from shared.errors import Conflict, Invalid
from shared.events import EventEnvelope
from shared.mongo import Document
from shared.principal import Principal, require_admin


class ListCursors:
    """Dialect C's list `paginationToken`: signed, and bound to the caller it was issued to."""

    def __init__(self, secret: str) -> None:
        self._signer = TokenSigner(secret, "catalog-list")

    def encode_cursor(self, user_id: int, position: int) -> str:
        """An opaque pagination token for the position in this user's list a page ended at."""
        return self._signer.issue(_list_scope(user_id), str(position))

    def decode_cursor(self, user_id: int, token: str) -> int:
        """The position a token continues after; 400 for anything not issued to this user."""
        try:
            position = self._signer.verify(_list_scope(user_id), token)
        except InvalidToken as exc:
            raise Invalid("invalid paginationToken") from exc
        if not position.isascii() or not position.isdigit():
            raise Invalid("invalid paginationToken")
        return int(position)


def collection_document(
    collection_id: str,
    project_id: str,
    owner: Principal,
    *,
    name: str,
    key: str,
    description: str | None = None,
    category: str | None = None,
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    dataset_id: str | None = None,
) -> Document:
    """A new collection as it is stored (members live in their own documents, counters here)."""
    now = timestamp()
    return {
        "_id": collection_id,
        "project_id": project_id,
        "owner_id": owner.user_id,
        "owner_email": owner.email,
        "name": name,
        "name_key": key,
        "original_title": name,
        "description": description,
        "category": category,
        "tags": list(tags or []),
        "metadata": dict(metadata or {}),
        "dataset_id": dataset_id,
        "node_count": 0,
        "asset_count": 0,
        "model_count": 0,
        "thumbnail": None,
        "is_public": False,
        "deleted": False,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _list_scope(user_id: int) -> str:
    """What a list token pages: one caller's view (another caller's token is refused)."""
    return f"user:{user_id}"


def access_versions(facts: list[VisibilityFact]) -> dict[str, int]:
    """The newest access version each shared collection's facts carry (share facts name a collection)."""
    versions: dict[str, int] = {}
    for fact in facts:
        if fact.kind == "share" and fact.collection_id is not None:
            versions[fact.collection_id] = max(fact.version, versions.get(fact.collection_id, 0))
    return versions


class Collections:
    """Collections: one model behind all three dialects."""

    def __init__(
        self,
        repository: CatalogRepository,
        *,
        lookup: CollectionLookup,
        projects: Projects,
        registry: Registry,
        membership: Membership,
        views: ReaderViews,
        cursors: ListCursors,
    ) -> None:
        self.repo = repository
        self.lookup = lookup
        self.projects = projects
        self.registry = registry
        self.membership = membership
        self.views = views
        self.cursors = cursors

    # --- reading ------------------------------------------------------------------------------------------
    async def get(self, principal: Principal, collection_id: str) -> Document:
        """One collection the caller may read (one command)."""
        doc = await self.repo.collection(collection_id, WITHOUT_MEMBERS)
        if doc is None or not (await self.lookup.permissions(principal, doc)).read:
            raise collection_not_found()
        return doc

    async def get_by_name(self, principal: Principal, project_id: str, name: str) -> Document:
        """Dialect A: one collection by name (its members are streamed by the caller)."""
        doc = await self.lookup.named(project_id, name, WITHOUT_MEMBERS)
        if doc is None or not (await self.lookup.permissions(principal, doc)).read:
            raise collection_not_found()
        return doc

    async def list_in_project(
        self, principal: Principal, project_id: str, *, page: int, page_size: int, dataset_id: str | None
    ) -> tuple[list[Document], int]:
        """Dialect A: a page of the project's collections the caller may see, and their total (two
        commands: the page of the caller's view, then those collections by id)."""
        found = await self.views.project_page(
            principal.user_id,
            principal.is_admin,
            project_id,
            dataset_id or "",
            after=(page - 1) * page_size,
            size=page_size,
        )
        return await self.repo.live_by_ids(found.ids, WITHOUT_MEMBERS), found.size

    @staticmethod
    def _view(principal: Principal) -> str:
        """The caller's list in dialects B and C: everything for an admin."""
        return view_key(EVERYONE if principal.is_admin else user_reader(principal.user_id))

    async def list_visible(
        self, principal: Principal, *, page_size: int, token: str | None
    ) -> tuple[list[Document], str | None]:
        """Dialect C: a page of what the caller may see, in the order it became visible, and the next token
        (two commands: the page of the caller's view, then those collections by id)."""
        after = 0 if token is None else self.cursors.decode_cursor(principal.user_id, token)
        found = await self.views.page(self._view(principal), after, page_size)
        end = after + len(found.ids)
        next_token = self.cursors.encode_cursor(principal.user_id, end) if end < found.size else None
        return await self.repo.live_by_ids(found.ids, WITHOUT_MEMBERS), next_token

    async def visible_ids(self, principal: Principal) -> list[str]:
        """Dialect B: ids of every collection the caller may see (one command: the caller's view)."""
        return await self.views.all_ids(self._view(principal))

    async def views_follow(self, collection_id: str, token: str, created: Document | None = None) -> None:
        """Bring the lists up to date with a collection's creation, deletion or move, then drop its mark
        (a crash before that leaves the mark, and recovery does it)."""
        await self.views.collection_changed(collection_id, created)
        await self.repo.collection_views_done(collection_id, token)

    async def access_changed(self, facts: list[VisibilityFact]) -> int:
        """access_service's facts, before it answers the change: first each shared collection's access
        version rises (so a revoked reader's cached allow is refused from the next request, on every
        replica), then the lists follow; how many facts the lists applied."""
        await self.repo.raise_access_versions(access_versions(facts))
        return await self.views.apply_facts(facts)

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
        collection_id: str | None = None,
        owner: Principal | None = None,
    ) -> Document:
        """Create a collection (with its first nodes, dialect A); with `unique_name` a taken name is 409.

        `collection_id` and `owner` are an import's (`import_collection`): by default a new id, the caller.
        In a personal project the project's owner owns it, whoever creates it (docs/access.md).
        """
        if dataset_id is not None:
            await self.projects.require_dataset(dataset_id, project_id)
        owner = await self.projects.collection_owner(project_id, owner or principal)
        collection_id = collection_id or new_id()
        doc = collection_document(
            collection_id,
            project_id,
            owner,
            name=name,
            # Titles repeat freely in dialects B and C, so they never claim the project's unique name.
            key=name_key(project_id, name) if unique_name else free_key(project_id, name, collection_id),
            description=description,
            category=category,
            tags=tags,
            metadata=metadata,
            dataset_id=dataset_id,
        )
        views_token = new_id()
        doc |= {"views_due": views_token, "vd": 1}
        event = ev.event(
            "catalog.collection.created",
            ev.CollectionCreated(
                name=name, owner_id=owner.user_id, description=description, dataset_id=dataset_id
            ),
            actor=principal.user_id,
            collection_id=collection_id,
            project_id=project_id,
        )
        first = list(dict.fromkeys(nodes or []))
        kind: MemberKind = "node"
        change = (
            self.membership.members.begin_with_new_collection(
                doc, kind, len(first), principal.user_id, now_ms()
            )
            if first
            else None
        )
        try:
            await self.repo.insert_collection(doc, event)
        except DuplicateKeyError as exc:
            raise Conflict("Collection name already exists in this project") from exc
        self.lookup.remember(doc)
        if unique_name:
            self.lookup.names.remember(doc["name_key"], collection_id)
        if change is not None:  # first, while the change is young (the views may take a while)
            # The created event stands for the first members too (as it always has): no members event.
            doc, _ = await self.membership.complete(
                change, first, actor=principal.user_id, project_id=project_id, announce=False
            )
        await self.views_follow(collection_id, views_token, created=doc)
        return doc

    async def import_collection(self, principal: Principal, data: CollectionImport) -> Document:
        """An admin creates a collection with the id and owner an export recorded: 409 when the id is taken
        (the importer then lets this hub choose one), or when the name is taken in the project."""
        require_admin(principal)
        owner = Principal(user_id=data.owner_id, email=data.owner_email, role="user", auth="api_key")
        project = await self.projects.project_for(owner, data.namespace, data.project)
        if await self.repo.collection_any(data.id, {"_id": 1}) is not None:
            raise Conflict("collection id already exists")
        return await self.create(
            principal,
            project["_id"],
            name=data.name,
            unique_name=data.unique_name,
            description=data.description,
            category=data.category,
            tags=data.tags,
            metadata=data.metadata,
            collection_id=data.id,
            owner=owner,
        )

    # --- changing -----------------------------------------------------------------------------------------
    async def update(
        self,
        principal: Principal,
        collection_id: str,
        changes: dict[str, Any],
        *,
        expected_name: str | None = None,
        unique_name: bool = False,
    ) -> Document:
        """Change fields (and, in dialect A, replace the nodes) of a collection the caller may write;
        one command for the fields; 409 on a taken name (A)."""
        fields = {key: value for key, value in changes.items() if key != "nodes"}
        doc = None
        if fields:
            doc = await self._update_fields(
                principal, collection_id, fields, expected_name=expected_name, unique_name=unique_name
            )
        if "nodes" in changes:
            name = fields.get("name", expected_name)
            doc = await self.membership.replace_nodes(
                principal, collection_id, changes["nodes"], expected_name=name
            )
        if doc is None:
            raise Invalid("nothing to update")
        return doc

    async def _update_fields(
        self,
        principal: Principal,
        collection_id: str,
        changes: dict[str, Any],
        *,
        expected_name: str | None,
        unique_name: bool,
    ) -> Document:
        ref = await self.lookup.ref(collection_id)
        await self.lookup.require(principal, ref, "write")
        if changes.get("dataset_id") is not None:
            await self.projects.require_dataset(changes["dataset_id"], ref.project_id)
        update_set: Document = {**changes, "updated_at": timestamp()}
        views_token = None
        if "dataset_id" in changes:  # dialect A's lists per dataset follow
            views_token = update_set["views_due"] = new_id()
            update_set["vd"] = 1
        if "name" in changes:
            update_set["name_key"] = (
                name_key(ref.project_id, changes["name"])
                if unique_name
                else free_key(ref.project_id, changes["name"], collection_id)
            )
        selector = selector_of(collection_id, expected_name)
        event = ev.event(
            "catalog.collection.updated",
            ev.CollectionUpdated(name=changes.get("name", expected_name or ""), changes=changes),
            actor=principal.user_id,
            collection_id=collection_id,
            project_id=ref.project_id,
        )
        doc = await self._update_naming(selector, update_set, event, collection_id)
        if doc is None:
            raise Conflict("Collection name already exists in this project")
        if expected_name is not None and "name" in changes:
            self.lookup.names.pop(name_key(ref.project_id, expected_name), None)
            self.lookup.names.remember(update_set["name_key"], collection_id)
        if views_token is not None:
            await self.views_follow(collection_id, views_token)
        return doc

    async def _update_naming(
        self, selector: Document, update_set: Document, event: EventEnvelope, collection_id: str
    ) -> Document | None:
        """Apply a `$set`; None when a new name key is taken by another collection; 404 when it is gone.

        MongoDB raises DuplicateKeyError for a taken key; the stand-in's findAndModify returns no document
        instead (docs/mongo.md). Both end here, and only then is the name looked up to tell them apart, so
        the failure path pays one more command and the success path none.
        """
        update = {"$set": update_set, "$inc": {"version": 1}}
        try:
            doc = await self.repo.update_collection(selector, update, event, WITHOUT_MEMBERS)
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
        ref = await self.lookup.ref(collection_id)
        await self.lookup.require(principal, ref, "write")
        selector = selector_of(collection_id, expected_name)
        now = timestamp()
        event = ev.event(
            "catalog.collection.deleted",
            ev.CollectionDeleted(name=expected_name or ""),
            actor=principal.user_id,
            collection_id=collection_id,
            project_id=ref.project_id,
        )
        tombstone = f"{ref.project_id}{SEPARATOR}deleted{SEPARATOR}{collection_id}"
        views_token = new_id()
        doc = await self.repo.update_collection(
            selector,
            {
                "$set": {
                    "deleted": True,
                    "deleted_at": now,
                    "updated_at": now,
                    "name_key": tombstone,
                    "views_due": views_token,
                    "vd": 1,
                },
                "$inc": {"version": 1},
            },
            event,
            {"name": 1, "name_key": 1},
            before=True,
        )
        if doc is None:
            raise collection_not_found()
        self.lookup.names.pop(doc["name_key"], None)
        await self.views_follow(collection_id, views_token)

    async def update_c(
        self, principal: Principal, collection_id: str, name: str | None, thumbnail_asset: str | None
    ) -> Document:
        """Dialect C's PUT: rename and/or choose the thumbnail among the collection's assets."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if thumbnail_asset is not None:
            ref = await self.lookup.ref(collection_id)
            await self.lookup.require(principal, ref, "write")
            if not await self.membership.is_member(collection_id, "asset", thumbnail_asset):
                raise Invalid("thumbnail asset is not in this collection")
            known = await self.registry.known_items("asset", [thumbnail_asset])
            changes["thumbnail"] = thumbnail_of(thumbnail_asset, known)
        if not changes:
            return await self.get(principal, collection_id)
        doc = await self.update(principal, collection_id, changes)
        if thumbnail_asset is not None:  # an unlink may have raced the choice (it read the old thumbnail)
            doc = await self.membership.recheck_thumbnail(doc, thumbnail_asset, principal.user_id)
        return doc

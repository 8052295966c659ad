"""Finding a collection and deciding on it: owner and project by id, ids by name (both cached, since they
never change under a live collection), and the caller's permissions from access_service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from catalog_service.repository import ACCESS_VERSION, CatalogRepository
from shared.authz import AccessDecisions, CollectionRef, Permissions
from shared.errors import Dialect, Forbidden, NotFound
from shared.mongo import Document
from shared.principal import Principal

SEPARATOR = "\x1f"  # names may not contain control characters, so this never clashes with a name
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


def selector_of(collection_id: str, expected_name: str | None) -> Document:
    """A write's filter: by `_id`, and by name too when the caller addressed it by name (dialect A), so a
    stale cached name can only miss, never change another collection."""
    selector: Document = {"_id": collection_id}
    if expected_name is not None:
        selector["name"] = expected_name
    return selector


class BoundedCache(dict[Any, Any]):
    """A dict that forgets everything when it grows past its limit (entries are cheap to re-read)."""

    def remember(self, key: Any, value: Any) -> None:
        """Store, clearing first when full."""
        if len(self) >= CACHE_LIMIT:
            self.clear()
        self[key] = value


class CollectionLookup:
    """Collection refs and names, cached; what a caller may do with a collection, asked of access_service."""

    def __init__(self, repository: CatalogRepository, access: AccessDecisions) -> None:
        self.repo = repository
        self.access = access
        self.refs = BoundedCache()  # collection id -> CollectionRef
        self.names = BoundedCache()  # name key -> collection id

    def remember(self, doc: Document) -> CollectionRef:
        """Cache the ref of a collection document just read or written."""
        ref = CollectionRef(collection_id=doc["_id"], owner_id=doc["owner_id"], project_id=doc["project_id"])
        self.refs.remember(ref.collection_id, ref)
        return ref

    async def ref(self, collection_id: str) -> CollectionRef:
        """Owner and project of a live collection (cached: they never change); 404 when there is none."""
        ref = self.refs.get(collection_id)
        if ref is None:
            doc = await self.repo.collection(collection_id, {"owner_id": 1, "project_id": 1})
            if doc is None:
                raise collection_not_found()
            ref = self.remember(doc)
        return ref

    async def permissions(self, principal: Principal, doc: Document) -> Permissions:
        """What the caller may do with this collection document, just read: a cached allow serves only at
        the access version the document holds (shared/authz.py)."""
        ref = self.remember(doc).model_copy(update={"access_version": int(doc.get(ACCESS_VERSION, 0))})
        return await self.access.permissions(principal, ref)

    async def require(self, principal: Principal, ref: CollectionRef, need: Literal["read", "write"]) -> None:
        """404 unless the caller may read the collection; 403 if it must write and may not. `ref` is a cached
        one with no access version, so only a write is answered from the decision cache."""
        permissions = await self.access.permissions(principal, ref, need)
        if not permissions.read:
            raise collection_not_found()
        if need == "write" and not permissions.write:
            raise Forbidden("you may not change this collection")

    async def resolve_name(self, project_id: str, name: str) -> str:
        """The id of the live collection with this name in the project."""
        key = name_key(project_id, name)
        cached = self.names.get(key)
        if cached is not None:
            return str(cached)
        wanted = {"_id": 1, "owner_id": 1, "project_id": 1}
        doc = await self.repo.collection_by_name(key, wanted) or await self.repo.first_named(
            project_id, name, wanted
        )
        if doc is None:
            raise collection_not_found()
        self.names.remember(key, doc["_id"])
        self.remember(doc)
        return str(doc["_id"])

    async def by_name(self, project_id: str, name: str, operation: Callable[[str, str], Awaitable[T]]) -> T:
        """Run a write on the collection named `name`; a stale cached name is dropped and resolved once more.

        The write keeps the name in its filter, so a stale id can only miss, never change another collection.
        """
        key = name_key(project_id, name)
        was_cached = key in self.names
        collection_id = await self.resolve_name(project_id, name)
        try:
            return await operation(collection_id, name)
        except NotFound:
            if not was_cached:
                raise
            self.names.pop(key, None)
            fresh = await self.resolve_name(project_id, name)
            if fresh == collection_id:
                raise
            return await operation(fresh, name)

    async def named(self, project_id: str, name: str, projection: dict[str, int]) -> Document | None:
        """The live collection with this name in the project (cached id first), or None."""
        key = name_key(project_id, name)
        cached = self.names.get(key)
        doc = None
        if cached is not None:
            doc = await self.repo.collection_named(cached, name, projection)
        if doc is None:
            doc = await self.repo.collection_by_name(key, projection) or await self.repo.first_named(
                project_id, name, projection
            )
            if doc is not None:
                self.names.remember(key, doc["_id"])
        return doc

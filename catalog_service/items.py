"""Use cases of the item registry: assets and models that collections of dialects B and C link to."""

from __future__ import annotations

from catalog_service.ids import new_id
from catalog_service.lookup import BoundedCache
from catalog_service.repository import CatalogRepository, ItemKind
from shared import event_types as ev
from shared.clock import timestamp
from shared.errors import Conflict, Forbidden, NotFound
from shared.mongo import Document
from shared.principal import Principal


class Registry:
    """Assets and models: registered by any caller, removed by their owner or an admin."""

    def __init__(self, repository: CatalogRepository) -> None:
        self.repo = repository
        self._items = BoundedCache()  # (kind, id) -> item document

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

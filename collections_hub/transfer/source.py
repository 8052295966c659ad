"""Reading what a user owns from a service that speaks dialect B or C."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from collections_hub.client import Hub
from collections_hub.client.errors import ApiError
from collections_hub.client.models import GroupPublic, HistoryEntry, UserV2
from collections_hub.transfer.items import LinkedItems, linked_items


@dataclass
class SourceCollection:
    """One collection as the source shows it (fields a dialect lacks stay None or empty)."""

    id: str
    name: str
    description: str | None = None
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    is_public: bool = False
    thumbnail: str | None = None
    counts: tuple[int, int] | None = None  # (assets, models), dialect C only


class SourceReader:
    """The caller's own collections at a B or C service, their items and (B) their shares."""

    def __init__(self, hub: Hub, dialect: str, *, settle: float = 5.0) -> None:
        self.hub, self.dialect, self.settle = hub, dialect, settle
        self.owner_id, self.owner_email = self._owner()

    def _owner(self) -> tuple[str | None, str | None]:
        """Who the key belongs to, where the service says (`/v1/me`); else every listed one is taken."""
        try:
            me = self.hub.me()
        except ApiError:
            return None, None
        return str(me.user_id), me.email

    def collections(self) -> list[SourceCollection]:
        """Every collection the caller owns, oldest first (small records: the list is held whole)."""
        if self.dialect == "b":
            return [c for c in map(self._details, self.hub.collections.ids()) if c is not None]
        return [
            SourceCollection(
                id=c.id,
                name=c.name,
                thumbnail=c.thumbnail.assetId if c.thumbnail else None,
                counts=(c.assetCount, c.modelCount),
            )
            for c in self.hub.collections.list()
            if self.owner_id is None or c.ownerId == self.owner_id
        ]

    def _details(self, collection_id: str) -> SourceCollection | None:
        d = self.hub.collections.details(collection_id)
        if self.owner_email is not None and d.owner != self.owner_email:
            return None
        return SourceCollection(
            id=d.id,
            name=d.title,
            description=d.description,
            category=d.category,
            tags=d.tags,
            is_public=d.isPublic,
        )

    def items(self, collection: SourceCollection) -> LinkedItems:
        """Its assets and models, rebuilt from its history."""

        def read() -> Iterator[HistoryEntry]:
            if self.dialect == "b":
                return self.hub.history.list_v2(collection.id)
            return self.hub.history.list(collection.id)

        return linked_items(read, collection.counts, settle=self.settle)

    def shares(self, collection: SourceCollection) -> tuple[list[UserV2], list[GroupPublic]]:
        """Users and guests (the owner left out) and groups it is shared with; dialect C exposes none."""
        if self.dialect != "b":
            return [], []
        users = self.hub.sharing.users(collection.id)
        owner = self.owner_email
        return [u for u in users[1:] if u.email != owner], self.hub.sharing.groups(collection.id)

"""catalog_service's use cases, one module per group, assembled here:

- `projects.py`: namespaces, projects, datasets;
- `items.py`: the item registry (assets and models);
- `collection_crud.py`: collections themselves (create, read, list, update, delete);
- `membership.py`: members (nodes, assets, models), exact counts, recovery of interrupted changes;
- `item_lists.py`: a collection's assets or models, a keyset page at a time (dialects B and C);
- `lookup.py`: finding a collection by id or name, and the caller's permissions on it;
- `reader_views.py`: the lists' read model (which collections each reader sees, as dense views).
"""

from __future__ import annotations

from catalog_service.collection_crud import Collections, ListCursors
from catalog_service.item_lists import ItemCursors, ItemLists
from catalog_service.items import Registry
from catalog_service.lookup import CollectionLookup, collection_not_found, free_key
from catalog_service.member_repository import MemberRepository
from catalog_service.membership import Membership
from catalog_service.projects import Projects
from catalog_service.reader_views import ReaderViews
from catalog_service.repository import CatalogRepository
from catalog_service.view_repository import ViewRepository
from shared.authz import AccessDecisions

__all__ = ["CatalogService", "ItemCursors", "ListCursors", "collection_not_found", "free_key"]


class CatalogService:
    """The use-case groups of catalog_service, wired to one repository and one access client."""

    def __init__(
        self,
        repository: CatalogRepository,
        members: MemberRepository,
        views: ViewRepository,
        access: AccessDecisions,
        cursors: ListCursors | None = None,
        *,
        stale_after_seconds: float = 30.0,
        item_cursors: ItemCursors | None = None,
    ) -> None:
        self.repo = repository
        self.lookup = CollectionLookup(repository, access)
        self.projects = Projects(repository, access)
        self.items = Registry(repository)
        self.membership = Membership(
            members, self.lookup, self.items, stale_after_seconds=stale_after_seconds
        )
        self.views = ReaderViews(views, repository)
        # Without the shared secret, list tokens are good on this process only (never forgeable).
        self.collections = Collections(
            repository,
            lookup=self.lookup,
            projects=self.projects,
            registry=self.items,
            membership=self.membership,
            views=self.views,
            cursors=cursors or ListCursors(""),
        )
        self.item_lists = ItemLists(self.collections, members, repository, item_cursors or ItemCursors(""))

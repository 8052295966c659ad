"""The blocking client: `Hub(url, api_key=...)`, shaped like dialect C's SDK plus sharing, history, admin."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from collections_hub.client import models as m
from collections_hub.client import ops
from collections_hub.client.transport import Credentials, Op, RetryPolicy, Settings, SyncTransport

T = TypeVar("T")


def paginate(transport: SyncTransport, page: Callable[[str | None], Op[m.Page[T]]]) -> Iterator[T]:
    """Every item of a paged list, fetching the next page only when the previous one is used up."""
    token: str | None = None
    while True:
        result = transport.run(page(token))
        yield from result.items
        if not result.next:
            return
        token = result.next


class Links:
    """`collections.assets` or `collections.models`: add and remove registered items (any number)."""

    def __init__(self, transport: SyncTransport, kind: str) -> None:
        self._t, self._kind = transport, kind

    def add(self, collection_id: str, ids: Sequence[str]) -> m.Collection:
        """Add items, 49 a call; the collection as the last call left it."""
        return self._change(collection_id, ids, add=True)

    def remove(self, collection_id: str, ids: Sequence[str]) -> m.Collection:
        """Remove items, 49 a call."""
        return self._change(collection_id, ids, add=False)

    def list(self, collection_id: str, *, page_size: int = 100) -> Iterator[m.CollectionItem]:
        """Every item of the collection in the order they were added, fetched a page at a time as you iterate
        (an item that stays in the collection while you iterate is met exactly once)."""
        return paginate(self._t, lambda token: ops.list_items(collection_id, self._kind, page_size, token))

    def _change(self, collection_id: str, ids: Sequence[str], *, add: bool) -> m.Collection:
        result = None
        for chunk in ops.chunks(ids, ops.MAX_LINK_IDS):
            result = self._t.run(ops.link_items(collection_id, self._kind, chunk, add=add))
        return result if result is not None else self._t.run(ops.retrieve_collection(collection_id))


class Collections:
    """Collections in dialect C's shape, with B's details (description, category, tags) alongside."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport
        self.assets = Links(transport, "asset")
        self.models = Links(transport, "model")

    def list(self, *, page_size: int = 100) -> Iterator[m.Collection]:
        """Every collection the caller may see, oldest first, fetched a page at a time as you iterate."""
        return paginate(self._t, lambda token: ops.list_collections(page_size, token))

    def create(self, name: str) -> m.Collection:
        """Create a collection with a name."""
        return self._t.run(ops.create_collection(name))

    def retrieve(self, collection_id: str) -> m.Collection:
        """One collection."""
        return self._t.run(ops.retrieve_collection(collection_id))

    def update(
        self, collection_id: str, *, name: str | None = None, thumbnail_asset_id: str | None = None
    ) -> m.Collection:
        """Rename and/or choose the thumbnail."""
        return self._t.run(ops.update_collection(collection_id, name, thumbnail_asset_id))

    def delete(self, collection_id: str) -> None:
        """Delete a collection."""
        self._t.run(ops.delete_collection(collection_id))

    def ids(self) -> builtins.list[str]:
        """Ids of every collection the caller may see (dialect B's list)."""
        return self._t.run(ops.list_ids())

    def create_detailed(
        self,
        title: str,
        *,
        description: str | None = None,
        category: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> m.CollectionDetails:
        """Create with title, description, category and tags in one call."""
        return self._t.run(ops.create_detailed(title, description, category, tags))

    def details(self, collection_id: str) -> m.CollectionDetails:
        """Title, description, category, tags, owner e-mail, visibility."""
        return self._t.run(ops.details(collection_id))

    def update_details(self, collection_id: str, **fields: Any) -> m.CollectionDetails:
        """Change title, description, category and/or tags."""
        return self._t.run(ops.update_details(collection_id, fields))


class Sharing:
    """Who may see a collection (dialect B)."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def set_public(self, collection_id: str, public: bool) -> m.VisibilityV2:
        """Make public (True) or private (False); 400 when it already is."""
        return self._t.run(ops.set_public(collection_id, public))

    def users(self, collection_id: str, *, everyone: bool = False) -> list[m.UserV2]:
        """Owner, shared users and guests (and with `everyone`, members of shared groups)."""
        return self._t.run(ops.shared_users(collection_id, everyone)).users

    def add_user(self, collection_id: str, user_id: int) -> m.OkV2:
        """Share with a user."""
        return self._t.run(ops.share_user(collection_id, user_id, add=True))

    def remove_user(self, collection_id: str, user_id: int) -> m.OkV2:
        """Stop sharing with a user."""
        return self._t.run(ops.share_user(collection_id, user_id, add=False))

    def invite_guest(self, collection_id: str, email: str) -> list[m.UserV2]:
        """Invite a guest by e-mail."""
        return self._t.run(ops.invite_guest(collection_id, email)).users

    def groups(self, collection_id: str) -> list[m.GroupPublic]:
        """User groups it is shared with."""
        return self._t.run(ops.shared_groups(collection_id)).user_groups

    def add_group(self, collection_id: str, group_id: int) -> m.OkV2:
        """Share with a user group."""
        return self._t.run(ops.share_group(collection_id, group_id, add=True))

    def remove_group(self, collection_id: str, group_id: int) -> m.OkV2:
        """Stop sharing with a user group."""
        return self._t.run(ops.share_group(collection_id, group_id, add=False))


class History:
    """A collection's audit history."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def list(self, collection_id: str, *, page_size: int = 100) -> Iterator[m.HistoryEntry]:
        """Every entry, newest first, fetched a page at a time as you iterate."""
        return paginate(self._t, lambda token: ops.history_page(collection_id, page_size, token))

    def list_v2(self, collection_id: str) -> Iterator[m.HistoryEntry]:
        """Every entry through dialect B's cursor (20 a page), newest first: what a B-only service offers."""
        return paginate(self._t, lambda cursor: ops.history_page_v2(collection_id, cursor))


class Project:
    """Dialect A: the collections of one project, addressed by unique name, with node-id members."""

    def __init__(self, transport: SyncTransport, namespace: str, project: str) -> None:
        self._t, self.base = transport, ops.project_path(namespace, project)

    def list(self, *, page_size: int = 50) -> Iterator[m.ProjectCollection]:
        """Every collection of the project the caller may see, page by page as you iterate."""
        return paginate(self._t, lambda token: ops.list_project(self.base, page_size, token))

    def create(self, name: str, **fields: Any) -> m.ProjectCollection:
        """Create (description, tags, metadata, datasetId, members may be given)."""
        return self._t.run(ops.create_in_project(self.base, {"name": name, **fields}))

    def retrieve(self, name: str) -> m.ProjectCollection:
        """One collection with its members."""
        return self._t.run(ops.retrieve_in_project(self.base, name))

    def update(self, name: str, **fields: Any) -> m.ProjectCollection:
        """Change fields (members: a full replace)."""
        return self._t.run(ops.update_in_project(self.base, name, fields))

    def delete(self, name: str) -> None:
        """Soft-delete."""
        self._t.run(ops.delete_in_project(self.base, name))

    def add_members(self, name: str, ids: Sequence[str]) -> int:
        """Add node ids, 10,000 a call: how many were new."""
        chunks = ops.chunks(ids, ops.MAX_NODE_IDS)
        return sum(self._t.run(ops.change_members(self.base, name, c, add=True)).added or 0 for c in chunks)

    def remove_members(self, name: str, ids: Sequence[str]) -> int:
        """Remove node ids: how many were there."""
        chunks = ops.chunks(ids, ops.MAX_NODE_IDS)
        return sum(
            self._t.run(ops.change_members(self.base, name, c, add=False)).removed or 0 for c in chunks
        )


class Registry:
    """Registered assets or models."""

    def __init__(self, transport: SyncTransport, kind: str) -> None:
        self._t, self._kind = transport, kind

    def create(self, name: str, *, url: str | None = None, id: str | None = None) -> m.Item:  # noqa: A002
        """Register one (a given id that is taken is a 409)."""
        return self._t.run(ops.create_item(self._kind, name, url, id))

    def retrieve(self, item_id: str) -> m.Item:
        """One registered item."""
        return self._t.run(ops.retrieve_item(self._kind, item_id))

    def delete(self, item_id: str) -> None:
        """Remove from the registry."""
        self._t.run(ops.delete_item(self._kind, item_id))


class Admin:
    """The admin API (an admin key)."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def create_user(
        self, email: str, *, role: str = "user", first_name: str | None = None, last_name: str | None = None
    ) -> m.UserPublic:
        """Create a user."""
        return self._t.run(ops.create_user(email, role, first_name, last_name))

    def get_user(self, user_id: int) -> m.UserPublic:
        """One user."""
        return self._t.run(ops.get_user(user_id))

    def verify_views(self, after: str = "", limit: int = 100, *, repair: bool = False) -> m.ViewsVerified:
        """One page of the walk over the list views (`collections-hub views verify`)."""
        return self._t.run(ops.verify_views(after, limit, repair))

    def create_key(self, user_id: int, name: str | None = None) -> m.ApiKeyCreated:
        """Issue an API key (the answer is the only time it is shown)."""
        return self._t.run(ops.create_key(user_id, name))

    def revoke_key(self, key_id: str) -> m.RevokeResult:
        """Revoke an API key."""
        return self._t.run(ops.revoke_key(key_id))

    def create_group(self, name: str, description: str | None = None) -> m.GroupPublic:
        """Create a user group."""
        return self._t.run(ops.create_group(name, description))

    def groups(self) -> list[m.GroupPublic]:
        """Every user group."""
        return self._t.run(ops.list_groups()).user_groups

    def add_group_members(self, group_id: int, user_ids: Sequence[int]) -> m.GroupPublic:
        """Put users into a group."""
        return self._t.run(ops.add_group_members(group_id, user_ids))

    def set_project_role(self, namespace: str, project: str, user_id: int, role: str) -> m.ProjectMember:
        """Give a user a role on a project."""
        return self._t.run(ops.set_project_role(namespace, project, user_id, role))

    def create_namespace(self, slug: str, name: str | None = None) -> dict[str, Any]:
        """Create a namespace."""
        return self._t.run(ops.create_namespace(slug, name))

    def create_project(self, namespace: str, slug: str, name: str | None = None) -> m.ProjectCreated:
        """Create a project."""
        return self._t.run(ops.create_project(namespace, slug, name))

    def import_collection(self, **fields: Any) -> m.ProjectCollection:
        """Create a collection with a given id and owner (what `collections-hub import` keeps ids with)."""
        return self._t.run(ops.import_collection(fields))


class Hub:
    """A blocking client of one hub (or of any service speaking dialects B/C)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate: float | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        creds = credentials or (Credentials(api_key) if api_key else None)
        settings = Settings(base_url.rstrip("/"), creds, timeout, retry or RetryPolicy(), rate)
        self.transport = SyncTransport(settings, http)
        self.collections = Collections(self.transport)
        self.sharing = Sharing(self.transport)
        self.history = History(self.transport)
        self.assets = Registry(self.transport, "asset")
        self.models = Registry(self.transport, "model")
        self.admin = Admin(self.transport)

    def project(self, namespace: str, project: str) -> Project:
        """Dialect A's collections of one project."""
        return Project(self.transport, namespace, project)

    def me(self) -> m.Principal:
        """Who the credentials belong to."""
        return self.transport.run(ops.me())

    def close(self) -> None:
        """Close connections."""
        self.transport.close()

    def __enter__(self) -> Hub:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

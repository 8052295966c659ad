"""Every call the client makes, as data (`Op`): the sync and async clients only differ in how they run them.

Request bodies are built with the services' own request models, so a body the server would refuse is
refused here first, with the same rules, as `InvalidInput` (a `HubError`) naming each refused field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from access_service.schemas import (
    ApiKeyCreate,
    GroupCreate,
    GroupMembersAdd,
    GuestInvite,
    ProjectRoleUpdate,
    UserCreate,
)
from catalog_service.schemas import (
    AssetIdsC,
    CollectionCreateA,
    CollectionCreateB,
    CollectionCreateC,
    CollectionImport,
    CollectionUpdateA,
    CollectionUpdateB,
    CollectionUpdateC,
    ItemCreate,
    MembersAdd,
    MembersRemove,
    ModelIdsC,
    NamespaceCreate,
    ProjectCreate,
    ViewsVerify,
)
from collections_hub.client import models as m
from collections_hub.client.errors import invalid_input
from collections_hub.client.transport import Op

M = TypeVar("M", bound=BaseModel)
ItemKind = str  # "asset" or "model"
MAX_LINK_IDS = 49  # dialect C's limit per call
MAX_NODE_IDS = 10_000  # dialect A's limit per call


def seg(value: str | int) -> str:
    """One path segment, escaped (names may hold spaces or slashes)."""
    return quote(str(value), safe="")


def body_of(model: BaseModel) -> dict[str, Any]:
    """The JSON body of a validated request model (fields the caller left out stay out)."""
    return model.model_dump(mode="json", exclude_unset=True)


def valid(model: type[BaseModel], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The body `model` makes of `fields`, or `InvalidInput` naming every field it refuses."""
    try:
        return body_of(model.model_validate(fields))
    except ValidationError as exc:
        raise invalid_input(exc) from exc


def collection(collection_id: str) -> str:
    """What a 404 of a call on one collection means is missing."""
    return f"collection {collection_id}"


def under(key: str, model: type[M]) -> Callable[[Any], M]:
    """Parse `body[key]` as `model`."""
    return lambda body: model.model_validate(body[key])


def as_model(model: type[M]) -> Callable[[Any], M]:
    """Parse the whole body as `model`."""
    return model.model_validate


def ignore(_body: Any) -> None:
    """For answers that carry nothing the caller needs."""


def chunks(ids: Sequence[str], size: int) -> list[list[str]]:
    """`ids` in calls of at most `size`."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


# --- dialect C: collections, assets and models links, history -------------------------------------------
C = "/v1/collections"


def list_collections(page_size: int, token: str | None) -> Op[m.Page[m.Collection]]:
    """One keyset page of the collections the caller may see."""
    params: dict[str, str | int] = {"pageSize": page_size}
    if token:
        params["paginationToken"] = token

    def parse(body: Any) -> m.Page[m.Collection]:
        items = [m.Collection.model_validate(c) for c in body["collections"]]
        return m.Page(items=items, next=body.get("nextPaginationToken"))

    return Op("GET", C, parse, params=params)


def create_collection(name: str) -> Op[m.Collection]:
    """Create (dialect C): a name only."""
    return Op("POST", C, under("collection", m.Collection), valid(CollectionCreateC, {"name": name}))


def retrieve_collection(collection_id: str) -> Op[m.Collection]:
    """One collection, with counts and thumbnail."""
    return Op(
        "GET",
        f"{C}/{seg(collection_id)}",
        under("collection", m.Collection),
        subject=collection(collection_id),
    )


def update_collection(
    collection_id: str, name: str | None, thumbnail_asset_id: str | None
) -> Op[m.Collection]:
    """Rename and/or choose the thumbnail."""
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if thumbnail_asset_id is not None:
        fields["thumbnail"] = {"assetId": thumbnail_asset_id}
    body = valid(CollectionUpdateC, fields)
    parse = under("collection", m.Collection)
    return Op("PUT", f"{C}/{seg(collection_id)}", parse, body, subject=collection(collection_id))


def delete_collection(collection_id: str) -> Op[None]:
    """Delete (every dialect answers 404 for it afterwards)."""
    return Op("DELETE", f"{C}/{seg(collection_id)}", ignore, subject=collection(collection_id))


def link_items(collection_id: str, kind: ItemKind, ids: Sequence[str], *, add: bool) -> Op[m.Collection]:
    """Add or remove up to 49 registered assets or models (set semantics, so safe to repeat)."""
    body = (
        valid(AssetIdsC, {"assetIds": list(ids)})
        if kind == "asset"
        else valid(ModelIdsC, {"modelIds": list(ids)})
    )
    path = f"{C}/{seg(collection_id)}/{kind}s"
    parse = under("collection", m.Collection)
    return Op("PUT" if add else "DELETE", path, parse, body, subject=collection(collection_id))


def list_items(
    collection_id: str, kind: ItemKind, page_size: int, token: str | None
) -> Op[m.Page[m.CollectionItem]]:
    """One keyset page of a collection's assets or models, in the order they were added."""
    params: dict[str, str | int] = {"pageSize": page_size}
    if token:
        params["paginationToken"] = token

    def parse(body: Any) -> m.Page[m.CollectionItem]:
        items = [m.CollectionItem.model_validate(item) for item in body[f"{kind}s"]]
        return m.Page(items=items, next=body.get("nextPaginationToken"))

    path = f"{C}/{seg(collection_id)}/{kind}s"
    return Op("GET", path, parse, params=params, subject=collection(collection_id))


def history_page(collection_id: str, page_size: int, token: str | None) -> Op[m.Page[m.HistoryEntry]]:
    """One page of a collection's history, newest first."""
    params: dict[str, str | int] = {"pageSize": page_size}
    if token:
        params["paginationToken"] = token

    def parse(body: Any) -> m.Page[m.HistoryEntry]:
        page = m.HistoryPageC.model_validate(body)
        return m.Page(items=page.data, next=page.next_pagination_token)

    path = f"{C}/{seg(collection_id)}/history"
    return Op("GET", path, parse, params=params, subject=collection(collection_id))


# --- dialect B: details and sharing ----------------------------------------------------------------------
B = "/api/v2/collections"


def history_page_v2(collection_id: str, cursor: str | None) -> Op[m.Page[m.HistoryEntry]]:
    """One page (20) of a collection's history in dialect B, newest first; cursor `0` is the newest."""

    def parse(body: Any) -> m.Page[m.HistoryEntry]:
        page = m.HistoryPageV2.model_validate(body).history
        return m.Page(items=page.results, next=page.next_cursor)

    path = f"{B}/{seg(collection_id)}/history/{seg(cursor or '0')}"
    return Op("GET", path, parse, subject=collection(collection_id))


def list_ids() -> Op[list[str]]:
    """Ids of every collection the caller may see (dialect B has no paging here)."""
    return Op("GET", B, lambda body: [str(i) for i in body["collections"]])


def create_detailed(
    title: str, description: str | None, category: str | None, tags: Sequence[str] | None
) -> Op[m.CollectionDetails]:
    """Create with title, description, category and tags in one call (dialect B)."""
    fields: dict[str, Any] = {"title": title}
    fields |= {k: v for k, v in (("description", description), ("category", category)) if v is not None}
    if tags is not None:
        fields["tags"] = list(tags)
    body = valid(CollectionCreateB, fields)
    return Op("POST", B, under("collection", m.CollectionDetails), body)


def details(collection_id: str) -> Op[m.CollectionDetails]:
    """Title, description, category, tags, owner e-mail and visibility."""
    parse = under("collection", m.CollectionDetails)
    return Op("GET", f"{B}/{seg(collection_id)}", parse, subject=collection(collection_id))


def update_details(collection_id: str, fields: dict[str, Any]) -> Op[m.CollectionDetails]:
    """Change any of title, description, category, tags (None clears description or category)."""
    body = valid(CollectionUpdateB, fields)
    parse = under("collection", m.CollectionDetails)
    return Op("PUT", f"{B}/{seg(collection_id)}", parse, body, subject=collection(collection_id))


def set_public(collection_id: str, public: bool) -> Op[m.VisibilityV2]:
    """Make public or private (400 when it already is)."""
    path = f"{B}/{seg(collection_id)}/{'public' if public else 'private'}"
    return Op("POST", path, as_model(m.VisibilityV2), idempotent=True, subject=collection(collection_id))


def shared_users(collection_id: str, everyone: bool) -> Op[m.UsersV2]:
    """The owner and shared users and guests; with `everyone`, also members of shared groups."""
    path = f"{B}/{seg(collection_id)}/{'all_users' if everyone else 'users'}"
    return Op("GET", path, as_model(m.UsersV2), subject=collection(collection_id))


def share_user(collection_id: str, user_id: int, *, add: bool) -> Op[m.OkV2]:
    """Share with (or stop sharing with) a user; a repeat is a 400, never a second share."""
    path = f"{B}/{seg(collection_id)}/users/{seg(user_id)}"
    return Op("POST" if add else "DELETE", path, as_model(m.OkV2), idempotent=True)


def invite_guest(collection_id: str, email: str) -> Op[m.UsersV2]:
    """Invite a guest by e-mail (creates the guest user; sends mail: never sent twice by a retry)."""
    body = valid(GuestInvite, {"email": email})
    path = f"{B}/{seg(collection_id)}/guests"
    return Op("POST", path, as_model(m.UsersV2), body, subject=collection(collection_id))


def shared_groups(collection_id: str) -> Op[m.GroupsPublic]:
    """The user groups it is shared with."""
    path = f"{B}/{seg(collection_id)}/user_groups"
    return Op("GET", path, as_model(m.GroupsPublic), subject=collection(collection_id))


def share_group(collection_id: str, group_id: int, *, add: bool) -> Op[m.OkV2]:
    """Share with (or stop sharing with) a user group."""
    path = f"{B}/{seg(collection_id)}/user_groups/{seg(group_id)}"
    return Op("POST" if add else "DELETE", path, as_model(m.OkV2), idempotent=True)


# --- dialect A: collections of node ids in a project ----------------------------------------------------
def project_path(namespace: str, project: str) -> str:
    """`/namespaces/{ns}/projects/{project}`."""
    return f"/namespaces/{seg(namespace)}/projects/{seg(project)}"


def list_project(base: str, page_size: int, token: str | None) -> Op[m.Page[m.ProjectCollection]]:
    """One numbered page; the token is the next page number."""
    page = int(token or "1")

    def parse(body: Any) -> m.Page[m.ProjectCollection]:
        result = m.ProjectCollectionPage.model_validate(body)
        return m.Page(items=result.collections, next=str(page + 1) if page < result.totalPages else None)

    return Op("GET", f"{base}/collections", parse, params={"page": page, "pageSize": page_size})


def create_in_project(base: str, fields: dict[str, Any]) -> Op[m.ProjectCollection]:
    """Create with a unique name (409 when taken) and any of description, tags, metadata, members."""
    body = valid(CollectionCreateA, fields)
    return Op("POST", f"{base}/collections", as_model(m.ProjectCollection), body)


def retrieve_in_project(base: str, name: str) -> Op[m.ProjectCollection]:
    """One collection by name, with its members."""
    return Op("GET", f"{base}/collections/{seg(name)}", as_model(m.ProjectCollection))


def update_in_project(base: str, name: str, fields: dict[str, Any]) -> Op[m.ProjectCollection]:
    """PATCH: name, description, tags, metadata, datasetId, members (a full replace)."""
    body = valid(CollectionUpdateA, fields)
    return Op(
        "PATCH", f"{base}/collections/{seg(name)}", as_model(m.ProjectCollection), body, idempotent=True
    )


def delete_in_project(base: str, name: str) -> Op[None]:
    """Soft delete."""
    return Op("DELETE", f"{base}/collections/{seg(name)}", ignore)


def change_members(base: str, name: str, ids: Sequence[str], *, add: bool) -> Op[m.MembersChanged]:
    """Add or remove node ids (set semantics, so safe to repeat)."""
    body = valid(MembersAdd, {"add": list(ids)}) if add else valid(MembersRemove, {"remove": list(ids)})
    path = f"{base}/collections/{seg(name)}/members"
    return Op("POST" if add else "DELETE", path, as_model(m.MembersChanged), body, idempotent=True)


# --- registry ------------------------------------------------------------------------------------------
def create_item(kind: ItemKind, name: str, url: str | None, item_id: str | None) -> Op[m.Item]:
    """Register an asset or model; with an id, a taken id is a 409 (so a repeat is never a second one)."""
    fields: dict[str, Any] = {"name": name}
    if item_id is not None:
        fields["id"] = item_id
    if url is not None and kind == "asset":
        fields["url"] = url
    return Op(
        "POST",
        f"/v1/{kind}s",
        as_model(m.Item),
        valid(ItemCreate, fields),
        idempotent=item_id is not None,
    )


def retrieve_item(kind: ItemKind, item_id: str) -> Op[m.Item]:
    """One registered asset or model."""
    return Op("GET", f"/v1/{kind}s/{seg(item_id)}", as_model(m.Item), subject=f"{kind} {item_id}")


def delete_item(kind: ItemKind, item_id: str) -> Op[None]:
    """Remove from the registry (owner or admin)."""
    return Op("DELETE", f"/v1/{kind}s/{seg(item_id)}", ignore, subject=f"{kind} {item_id}")


# --- the caller and the admin API -----------------------------------------------------------------------
def me() -> Op[m.Principal]:
    """Who the credentials belong to."""
    return Op("GET", "/v1/me", as_model(m.Principal))


def create_user(email: str, role: str, first_name: str | None, last_name: str | None) -> Op[m.UserPublic]:
    """Create a user (a taken e-mail is a 409, so never two)."""
    fields = {"email": email, "role": role, "first_name": first_name, "last_name": last_name}
    body = valid(UserCreate, {k: v for k, v in fields.items() if v is not None})
    return Op("POST", "/admin/users", as_model(m.UserPublic), body, idempotent=True)


def get_user(user_id: int) -> Op[m.UserPublic]:
    """One user."""
    return Op("GET", f"/admin/users/{seg(user_id)}", as_model(m.UserPublic), subject=f"user {user_id}")


def create_key(user_id: int, name: str | None) -> Op[m.ApiKeyCreated]:
    """Issue an API key (shown once; a retry could issue two, so it is not retried)."""
    body = valid(ApiKeyCreate, {"name": name} if name else {})
    return Op("POST", f"/admin/users/{seg(user_id)}/api-keys", as_model(m.ApiKeyCreated), body)


def verify_views(after: str, limit: int, repair: bool) -> Op[m.ViewsVerified]:
    """Check the next `limit` list views after `after` against the rules (and repair them)."""
    body = valid(ViewsVerify, {"after": after, "limit": limit, "repair": repair})
    return Op("POST", "/admin/views/verify", as_model(m.ViewsVerified), body)


def revoke_key(key_id: str) -> Op[m.RevokeResult]:
    """Revoke an API key."""
    return Op("DELETE", f"/admin/api-keys/{seg(key_id)}", as_model(m.RevokeResult))


def create_group(name: str, description: str | None) -> Op[m.GroupPublic]:
    """Create a user group."""
    fields = {"name": name} | ({"description": description} if description is not None else {})
    return Op("POST", "/admin/groups", as_model(m.GroupPublic), valid(GroupCreate, fields))


def list_groups() -> Op[m.GroupsPublic]:
    """Every user group with its members."""
    return Op("GET", "/admin/groups", as_model(m.GroupsPublic))


def add_group_members(group_id: int, user_ids: Sequence[int]) -> Op[m.GroupPublic]:
    """Put users into a group (set semantics)."""
    body = valid(GroupMembersAdd, {"user_ids": list(user_ids)})
    return Op(
        "POST", f"/admin/groups/{seg(group_id)}/members", as_model(m.GroupPublic), body, idempotent=True
    )


def set_project_role(namespace: str, project: str, user_id: int, role: str) -> Op[m.ProjectMember]:
    """Give a user a role on a project."""
    body = valid(ProjectRoleUpdate, {"role": role})
    path = f"/admin/namespaces/{seg(namespace)}/projects/{seg(project)}/members/{seg(user_id)}"
    return Op("PUT", path, as_model(m.ProjectMember), body)


def create_namespace(slug: str, name: str | None) -> Op[dict[str, Any]]:
    """Create a namespace."""
    body = valid(NamespaceCreate, {"slug": slug} | ({"name": name} if name else {}))
    return Op("POST", "/admin/namespaces", dict, body)


def create_project(namespace: str, slug: str, name: str | None) -> Op[m.ProjectCreated]:
    """Create a project in a namespace."""
    body = valid(ProjectCreate, {"slug": slug} | ({"name": name} if name else {}))
    return Op("POST", f"/admin/namespaces/{seg(namespace)}/projects", as_model(m.ProjectCreated), body)


def import_collection(fields: dict[str, Any]) -> Op[m.ProjectCollection]:
    """Create a collection with a given id and owner (admin): a 409 when the id or the name is taken.

    Not repeated after an unknown outcome: a repeat would meet its own id and answer 409.
    """
    return Op(
        "POST",
        "/admin/collections",
        as_model(m.ProjectCollection),
        valid(CollectionImport, fields),
    )

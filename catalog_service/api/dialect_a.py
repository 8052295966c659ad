"""Dialect A (`000_c1f7ff3b7241616a.txt`): namespaced collections of node ids, addressed by name."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from catalog_service import views
from catalog_service.api.keys import CATALOG_KEY
from catalog_service.schemas import (
    CollectionCreateA,
    CollectionPageA,
    CollectionPublicA,
    CollectionUpdateA,
    DatasetCreate,
    DatasetPublic,
    DeletedA,
    ListQueryA,
    MembersAdd,
    MembersAddedA,
    MembersRemove,
    MembersRemovedA,
)
from catalog_service.service import CatalogService
from catalog_service.streaming import Counted, stream_json
from shared.errors import Invalid
from shared.mongo import Document
from shared.openapi import documented
from shared.principal import require_principal
from shared.requests import parse_body, parse_query, read_json, validate

routes = web.RouteTableDef()
T = TypeVar("T")
BASE = "/namespaces/{slug}/projects/{project}"


async def project_of(request: web.Request) -> tuple[CatalogService, Document]:
    """The catalog service and the project the path names (404 for a missing namespace or project)."""
    catalog = request.app[CATALOG_KEY]
    return catalog, await catalog.projects.project_for(
        require_principal(request), request.match_info["slug"], request.match_info["project"]
    )


async def by_name(request: web.Request, operation: Callable[[str, str], Awaitable[T]]) -> T:
    """Run `operation(collection_id, name)` on the collection the path names (re-resolving a stale name)."""
    catalog, project = await project_of(request)
    return await catalog.lookup.by_name(project["_id"], request.match_info["name"], operation)


@routes.post(f"{BASE}/datasets")
@documented(
    DatasetPublic,
    status=201,
    body=DatasetCreate,
    errors={
        400: "name missing or invalid",
        404: "namespace or project not found",
    },
)
async def create_dataset(request: web.Request) -> web.Response:
    """Create a dataset in the project."""
    data = await parse_body(request, DatasetCreate)
    catalog = request.app[CATALOG_KEY]
    principal = require_principal(request)
    doc = await catalog.projects.create_dataset(
        principal, request.match_info["slug"], request.match_info["project"], data.name
    )
    return web.json_response(
        {
            "id": doc["_id"],
            "name": doc["name"],
            "projectId": doc["project_id"],
            "createdAt": doc["created_at"],
        },
        status=201,
    )


@routes.post(f"{BASE}/collections")
@documented(
    CollectionPublicA,
    status=201,
    body=CollectionCreateA,
    errors={
        400: "name missing, or a field invalid",
        404: "namespace, project or dataset not found",
        409: "collection name already exists in this project",
    },
)
async def create(request: web.Request) -> web.StreamResponse:
    """Create a collection: 201; 400 name missing; 404 namespace/project/dataset; 409 name taken."""
    data = await parse_body(request, CollectionCreateA)
    catalog, project = await project_of(request)
    principal = require_principal(request)
    await catalog.projects.require_project_writer(principal, project)
    doc = await catalog.collections.create(
        principal,
        project["_id"],
        name=data.name,
        unique_name=True,
        description=data.description,
        tags=data.tags,
        metadata=data.metadata,
        dataset_id=data.datasetId,
        nodes=data.members,
    )
    if not data.members:
        return web.json_response(views.dialect_a(doc, []), status=201)
    return await stream_json(request, with_members(catalog, doc), status=201)


@routes.get(f"{BASE}/collections")
@documented(
    CollectionPageA,
    query=ListQueryA,
    errors={
        400: "page, pageSize or datasetId out of range",
        404: "namespace or project not found",
    },
)
async def list_collections(request: web.Request) -> web.StreamResponse:
    """A page of the project's collections (optionally of one dataset), with totals."""
    query = parse_query(request, ListQueryA)
    catalog, project = await project_of(request)
    docs, total = await catalog.collections.list_in_project(
        require_principal(request),
        project["_id"],
        page=query.page,
        page_size=query.pageSize,
        dataset_id=query.datasetId,
    )
    # Each collection's members stream by an equality on its id, in the page's order, when the answer
    # reaches them; a collection without nodes (its counter says so) costs no query.
    return await stream_json(
        request,
        {
            "collections": [
                views.dialect_a(
                    doc, catalog.membership.items_of(doc["_id"], "node") if doc.get("node_count") else []
                )
                for doc in docs
            ],
            "page": query.page,
            "pageSize": query.pageSize,
            "total": total,
            "totalPages": math.ceil(total / query.pageSize),
        },
    )


@routes.get(f"{BASE}/collections/{{name}}")
@documented(
    CollectionPublicA,
    errors={404: "collection, namespace or project not found"},
)
async def get(request: web.Request) -> web.StreamResponse:
    """One collection with its members (streamed: a million members never sit in memory)."""
    catalog, project = await project_of(request)
    doc = await catalog.collections.get_by_name(
        require_principal(request), project["_id"], request.match_info["name"]
    )
    return await stream_json(request, with_members(catalog, doc))


@routes.patch(f"{BASE}/collections/{{name}}")
@documented(
    CollectionPublicA,
    body=CollectionUpdateA,
    errors={
        400: "nothing to update, or a field invalid",
        403: "the caller may read the collection but not change it",
        404: "collection, namespace, project or dataset not found",
        409: "the new name is taken in this project",
    },
)
async def update(request: web.Request) -> web.StreamResponse:
    """Change name, description, tags, metadata, dataset (or null) and/or replace the members."""
    body = await read_json(request)
    data = validate(CollectionUpdateA, body)
    fields = data.model_dump(exclude_unset=True)
    changes = {
        {"datasetId": "dataset_id", "members": "nodes"}.get(key, key): value for key, value in fields.items()
    }
    if not changes:
        raise Invalid("nothing to update")
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    doc = await by_name(
        request,
        lambda cid, name: catalog.collections.update(
            principal, cid, changes, expected_name=name, unique_name=True
        ),
    )
    return await stream_json(request, with_members(catalog, doc))


@routes.delete(f"{BASE}/collections/{{name}}")
@documented(
    DeletedA,
    errors={
        403: "the caller may read the collection but not change it",
        404: "collection, namespace or project not found",
    },
)
async def delete(request: web.Request) -> web.Response:
    """Soft-delete the collection."""
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    await by_name(request, lambda cid, name: catalog.collections.delete(principal, cid, expected_name=name))
    return web.json_response({"success": True})


def with_members(catalog: CatalogService, doc: Document) -> dict[str, object]:
    """The A view of a collection, its members streamed from their documents (none read when its count
    says it has none, as a list page does)."""
    if not doc.get("node_count"):
        return views.dialect_a(doc, [])
    return views.dialect_a(doc, catalog.membership.items_of(doc["_id"], "node"))


async def change_nodes(request: web.Request, key: str, *, add: bool) -> web.StreamResponse:
    """Add or remove the body's node ids (under `key`); answer the members after it, how many changed
    (as `added` or `removed`) and the total."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise Invalid(f"{key} must be a non-empty array of node ids")
    ids: list[str] = getattr(validate(MembersAdd if add else MembersRemove, body), key)
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    doc, changed = await by_name(
        request,
        lambda cid, name: catalog.membership.change(principal, cid, "node", ids, add=add, expected_name=name),
    )
    members = Counted(catalog.membership.items_of(doc["_id"], "node"))
    counted = "added" if add else "removed"
    return await stream_json(
        request, {"members": members, counted: len(changed), "total": lambda: members.count}
    )


@routes.post(f"{BASE}/collections/{{name}}/members")
@documented(
    MembersAddedA,
    body=MembersAdd,
    errors={
        400: "add is empty or not an array",
        403: "the caller may read the collection but not change it",
        404: "collection, namespace or project not found",
    },
)
async def add_members(request: web.Request) -> web.StreamResponse:
    """Merge node ids into the members, deduplicated: the members, how many were added, the total."""
    return await change_nodes(request, "add", add=True)


@routes.delete(f"{BASE}/collections/{{name}}/members")
@documented(
    MembersRemovedA,
    body=MembersRemove,
    errors={
        400: "remove is empty or not an array",
        403: "the caller may read the collection but not change it",
        404: "collection, namespace or project not found",
    },
)
async def remove_members(request: web.Request) -> web.StreamResponse:
    """Remove node ids: the members left, how many were removed, the total."""
    return await change_nodes(request, "remove", add=False)

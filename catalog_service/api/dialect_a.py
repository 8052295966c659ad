"""Dialect A (`000_c1f7ff3b7241616a.txt`): namespaced collections of node ids, addressed by name."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from catalog_service import views
from catalog_service.api.keys import CATALOG_KEY
from catalog_service.repository import WITH_NODES
from catalog_service.schemas import (
    CollectionCreateA,
    CollectionUpdateA,
    DatasetCreate,
    ListQueryA,
    MembersAdd,
    MembersRemove,
)
from catalog_service.service import CatalogService, apply_counts
from shared.errors import Invalid
from shared.mongo import Document
from shared.principal import require_principal
from shared.requests import parse_body, parse_query, read_json, validate

routes = web.RouteTableDef()
T = TypeVar("T")
BASE = "/namespaces/{slug}/projects/{project}"


async def project_of(request: web.Request) -> tuple[CatalogService, Document]:
    """The catalog service and the project the path names (404 for a missing namespace or project)."""
    catalog = request.app[CATALOG_KEY]
    return catalog, await catalog.project_for(
        require_principal(request), request.match_info["slug"], request.match_info["project"]
    )


async def by_name(request: web.Request, operation: Callable[[str, str], Awaitable[T]]) -> T:
    """Run `operation(collection_id, name)` on the collection the path names (re-resolving a stale name)."""
    catalog, project = await project_of(request)
    return await catalog.by_name(project["_id"], request.match_info["name"], operation)


@routes.post(f"{BASE}/datasets")
async def create_dataset(request: web.Request) -> web.Response:
    """Create a dataset in the project."""
    data = await parse_body(request, DatasetCreate)
    catalog = request.app[CATALOG_KEY]
    principal = require_principal(request)
    doc = await catalog.create_dataset(
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
async def create(request: web.Request) -> web.Response:
    """Create a collection: 201; 400 name missing; 404 namespace/project/dataset; 409 name taken."""
    data = await parse_body(request, CollectionCreateA)
    catalog, project = await project_of(request)
    principal = require_principal(request)
    await catalog.require_project_writer(principal, project)
    doc = await catalog.create(
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
    return web.json_response(views.dialect_a(doc), status=201)


@routes.get(f"{BASE}/collections")
async def list_collections(request: web.Request) -> web.Response:
    """A page of the project's collections (optionally of one dataset), with totals."""
    query = parse_query(request, ListQueryA)
    catalog, project = await project_of(request)
    docs, total = await catalog.list_in_project(
        require_principal(request),
        project["_id"],
        page=query.page,
        page_size=query.pageSize,
        dataset_id=query.datasetId,
    )
    return web.json_response(
        {
            "collections": [views.dialect_a(doc) for doc in docs],
            "page": query.page,
            "pageSize": query.pageSize,
            "total": total,
            "totalPages": math.ceil(total / query.pageSize),
        }
    )


@routes.get(f"{BASE}/collections/{{name}}")
async def get(request: web.Request) -> web.Response:
    """One collection with its members."""
    catalog, project = await project_of(request)
    doc = await catalog.get_by_name(require_principal(request), project["_id"], request.match_info["name"])
    return web.json_response(views.dialect_a(doc))


@routes.patch(f"{BASE}/collections/{{name}}")
async def update(request: web.Request) -> web.Response:
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
        lambda cid, name: catalog.update(
            principal, cid, changes, expected_name=name, unique_name=True, projection=WITH_NODES
        ),
    )
    return web.json_response(views.dialect_a(doc))


@routes.delete(f"{BASE}/collections/{{name}}")
async def delete(request: web.Request) -> web.Response:
    """Soft-delete the collection."""
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    await by_name(request, lambda cid, name: catalog.delete(principal, cid, expected_name=name))
    return web.json_response({"success": True})


async def change_nodes(request: web.Request, key: str, *, add: bool) -> tuple[list[str], int]:
    """Add or remove the body's node ids (under `key`): the members after it, and how many changed."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get(key), list) or not body[key]:
        raise Invalid(f"{key} must be a non-empty array of node ids")
    ids: list[str] = getattr(validate(MembersAdd if add else MembersRemove, body), key)
    catalog, principal = request.app[CATALOG_KEY], require_principal(request)
    before, changed = await by_name(
        request,
        lambda cid, name: catalog.change_members(
            principal, cid, "nodes", ids, add=add, expected_name=name, projection=WITH_NODES
        ),
    )
    return apply_counts(before, "nodes", changed, add)["nodes"], len(changed)


@routes.post(f"{BASE}/collections/{{name}}/members")
async def add_members(request: web.Request) -> web.Response:
    """Merge node ids into the members, deduplicated: the members, how many were added, the total."""
    members, added = await change_nodes(request, "add", add=True)
    return web.json_response({"members": members, "added": added, "total": len(members)})


@routes.delete(f"{BASE}/collections/{{name}}/members")
async def remove_members(request: web.Request) -> web.Response:
    """Remove node ids: the members left, how many were removed, the total."""
    members, removed = await change_nodes(request, "remove", add=False)
    return web.json_response({"members": members, "removed": removed, "total": len(members)})

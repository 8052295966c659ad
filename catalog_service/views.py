"""How one stored collection looks in each dialect (field names, shapes and casing per its document)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from shared.mongo import Document


def dialect_a(doc: Document, members: AsyncIterator[str] | list[str]) -> dict[str, Any]:
    """Dialect A: id, name, members (node ids, streamed), datasetId, projectId, and the descriptive fields."""
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "description": doc.get("description"),
        "tags": doc.get("tags", []),
        "metadata": doc.get("metadata", {}),
        "members": members,
        "datasetId": doc.get("dataset_id"),
        "projectId": doc["project_id"],
        "createdAt": doc["created_at"],
        "updatedAt": doc["updated_at"],
    }


def dialect_b(doc: Document) -> dict[str, Any]:
    """Dialect B: the `collection` object exactly as the v2 document shows it."""
    return {
        "id": doc["_id"],
        "title": doc["name"],
        "description": doc.get("description"),
        "category": doc.get("category"),
        "tags": doc.get("tags", []),
        "owner": doc.get("owner_email"),
        "media_type": "collection",
        "isPublic": bool(doc.get("is_public", False)),
        "created_date": doc["created_at"],
        "modification_date": doc["updated_at"],
        "original_title": doc.get("original_title", doc["name"]),
    }


def dialect_c(doc: Document) -> dict[str, Any]:
    """Dialect C: the SDK's Collection model (counts, owner id as a string, optional thumbnail)."""
    assets = int(doc.get("asset_count", 0))
    models = int(doc.get("model_count", 0))
    view: dict[str, Any] = {
        "id": doc["_id"],
        "name": doc["name"],
        "ownerId": str(doc["owner_id"]),
        "assetCount": assets,
        "modelCount": models,
        "itemCount": assets + models,
        "createdAt": doc["created_at"],
        "updatedAt": doc["updated_at"],
    }
    if thumbnail := doc.get("thumbnail"):
        # 003 types `url` as a required string: the asset's url, or "" when it was registered without one.
        view["thumbnail"] = {"assetId": thumbnail["asset_id"], "url": thumbnail.get("url") or ""}
    return view


def item(doc: Document) -> dict[str, Any]:
    """A registry entry (asset or model)."""
    view = {
        "id": doc["_id"],
        "name": doc["name"],
        "ownerId": str(doc["owner_id"]),
        "createdAt": doc["created_at"],
    }
    if doc.get("url") is not None:  # items stored before urls were left out when absent may hold null
        view["url"] = doc["url"]
    return view


def member_item(doc: Document) -> dict[str, Any]:
    """An item of a collection's list: as the registry shows it, marked when the registry deleted it."""
    view = item(doc)
    if doc.get("deleted"):
        view["deleted"] = True
    return view


def item_page_c(kind: str, items: list[Document], next_token: str | None) -> dict[str, Any]:
    """Dialect C's page of a collection's assets or models: `{"assets": [...], "nextPaginationToken"}`."""
    body: dict[str, Any] = {f"{kind}s": [member_item(doc) for doc in items]}
    if next_token is not None:
        body["nextPaginationToken"] = next_token
    return body


def asset_page_b(items: list[Document], next_cursor: str | None) -> dict[str, Any]:
    """Dialect B's page of a collection's assets, shaped as its history pages are."""
    return {"assets": {"results": [member_item(doc) for doc in items], "next_cursor": next_cursor}}

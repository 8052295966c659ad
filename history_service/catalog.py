"""Asking catalog_service about a collection the projection has not seen created yet.

Its created event may still be on its way (or the history may be rebuilding); catalog answers
`GET /internal/collections/{id}` and `GET /internal/collections/by-name/{namespace}/{project}/{name}`
with `{"collection_id", "owner_id", "project_id", "name"}`, or 404.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import Unavailable
from shared.internal import InternalClient


class CollectionInfo(BaseModel):
    """What authorization and rendering need to know about a collection."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    collection_id: str
    owner_id: int
    project_id: str
    name: str | None = None


class CollectionDirectory(Protocol):
    """Where collections are looked up when the projection does not know them (yet)."""

    async def by_id(self, collection_id: str) -> CollectionInfo | None:
        """The collection, or None when it does not exist."""

    async def by_name(self, namespace: str, project: str, name: str) -> CollectionInfo | None:
        """A dialect A collection by its namespace and project slugs and its name, or None."""


class CatalogCollections:
    """catalog_service's internal collection look-ups."""

    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def by_id(self, collection_id: str) -> CollectionInfo | None:
        """`GET /internal/collections/{id}`."""
        return await self._get(f"/internal/collections/{quote(collection_id, safe='')}")

    async def by_name(self, namespace: str, project: str, name: str) -> CollectionInfo | None:
        """`GET /internal/collections/by-name/{namespace}/{project}/{name}`."""
        segments = "/".join(quote(part, safe="") for part in (namespace, project, name))
        return await self._get(f"/internal/collections/by-name/{segments}")

    async def _get(self, path: str) -> CollectionInfo | None:
        status, body = await self._client.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise Unavailable("collection look-up unavailable")
        try:
            return CollectionInfo.model_validate(body)
        except ValidationError as exc:
            raise Unavailable("collection look-up unavailable") from exc

"""The HTTP adapter for the catalog ports: catalog_service's internal look-ups."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from access_service.ports import CollectionInfo, EntityId
from shared.errors import Unavailable
from shared.internal import InternalClient

ModelT = TypeVar("ModelT", bound=BaseModel)


class _ProjectFound(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project_id: EntityId


def _segment(value: str) -> str:
    """One path segment, percent-encoded so a `/` or `?` in it cannot change the path."""
    return quote(value, safe="")


class CatalogDirectory:
    """`ProjectDirectory` and `CollectionDirectory` over catalog_service's internal HTTP API."""

    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def project_id(self, namespace_slug: str, project_slug: str) -> str | None:
        """`GET /internal/projects/{namespace}/{project}`: 200 with the id, 404 when there is none."""
        status, body = await self._client.request(
            "GET", f"/internal/projects/{_segment(namespace_slug)}/{_segment(project_slug)}"
        )
        if status == 404:
            return None
        return _parse(status, body, _ProjectFound).project_id

    async def collection(self, collection_id: str) -> CollectionInfo | None:
        """`GET /internal/collections/{id}`: 200 with owner and project, 404 when unknown or deleted."""
        status, body = await self._client.request("GET", f"/internal/collections/{_segment(collection_id)}")
        if status == 404:
            return None
        return _parse(status, body, CollectionInfo)


def _parse(status: int, body: object, model: type[ModelT]) -> ModelT:
    """A 200 answer as `model`; anything else means catalog cannot answer now (503)."""
    if status != 200:
        raise Unavailable("catalog unavailable")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise Unavailable("catalog answered an unexpected body") from exc

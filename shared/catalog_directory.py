"""catalog_service's internal look-ups, as the other services call them (the contract and its adapter).

catalog owns projects and collections; access and history ask it only for the few facts a decision or a
history page needs: a project's id by its slugs, and a live collection's owner, project and name.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal, Protocol, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from shared.authz import CollectionRef
from shared.errors import Unavailable
from shared.internal import InternalClient

log = logging.getLogger(__name__)
ModelT = TypeVar("ModelT", bound=BaseModel)
EntityId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class CollectionInfo(BaseModel):
    """A live collection: `GET /internal/collections/{id}` and `.../by-name/{namespace}/{project}/{name}`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    collection_id: EntityId
    owner_id: int
    project_id: EntityId
    name: str | None = None
    # The access version on the collection's document as this answer read it (shared/authz.py keys its
    # cached allows on it); None from a catalog that does not send it.
    access_version: int | None = None

    @property
    def ref(self) -> CollectionRef:
        """The part an authorization decision needs."""
        return CollectionRef(
            collection_id=self.collection_id,
            owner_id=self.owner_id,
            project_id=self.project_id,
            access_version=self.access_version,
        )


class VisibilityFact(BaseModel):
    """What access_service tells catalog so its lists' read model follows (`POST /internal/visibility/facts`):
    a share of a collection with a user or a group, a user in a group, or a user's role on a project, on or
    off, at access_service's version of the entity that holds it (an older version never wins)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    kind: Literal["share", "member", "role"]
    on: bool
    version: Annotated[int, Field(ge=0, le=2**62)]
    collection_id: EntityId | None = None
    user_id: Annotated[int, Field(ge=0, le=2**62)] | None = None
    group_id: Annotated[int, Field(ge=0, le=2**62)] | None = None
    project_id: EntityId | None = None

    @model_validator(mode="after")
    def _complete(self) -> VisibilityFact:
        needs = {
            "share": self.collection_id is not None and (self.user_id is None) != (self.group_id is None),
            "member": self.group_id is not None and self.user_id is not None,
            "role": self.project_id is not None and self.user_id is not None,
        }
        if not needs[self.kind]:
            raise ValueError(f"a {self.kind} fact names what it is about")
        return self


class VisibilityFacts(BaseModel):
    """A batch of facts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    facts: Annotated[list[VisibilityFact], Field(max_length=1000)]


class _ProjectFound(BaseModel):
    model_config = ConfigDict(extra="ignore")

    project_id: EntityId


class ProjectDirectory(Protocol):
    """Resolves a project's slugs to its id."""

    async def project_id(self, namespace_slug: str, project_slug: str) -> str | None:
        """The project's id, or None when there is no such project."""
        ...


class CollectionDirectory(Protocol):
    """Looks live collections up by id, or by dialect A's namespace, project and name."""

    async def collection(self, collection_id: str) -> CollectionInfo | None:
        """The collection, or None when it is unknown or deleted."""
        ...

    async def collection_by_name(self, namespace: str, project: str, name: str) -> CollectionInfo | None:
        """The collection with that name in that project, or None."""
        ...

    async def show_visibility(self, collection_id: str, is_public: bool, version: int) -> None:
        """Tell catalog a collection's new public flag at this access version (best effort)."""
        ...

    async def tell_facts(self, facts: list[VisibilityFact]) -> None:
        """Tell catalog who now sees what, before the change is answered (best effort: events follow)."""
        ...


def _path(*segments: str) -> str:
    """Percent-encoded path segments, so a `/` or `?` in one cannot change the path."""
    return "/".join(quote(segment, safe="") for segment in segments)


class CatalogDirectory:
    """`ProjectDirectory` and `CollectionDirectory` over catalog_service's internal HTTP API."""

    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def project_id(self, namespace_slug: str, project_slug: str) -> str | None:
        """`GET /internal/projects/{namespace}/{project}`."""
        found = await self._get(f"/internal/projects/{_path(namespace_slug, project_slug)}", _ProjectFound)
        return found.project_id if found else None

    async def collection(self, collection_id: str) -> CollectionInfo | None:
        """`GET /internal/collections/{id}`."""
        return await self._get(f"/internal/collections/{_path(collection_id)}", CollectionInfo)

    async def collection_by_name(self, namespace: str, project: str, name: str) -> CollectionInfo | None:
        """`GET /internal/collections/by-name/{namespace}/{project}/{name}`."""
        return await self._get(
            f"/internal/collections/by-name/{_path(namespace, project, name)}", CollectionInfo
        )

    async def show_visibility(self, collection_id: str, is_public: bool, version: int) -> None:
        """`POST /internal/collections/{id}/visibility`; a failure is logged (the event carries it too)."""
        try:
            status, _ = await self._client.request(
                "POST",
                f"/internal/collections/{_path(collection_id)}/visibility",
                json={"is_public": is_public, "version": version},
            )
        except Unavailable:
            status = 503
        if status != 200:
            log.warning("catalog did not take a visibility change now: %s", status)

    async def tell_facts(self, facts: list[VisibilityFact]) -> None:
        """`POST /internal/visibility/facts`; a failure is logged (the events carry the same facts)."""
        if not facts:
            return
        body = VisibilityFacts(facts=facts).model_dump(mode="json", exclude_none=True)
        try:
            status, _ = await self._client.request("POST", "/internal/visibility/facts", json=body)
        except Unavailable:
            status = 503
        if status != 200:
            log.warning("catalog did not take visibility facts now: %s", status)

    async def _get(self, path: str, model: type[ModelT]) -> ModelT | None:
        """A 200 answer as `model`, None for 404; anything else means catalog cannot answer now (503)."""
        status, body = await self._client.request("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise Unavailable("catalog unavailable")
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise Unavailable("catalog answered an unexpected body") from exc

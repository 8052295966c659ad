"""Ports: what access_service needs from outside its database, as Protocols adapters implement.

catalog_service owns projects and collections; access_service only asks it for the few facts a decision
needs (a project's id, a collection's owner and project). Mail has no provider here, so the port's default
adapter records messages (see `access_service.mail`).
"""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.authz import CollectionRef

EntityId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class CollectionInfo(BaseModel):
    """What catalog_service tells about a live collection: `GET /internal/collections/{id}`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    collection_id: EntityId
    owner_id: int
    project_id: EntityId
    name: str

    @property
    def ref(self) -> CollectionRef:
        """The part an authorization decision needs."""
        return CollectionRef(
            collection_id=self.collection_id, owner_id=self.owner_id, project_id=self.project_id
        )


class ProjectDirectory(Protocol):
    """Resolves a project's slugs to its id."""

    async def project_id(self, namespace_slug: str, project_slug: str) -> str | None:
        """The project's id, or None when there is no such project."""
        ...


class CollectionDirectory(Protocol):
    """Looks live collections up by id."""

    async def collection(self, collection_id: str) -> CollectionInfo | None:
        """The collection, or None when it is unknown or deleted."""
        ...


class MailMessage(BaseModel):
    """One outgoing e-mail; `id` makes a resend of the same message harmless."""

    model_config = ConfigDict(frozen=True)

    id: str
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    """Sends e-mail."""

    async def send(self, message: MailMessage) -> None:
        """Hand the message over for delivery; raise when that failed."""
        ...

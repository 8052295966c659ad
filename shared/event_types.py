"""The event catalogue: every event type services publish, its data model, and its history name.

This is the contract between services (see docs/events.md). Each type is `<service>.<entity>.<event>`
and travels on subject `hub.<type>`; `ids` carries the entity ids named below, `data` the model's fields.
A consumer validates `data` against the model for the envelope's `type` and `version`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.events import EventEnvelope


class EventData(BaseModel):
    """Base of every event payload: frozen, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- catalog_service: ids {collection_id, project_id} on collection events ------------------------------
class CollectionCreated(EventData):
    """A collection was created (any dialect)."""

    name: str
    owner_id: int
    description: str | None = None
    dataset_id: str | None = None


class CollectionUpdated(EventData):
    """Fields of a collection changed; `changes` holds the new values of the fields that changed."""

    name: str
    changes: dict[str, Any]


class CollectionDeleted(EventData):
    """A collection was (soft-)deleted."""

    name: str


class ItemsChanged(EventData):
    """Members were added to or removed from a collection: node ids, asset ids or model ids."""

    kind: Literal["node", "asset", "model"]
    ids: list[str]


class ThumbnailSet(EventData):
    """The collection's thumbnail now shows this asset (None: no thumbnail)."""

    asset_id: str | None


class NamedEntityCreated(EventData):
    """A namespace, project, dataset, asset or model was created."""

    name: str | None = None


class EntityDeleted(EventData):
    """An asset or model was removed from the registry."""


# --- access_service ---------------------------------------------------------------------------------------
class UserCreated(EventData):
    """ids {user_id}."""

    email: str
    role: str
    first_name: str | None = None
    last_name: str | None = None


class ApiKeyChanged(EventData):
    """ids {user_id?, key_id}."""

    name: str | None = None


class VisibilityChanged(EventData):
    """ids {collection_id}: made public or private."""

    is_public: bool


class ShareChanged(EventData):
    """ids {collection_id, user_id | group_id}: a user or a user group was linked or unlinked."""


class GuestInvited(EventData):
    """ids {collection_id, user_id}: a guest user was invited to the collection by e-mail."""

    email: str


class GroupChanged(EventData):
    """ids {group_id, user_id?}: a group was created or its membership changed."""

    name: str | None = None


class ProjectRoleSet(EventData):
    """ids {project_id, user_id}: the user's role on a project (None: removed)."""

    role: Literal["owner", "editor", "viewer"] | None


EVENT_TYPES: dict[str, tuple[type[EventData], str]] = {
    # event type -> (data model, history event_type)
    "catalog.collection.created": (CollectionCreated, "COLLECTION_CREATED"),
    "catalog.collection.updated": (CollectionUpdated, "COLLECTION_UPDATED"),
    "catalog.collection.deleted": (CollectionDeleted, "COLLECTION_DELETED"),
    "catalog.collection.members_added": (ItemsChanged, "MEMBERS_ADDED"),
    "catalog.collection.members_removed": (ItemsChanged, "MEMBERS_REMOVED"),
    "catalog.collection.assets_linked": (ItemsChanged, "ASSET_LINKED"),
    "catalog.collection.assets_unlinked": (ItemsChanged, "ASSET_UNLINKED"),
    "catalog.collection.models_linked": (ItemsChanged, "MODEL_LINKED"),
    "catalog.collection.models_unlinked": (ItemsChanged, "MODEL_UNLINKED"),
    "catalog.collection.thumbnail_set": (ThumbnailSet, "THUMBNAIL_SET"),
    "catalog.namespace.created": (NamedEntityCreated, "NAMESPACE_CREATED"),
    "catalog.project.created": (NamedEntityCreated, "PROJECT_CREATED"),
    "catalog.dataset.created": (NamedEntityCreated, "DATASET_CREATED"),
    "catalog.asset.created": (NamedEntityCreated, "ASSET_CREATED"),
    "catalog.asset.deleted": (EntityDeleted, "ASSET_DELETED"),
    "catalog.model.created": (NamedEntityCreated, "MODEL_CREATED"),
    "catalog.model.deleted": (EntityDeleted, "MODEL_DELETED"),
    "access.user.created": (UserCreated, "USER_CREATED"),
    "access.api_key.created": (ApiKeyChanged, "API_KEY_CREATED"),
    "access.api_key.revoked": (ApiKeyChanged, "API_KEY_REVOKED"),
    "access.collection.made_public": (VisibilityChanged, "COLLECTION_MADE_PUBLIC"),
    "access.collection.made_private": (VisibilityChanged, "COLLECTION_MADE_PRIVATE"),
    "access.collection.user_linked": (ShareChanged, "USER_LINKED"),
    "access.collection.user_unlinked": (ShareChanged, "USER_UNLINKED"),
    "access.collection.group_linked": (ShareChanged, "USER_GROUP_LINKED"),
    "access.collection.group_unlinked": (ShareChanged, "USER_GROUP_UNLINKED"),
    "access.collection.guest_invited": (GuestInvited, "GUEST_INVITED"),
    "access.group.created": (GroupChanged, "USER_GROUP_CREATED"),
    "access.group.member_added": (GroupChanged, "USER_GROUP_MEMBER_ADDED"),
    "access.group.member_removed": (GroupChanged, "USER_GROUP_MEMBER_REMOVED"),
    "access.project.role_set": (ProjectRoleSet, "PROJECT_ROLE_SET"),
}


class UnknownEventType(ValueError):
    """The envelope names a type this catalogue does not define."""


def event(event_type: str, data: EventData, *, actor: int | None, **ids: str | int) -> EventEnvelope:
    """A new envelope for a catalogued type, its data checked against the catalogue's model."""
    model, _ = EVENT_TYPES[event_type]
    if not isinstance(data, model):
        raise TypeError(f"{event_type} carries {model.__name__}, not {type(data).__name__}")
    return EventEnvelope(type=event_type, actor=actor, ids=dict(ids), data=data.model_dump(mode="json"))


def validate_event(envelope: EventEnvelope) -> EventData:
    """The envelope's data as its catalogued model; raises for unknown types or invalid data."""
    try:
        model, _ = EVENT_TYPES[envelope.type]
    except KeyError as exc:
        raise UnknownEventType(envelope.type) from exc
    return model.model_validate(envelope.data)


def history_name(event_type: str) -> str:
    """The history API's `event_type` for an envelope type."""
    return EVENT_TYPES[event_type][1]

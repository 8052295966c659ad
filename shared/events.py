"""The event envelope: the versioned contract every service publishes on and consumes from NATS."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.clock import now
from shared.logs import request_id_var

STREAM_NAME = "HUB_EVENTS"
SUBJECT_PREFIX = "hub"
STREAM_SUBJECTS = [f"{SUBJECT_PREFIX}.>"]


def new_event_id() -> str:
    """A unique event id (also the JetStream `Nats-Msg-Id`, so a republish is deduplicated)."""
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The request id of the request being served, if any."""
    return request_id_var.get()


class EventEnvelope(BaseModel):
    """One domain event: a unique id, a dotted type `<service>.<entity>.<event>`, its version and data.

    `version` is the version of the data model; `entity_version` is the version the changed document
    reached by this change (assigned in the same atomic write), so a consumer can tell a newer state
    from an older one whatever order the events reach it in. None: the writer does not version it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_event_id, min_length=1, max_length=64)
    type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+\.[a-z_]+$")
    version: int = Field(default=1, ge=1)
    entity_version: int | None = Field(default=None, ge=0)
    occurred_at: datetime = Field(default_factory=now)
    actor: int | None = None
    request_id: str | None = Field(default_factory=current_request_id)
    ids: dict[str, str | int] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def subject(self) -> str:
        """The NATS subject: `hub.<service>.<entity>.<event>`."""
        return f"{SUBJECT_PREFIX}.{self.type}"

    def at_entity_version(self, entity_version: int) -> EventEnvelope:
        """This event as written by the change that brings its document to `entity_version`, stamped now."""
        return self.model_copy(update={"entity_version": entity_version, "occurred_at": now()})

    def outbox_entry(self) -> dict[str, Any]:
        """The form kept in a document's outbox until the relay has published it."""
        return self.model_dump(mode="json")

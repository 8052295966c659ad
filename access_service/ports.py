"""Ports: what access_service needs from outside its database, as Protocols adapters implement.

The catalog ports and their HTTP adapter are shared with history (`shared/catalog_directory.py`).

catalog_service owns projects and collections; access_service only asks it for the few facts a decision
needs (a project's id, a collection's owner and project). Mail has no provider here, so the port's default
adapter records messages (see `access_service.mail`).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict


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

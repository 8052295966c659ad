"""The default `Mailer`: no mail server exists here, so messages are recorded in `outgoing_mail`.

A real adapter (SMTP, a provider's API) implements the same `Mailer` Protocol and replaces this one in
`access_service.app`; the recorded messages are also what an operator reads to hand an invitation on.
"""

from __future__ import annotations

from access_service.ports import MailMessage
from access_service.repository import AccessRepository
from shared.clock import timestamp


class RecordingMailer:
    """Keeps each message in the service's `outgoing_mail` collection, once per message id."""

    def __init__(self, repository: AccessRepository) -> None:
        self._repository = repository

    async def send(self, message: MailMessage) -> None:
        """Record the message as sent."""
        await self._repository.record_mail(
            {
                "_id": message.id,
                "to": message.to,
                "subject": message.subject,
                "body": message.body,
                "created_at": timestamp(),
            }
        )

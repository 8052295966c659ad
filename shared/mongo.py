"""The MongoDB client factory: pymongo's native async client, UTC datetimes, counted commands."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError, WriteConcernError

from shared.metrics import Metrics
from shared.settings import ServiceSettings

Document = dict[str, Any]
DUPLICATE_KEY = 11000


def duplicates_of(exc: BulkWriteError) -> list[Document]:
    """The duplicate-key errors of a bulk write that failed only on those (each names its statement's
    `index`); anything else is raised again. Write-concern errors count as failure too: the writes may yet
    be rolled back, so nothing may be acknowledged on them (`WriteConcernError` is transient: retry)."""
    if concern := exc.details.get("writeConcernErrors"):
        raise WriteConcernError(str(concern[0].get("errmsg", "write concern not satisfied"))) from exc
    errors: list[Document] = exc.details.get("writeErrors", [])
    if any(error.get("code") != DUPLICATE_KEY for error in errors):
        raise exc
    return errors


def create_mongo_client(
    settings: ServiceSettings, metrics: Metrics, *, label: str = "api", **options: Any
) -> AsyncMongoClient[Document]:
    """A client whose commands are counted under `mongo_commands_total{client=label}`."""
    return AsyncMongoClient(
        settings.mongodb_url,
        tz_aware=True,
        w=settings.write_concern_w,
        appname=f"{settings.service_name}-{label}",
        event_listeners=[metrics.command_listener(label)],
        serverSelectionTimeoutMS=5000,
        **options,
    )


async def ping(client: AsyncMongoClient[Document]) -> None:
    """Raise unless the server answers."""
    await client.admin.command("ping")

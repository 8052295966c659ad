"""The MongoDB client factory: pymongo's native async client, UTC datetimes, counted commands."""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from shared.metrics import Metrics
from shared.settings import ServiceSettings

Document = dict[str, Any]


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

"""NATS and JetStream: connecting, and declaring the `HUB_EVENTS` stream every service relies on."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import BadRequestError

from shared.events import STREAM_NAME, STREAM_SUBJECTS
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


async def connect_nats(settings: ServiceSettings) -> NatsClient:
    """Connect with unlimited reconnects, so a restarted nats-server is picked up again."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    return await nats.connect(
        settings.nats_url,
        name=settings.service_name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        # Bounded, so a subscription cancelled mid-fetch cannot hold shutdown past the grace period.
        drain_timeout=5,
        error_cb=on_error,
    )


def stream_config(
    settings: ServiceSettings, name: str = STREAM_NAME, subjects: list[str] | None = None
) -> StreamConfig:
    """A stream as every hub stream is kept: file storage, replicas and duplicate window from settings.

    The default is `HUB_EVENTS` on `hub.>`; history's dead-letter stream uses the same settings.
    """
    return StreamConfig(
        name=name,
        subjects=subjects or STREAM_SUBJECTS,
        storage=StorageType.FILE,
        num_replicas=settings.nats_stream_replicas,
        duplicate_window=settings.nats_duplicate_window_seconds,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or bring an existing one up to date with the config."""
    try:
        await js.stream_info(config.name or "")
    except nats.js.errors.NotFoundError:
        try:
            await js.add_stream(config)
        except BadRequestError:
            # Another service created it between our look-up and our add.
            await js.update_stream(config)
    else:
        await js.update_stream(config)

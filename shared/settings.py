"""Settings base: one pydantic-settings object per service, read from `HUB_*` variables at start."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs: where it listens, its MongoDB database, NATS, and the internal secret."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", frozen=True)

    service_name: str = "hub"
    host: str = "127.0.0.1"
    port: int = 8000
    mongodb_url: str = Field(
        default="mongodb://127.0.0.1:27017",
        validation_alias=AliasChoices("HUB_MONGODB_URL", "MONGODB_URL"),
    )
    mongo_database: str = "hub"
    # "majority" in production (replica set); an integer such as "1" for a single server.
    mongo_write_concern: str = "majority"
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("HUB_NATS_URL", "NATS_URL"),
    )
    # Replicas for the HUB_EVENTS stream: 3 in production, 1 for a single embedded nats-server.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    # Longer than the outbox relay's retry horizon, so a republished event is dropped by JetStream.
    nats_duplicate_window_seconds: float = Field(default=600.0, gt=0)
    # The outbox relay's polling pass: removes published events, publishes what a crash left.
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    # Publish what a request wrote from memory right after it (false: wake the polling pass instead, the
    # design before issue 12, kept to measure against).
    outbox_publish_from_memory: bool = True
    # Where a newly created durable consumer on HUB_EVENTS starts (history's, catalog's): "all" replays the
    # whole stream. Only read when the durable does not exist yet; tests on a shared server use "new", so
    # no stack applies another stack's events (user and group ids repeat from one stack to the next).
    consumer_deliver_policy: Literal["all", "new"] = "all"
    internal_secret: SecretStr = SecretStr("")
    # Peers reached over internal HTTP (authorization decisions, collection look-ups).
    catalog_url: str = "http://127.0.0.1:8081"
    access_url: str = "http://127.0.0.1:8082"
    history_url: str = "http://127.0.0.1:8083"
    # How long another service may reuse an access decision; <= 1s bounds how long a revoked share works.
    decision_cache_ttl_seconds: float = Field(default=0.5, ge=0, le=1.0)
    log_level: str = "INFO"
    # Seconds in-flight requests get to finish after SIGTERM.
    shutdown_timeout: float = 10.0
    # Seconds a client's idle kept-alive connection stays open (what `web.run_app` used; aiohttp's own
    # default is an hour).
    keepalive_seconds: float = Field(default=75.0, gt=0, le=3600)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Seconds a request's body has to arrive in full after its head, else 408 and the connection closes
    # (`shared.connections`). The gateway forwards only whole bodies; services keep it as a second bound.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    @property
    def write_concern_w(self) -> int | str:
        """The `w` value for the Mongo client: an integer when the setting is numeric."""
        value = self.mongo_write_concern
        return int(value) if value.isdigit() else value

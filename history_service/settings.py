"""history_service settings."""

from __future__ import annotations

from pydantic import Field, model_validator

from shared.settings import ServiceSettings


class HistorySettings(ServiceSettings):
    """Settings of history_service (`HUB_*`)."""

    service_name: str = "history_service"
    port: int = 8083
    mongo_database: str = "hub_history"

    # The durable pull consumer on HUB_EVENTS that every replica shares (each event goes to one of them).
    consumer_durable: str = Field(default="history", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Deliveries of one event before it is dead-lettered (a poison event is dead-lettered at once).
    consumer_max_deliver: int = Field(default=20, ge=2, le=1000)
    # Redelivery waits after an unacknowledged delivery; the first is also the ack wait, so it must
    # exceed the time one batch can take (a Mongo server selection waits up to 5 s).
    consumer_backoff_seconds: list[float] = Field(default_factory=lambda: [10.0, 30.0, 60.0])
    # Delay of a nak after a failed projection: base * 2**(deliveries - 1), capped.
    consumer_retry_base_seconds: float = Field(default=1.0, gt=0)
    consumer_retry_cap_seconds: float = Field(default=60.0, gt=0)
    consumer_batch_size: int = Field(default=100, ge=1, le=1000)
    # Where events that cannot be projected go (stream HUB_DLQ; never under `hub.>`, or they would loop).
    dead_letter_subject: str = Field(default="hub_dlq.history", pattern=r"^hub_dlq(\.[A-Za-z0-9_-]+)+$")

    @model_validator(mode="after")
    def _backoff_fits_max_deliver(self) -> HistorySettings:
        """JetStream refuses a consumer whose backoff list is not shorter than max_deliver."""
        if (
            not self.consumer_backoff_seconds
            or len(self.consumer_backoff_seconds) >= self.consumer_max_deliver
        ):
            raise ValueError("consumer_backoff_seconds needs 1 to consumer_max_deliver - 1 entries")
        if any(wait <= 0 for wait in self.consumer_backoff_seconds):
            raise ValueError("consumer_backoff_seconds must be positive")
        return self

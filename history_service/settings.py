"""history_service settings."""

from __future__ import annotations

from shared.settings import ServiceSettings


class HistorySettings(ServiceSettings):
    """Settings of history_service (`HUB_*`)."""

    service_name: str = "history_service"
    port: int = 8083
    mongo_database: str = "hub_history"

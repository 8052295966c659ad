"""catalog_service settings."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Settings of catalog_service (`HUB_*`)."""

    service_name: str = "catalog_service"
    port: int = 8081
    mongo_database: str = "hub_catalog"
    # The durable consumer (shared by every replica) that keeps collections' public flags from access events.
    visibility_durable: str = Field(default="catalog-visibility", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    facts_durable: str = Field(default="catalog-visibility-facts", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # A membership change pending this long was interrupted by a crash (a live one takes milliseconds):
    # recovery finishes it. Checked every `member_recovery_interval_seconds`.
    member_change_stale_seconds: float = Field(default=30.0, gt=0)
    member_recovery_interval_seconds: float = Field(default=5.0, gt=0)

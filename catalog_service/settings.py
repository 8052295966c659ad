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
    # The lists' verifier (catalog_service/view_verifier.py): views checked against the rules each recovery
    # round (0: off); every view is checked once per (views / per_pass) rounds. A difference is confirmed
    # after `views_verify_confirm_seconds` before it counts as drift (a change under way is not drift).
    views_verify_per_pass: int = Field(default=20, ge=0, le=10_000)
    views_verify_confirm_seconds: float = Field(default=2.0, ge=0, le=60)

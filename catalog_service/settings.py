"""catalog_service settings."""

from __future__ import annotations

from shared.settings import ServiceSettings


class CatalogSettings(ServiceSettings):
    """Settings of catalog_service (`HUB_*`)."""

    service_name: str = "catalog_service"
    port: int = 8081
    mongo_database: str = "hub_catalog"

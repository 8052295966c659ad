"""access_service settings."""

from __future__ import annotations

from pydantic import SecretStr

from shared.settings import ServiceSettings


class AccessSettings(ServiceSettings):
    """Settings of access_service (`HUB_*`)."""

    service_name: str = "access_service"
    port: int = 8082
    mongo_database: str = "hub_access"
    # When set, an admin user (admin@localhost) holding exactly this key exists after start.
    admin_api_key: SecretStr | None = None

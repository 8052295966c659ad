"""Gateway settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Settings of the gateway (`HUB_*`)."""

    service_name: str = "gateway"
    port: int = 8080
    # HS256 secret for the embedded default; a JWKS (file path or https URL) for RS256/ES256 with `kid`.
    jwt_secret: SecretStr | None = None
    jwt_jwks: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str = "collections-hub"
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256", "RS256", "ES256"])
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    # How long a resolved principal is reused. At most 1s: a revoked key must stop working within 1s.
    auth_cache_ttl_seconds: float = Field(default=0.5, ge=0, le=1.0)
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)

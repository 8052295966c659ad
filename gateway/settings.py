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
    # Connecting to a service, its answer's head (whole), and each wait for more of a body: a long answer
    # keeps flowing as long as its bytes do.
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    # Rate limits (token buckets; a rate of 0 switches one off). Per authenticated credential (user and key),
    # per client address before authentication, and for failed authentications per client address: once
    # that bucket is empty, the address gets 429 for everything until it refills.
    rate_limit_credential_per_second: float = Field(default=100.0, ge=0)
    rate_limit_credential_burst: float = Field(default=200.0, ge=1)
    rate_limit_address_per_second: float = Field(default=200.0, ge=0)
    rate_limit_address_burst: float = Field(default=400.0, ge=1)
    rate_limit_auth_failures_per_second: float = Field(default=1.0, ge=0)
    rate_limit_auth_failures_burst: float = Field(default=20.0, ge=1)
    # A second listener that serves only `/metrics`, without credentials, for in-cluster scraping (the
    # Kubernetes Service does not expose it). On the public port `/metrics` needs the admin role.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Proxies in front of the gateway that append to X-Forwarded-For (0: the peer address is the client).
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)
    # Connections open at once from one TCP peer address (each of `gateway_workers` takes 1/N); the next
    # one is closed at once (0: no cap). Behind proxies the peer is a proxy: set it above their pools.
    max_connections_per_address: int = Field(default=256, ge=0)
    # The event loop: uvloop (`HUB_UVLOOP=0` for asyncio's own, e.g. to rule uvloop out when debugging).
    uvloop: bool = True
    # Processes serving the one port (SO_REUSEPORT, Linux); each has its own caches and 1/N of each limit.
    gateway_workers: int = Field(default=1, ge=1, le=64)

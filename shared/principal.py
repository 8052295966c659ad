"""The authenticated caller, and how the gateway hands it to services in internal headers."""

from __future__ import annotations

import hmac
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import Forbidden, Unauthorized

PRINCIPAL_HEADER = "X-Hub-Principal"
SECRET_HEADER = "X-Hub-Internal-Secret"  # noqa: S105 - a header name, not a secret
REQUEST_ID_HEADER = "X-Request-ID"

Role = Literal["admin", "user", "guest"]


class Principal(BaseModel):
    """Who is calling: the user, their role, and how they proved it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    email: str
    role: Role
    first_name: str | None = None
    last_name: str | None = None
    auth: Literal["api_key", "jwt"]
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """Admins may see and change everything."""
        return self.role == "admin"


PRINCIPAL_KEY = web.RequestKey("principal", Principal)


def internal_headers(secret: str, principal: Principal | None, request_id: str | None) -> dict[str, str]:
    """Headers the gateway adds to a proxied request (and services add to internal calls)."""
    headers = {SECRET_HEADER: secret}
    if principal is not None:
        headers[PRINCIPAL_HEADER] = principal.model_dump_json()
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return headers


def secret_matches(presented: str | None, expected: str) -> bool:
    """Constant-time check of the internal shared secret; an empty expected secret matches nothing."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def require_principal(request: web.Request) -> Principal:
    """The caller of this request; 401 when the gateway sent none."""
    principal: Principal | None = request.get(PRINCIPAL_KEY)
    if principal is None:
        raise Unauthorized("authentication required")
    return principal


def require_admin(principal: Principal) -> None:
    """Refuse a caller that is not an admin (403)."""
    if not principal.is_admin:
        raise Forbidden("admin role required")


def parse_principal(raw: str) -> Principal:
    """Decode the principal header; a malformed one is treated as no credentials."""
    try:
        return Principal.model_validate_json(raw)
    except ValidationError as exc:
        raise Unauthorized("malformed principal") from exc

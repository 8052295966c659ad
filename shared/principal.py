"""The authenticated caller, and how the gateway hands it to services in internal headers."""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import Forbidden, Unauthorized

PRINCIPAL_HEADER = "X-Hub-Principal"
# Two credentials, both derived from the one internal secret: services call each other (and the gateway
# calls access_service's principal look-ups) with the internal one; the gateway forwards public requests
# with the forwarding one. `/internal/...` accepts only the first, so no forwarded request can reach it.
SECRET_HEADER = "X-Hub-Internal-Secret"  # noqa: S105 - a header name, not a secret
FORWARDED_HEADER = "X-Hub-Forwarded"
REQUEST_ID_HEADER = "X-Request-ID"
# Pairs a service's answer with the gateway's request: sent fresh on each, echoed back (gateway/upstream.py).
EXCHANGE_HEADER = "X-Hub-Exchange"

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


@lru_cache(maxsize=8)
def derived_credential(secret: str, purpose: Literal["internal", "forwarded"]) -> str:
    """The credential for one purpose, derived from the shared secret (empty secret: no credential)."""
    if not secret:
        return ""
    return hmac.new(secret.encode(), f"collections-hub:{purpose}".encode(), hashlib.sha256).hexdigest()


def principal_header(principal: Principal) -> str:
    """The principal as JSON fit for a header line: printable ASCII only. A name may hold any character
    (DEL, non-ASCII); JSON escapes them (`\\u007f`), and services read the same principal back."""
    text = principal.model_dump_json()
    if text.isascii() and text.isprintable():
        return text
    return json.dumps(principal.model_dump(mode="json"), ensure_ascii=True, separators=(",", ":"))


def internal_headers(secret: str, principal: Principal | None, request_id: str | None) -> dict[str, str]:
    """Headers of a call between services (and of the gateway's own calls to access_service)."""
    headers = {SECRET_HEADER: derived_credential(secret, "internal")}
    if principal is not None:
        headers[PRINCIPAL_HEADER] = principal_header(principal)
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return headers


def forwarded_headers(secret: str, principal: Principal, request_id: str | None) -> dict[str, str]:
    """Headers the gateway adds to a public request it forwards: never the internal credential."""
    headers = {
        FORWARDED_HEADER: derived_credential(secret, "forwarded"),
        PRINCIPAL_HEADER: principal_header(principal),
    }
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    return headers


def secret_matches(presented: str | None, secret: str, purpose: Literal["internal", "forwarded"]) -> bool:
    """Constant-time check of a presented credential; an empty shared secret matches nothing."""
    expected = derived_credential(secret, purpose)
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

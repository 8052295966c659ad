"""Reading credentials off a request: X-API-KEY, Bearer (API key or JWT) and Basic key_id:secret."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

from multidict import CIMultiDictProxy

from shared.errors import Unauthorized

MAX_CREDENTIAL_LENGTH = 8192


def _well_formed(value: str) -> bool:
    """Printable ASCII only: every credential we issue or accept (API keys, base64, compact JWS) is, and a
    byte outside that range (aiohttp decodes headers with `surrogateescape`) must be a 401 here rather
    than an encoding error deeper down."""
    return value.isascii() and value.isprintable()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the caller presented; `cache_key` identifies it (the full secret material) for the cache."""

    kind: Literal["api_key", "basic", "jwt"]
    token: str
    key_id: str = ""

    @property
    def cache_key(self) -> str:
        """The presented material, so a different secret for the same key id is never served from cache."""
        return f"{self.kind}:{self.key_id}:{self.token}"


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three dot-separated parts; our API keys have two."""
    return token.count(".") == 2


def extract_credentials(headers: CIMultiDictProxy[str]) -> Credentials:
    """The caller's credentials, or 401 when there are none or they are malformed."""
    if len(headers.getall("X-API-KEY", ())) > 1 or len(headers.getall("Authorization", ())) > 1:
        raise Unauthorized("send one credential, once")  # which line counts would be a guess
    api_key = headers.get("X-API-KEY")
    authorization = headers.get("Authorization")
    # Two credentials are ambiguous: a wrong one next to a valid one must not pass unnoticed.
    if api_key is not None and authorization is not None:
        raise Unauthorized("send one credential: X-API-KEY or Authorization, not both")
    if api_key is not None:
        if not api_key or len(api_key) > MAX_CREDENTIAL_LENGTH or not _well_formed(api_key):
            raise Unauthorized("invalid API key")
        return Credentials("api_key", api_key)
    if not authorization or len(authorization) > MAX_CREDENTIAL_LENGTH:
        raise Unauthorized("authentication required")
    if not _well_formed(authorization):
        raise Unauthorized("malformed credentials")
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credentials("jwt" if looks_like_jwt(value) else "api_key", value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("malformed basic credentials") from exc
        key_id, sep, secret = decoded.partition(":")
        if not sep or not key_id or not secret or not decoded.isprintable():
            raise Unauthorized("malformed basic credentials")
        return Credentials("basic", secret, key_id=key_id)
    raise Unauthorized("unsupported authorization scheme")

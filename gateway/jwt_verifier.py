"""JWT verification: algorithm allow-list, exp/nbf/aud (and iss) with leeway, HS256 or a JWKS by `kid`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import jwt
from aiohttp import ClientSession, ClientTimeout

from gateway.settings import GatewaySettings
from shared.errors import Unauthorized

log = logging.getLogger(__name__)

NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")
_SUBJECT = re.compile(r"[1-9][0-9]{0,17}")
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"})


async def load_jwks(source: str) -> jwt.PyJWKSet:
    """A JWKS from a file path or an http(s) URL."""
    if source.startswith(("https://", "http://")):
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as session,
            session.get(source) as response,
        ):
            response.raise_for_status()
            data: dict[str, Any] = await response.json(content_type=None)
    else:
        data = json.loads(await asyncio.to_thread(Path(source).read_text))
    return jwt.PyJWKSet.from_dict(data)


class JwtVerifier:
    """Verifies bearer JWTs and returns the subject's user id."""

    def __init__(self, settings: GatewaySettings, jwks: jwt.PyJWKSet | None) -> None:
        self._secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._jwks = jwks
        self._allowed = frozenset(settings.jwt_algorithms) & (HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS)
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds

    def _key_for(self, header: dict[str, Any]) -> Any:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._allowed:
            raise Unauthorized("token algorithm not allowed")
        if alg in HMAC_ALGORITHMS:
            if not self._secret:
                raise Unauthorized("token algorithm not allowed")
            return self._secret
        if self._jwks is None:
            raise Unauthorized("token algorithm not allowed")
        kid = header.get("kid")
        try:
            jwk = self._jwks[kid] if isinstance(kid, str) else None
        except KeyError:
            jwk = None
        if jwk is None:
            raise Unauthorized("unknown signing key")
        # The key's own algorithm must agree with the token's (no RS/HS or RS/ES confusion).
        if jwk.algorithm_name and jwk.algorithm_name != alg:
            raise Unauthorized("token algorithm does not match its key")
        return jwk.key

    def subject(self, token: str) -> int:
        """The verified token's `sub` as a user id; 401 for anything not fully valid."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._key_for(header)
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("token not yet valid") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        except (ValueError, TypeError, RecursionError) as exc:
            # Whatever else PyJWT trips over in a caller's bytes (a token that is not UTF-8 once was one)
            # is still the caller's malformed token: 401, never a 500.
            raise Unauthorized("invalid token") from exc
        # RFC 7519 NumericDate is a JSON number; PyJWT would also take "1700000000" as a string.
        for claim in NUMERIC_DATE_CLAIMS:
            value = claims.get(claim)
            if claim in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise Unauthorized("invalid token")
        subject = claims.get("sub")
        # One spelling per user: ASCII digits, no sign, no leading zero ("0003" and "٣" are not user 3).
        if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
            raise Unauthorized("invalid token subject")
        return int(subject)

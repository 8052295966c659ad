"""Lax JWT claims are refused: NumericDate claims are numbers only, `sub` has exactly one spelling."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from collections_hub.stack import EmbeddedStack
from gateway.jwt_verifier import JwtVerifier
from gateway.settings import GatewaySettings
from shared.errors import Unauthorized
from tests.support import Hub

SECRET = "security-test-secret-that-is-long-enough-for-hs256"
AUDIENCE = "collections-hub"


def token(secret: str = SECRET, **claims: Any) -> str:
    """An HS256 token for user 3 with valid times, claims overridden (None removes one)."""
    now = int(time.time())
    payload = {"sub": "3", "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret)


def verifier() -> JwtVerifier:
    """A verifier for the HS256 secret above."""
    return JwtVerifier(GatewaySettings(jwt_secret=SecretStr(SECRET), jwt_audience=AUDIENCE), None)


@pytest.mark.parametrize(
    "subject",
    [
        "0003",
        "03",
        "٣",
        "³",
        "\uff13",  # fullwidth 3
        "3 ",
        " 3",
        "+3",
        "-3",
        "3.0",
        "3e0",
        "0",
        "",
        "1" * 19,
        "3\n",
        "0x3",
        3,
        None,
    ],
)
def test_subject_has_one_spelling(subject: Any) -> None:
    """Only the canonical ASCII decimal names a user: leading zeros, other digits, signs, ints are refused."""
    with pytest.raises(Unauthorized):
        verifier().subject(token(sub=subject))


def test_canonical_subject_is_accepted() -> None:
    """`"3"` is user 3, and the largest id we issue still parses."""
    assert verifier().subject(token(sub="3")) == 3
    assert verifier().subject(token(sub="9" * 18)) == int("9" * 18)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": str(int(time.time()) + 300)},
        {"exp": True},
        {"exp": [int(time.time()) + 300]},
        {"nbf": str(int(time.time()) - 10)},
        {"nbf": False},
        {"iat": str(int(time.time()))},
        {"iat": None, "exp": None},
        {"exp": int(time.time()) - 3600},
        {"nbf": int(time.time()) + 3600},
        {"aud": "someone-else"},
        {"aud": None},
    ],
)
def test_numeric_dates_are_numbers_only(claims: dict[str, Any]) -> None:
    """`exp`/`nbf`/`iat` as strings, booleans or lists, a missing `exp`, or times out of range: refused."""
    with pytest.raises(Unauthorized):
        verifier().subject(token(**claims))


def test_signature_and_algorithm_checks_hold() -> None:
    """A token signed with another secret, or unsigned (`alg: none`), is refused."""
    with pytest.raises(Unauthorized):
        verifier().subject(token(secret="another-secret-that-is-also-long-enough-x"))
    unsigned = jwt.encode(
        {"sub": "3", "aud": AUDIENCE, "exp": int(time.time()) + 300}, None, algorithm="none"
    )
    with pytest.raises(Unauthorized):
        verifier().subject(unsigned)


async def test_gateway_refuses_lax_claims_with_401(hub: Hub, stack: EmbeddedStack) -> None:
    """Through the gateway: the audit's tokens (string exp, Unicode-digit sub) are 401, never 500."""
    user, _ = await hub.user_with_key()
    now = int(time.time())
    good = {"sub": str(user["id"]), "aud": AUDIENCE, "exp": now + 300}
    cases = [
        {**good, "exp": str(now + 300)},
        {**good, "sub": "³"},
        {**good, "sub": "٣"},
        {**good, "sub": "0" + str(user["id"])},
        {**good, "sub": "9" * 30},
    ]
    for claims in cases:
        bearer = jwt.encode(claims, stack.jwt_secret)
        response = await hub.call("GET", "/v1/me", headers={"Authorization": f"Bearer {bearer}"})
        assert response.status == 401, claims
    bearer = jwt.encode(good, stack.jwt_secret)
    response = await hub.call("GET", "/v1/me", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status == 200
    assert (await response.json())["user_id"] == user["id"]

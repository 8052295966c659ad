"""JWT verification at the gateway: allow-list, claims with leeway, HS256 secret and JWKS keys by kid."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from gateway.jwt_verifier import JwtVerifier
from gateway.settings import GatewaySettings
from shared.errors import Unauthorized

SECRET = "unit-test-secret-that-is-long-enough-for-hs256-and-hs384-too"
AUDIENCE = "collections-hub"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks() -> jwt.PyJWKSet:
    """A JWKS with one RSA and one EC public key."""
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
    return jwt.PyJWKSet.from_dict(
        {"keys": [{**rsa_jwk, "kid": "rsa-1", "alg": "RS256"}, {**ec_jwk, "kid": "ec-1", "alg": "ES256"}]}
    )


def verifier(**overrides: Any) -> JwtVerifier:
    """A verifier with an HS256 secret and the JWKS above."""
    settings = GatewaySettings(jwt_secret=SecretStr(SECRET), jwt_audience=AUDIENCE, **overrides)
    return JwtVerifier(settings, jwks())


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for user 7, overridable."""
    now = int(time.time())
    return {"sub": "7", "aud": AUDIENCE, "iat": now, "exp": now + 300, **overrides}


def test_hs256_token_gives_its_subject() -> None:
    """A valid HS256 token yields the user id in `sub`."""
    assert verifier().subject(jwt.encode(claims(), SECRET, algorithm="HS256")) == 7


def test_rs256_and_es256_tokens_are_checked_against_the_jwks_key_named_by_kid() -> None:
    """Asymmetric tokens verify with the JWKS key whose `kid` the header names."""
    rs = jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(claims(sub="8"), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    assert verifier().subject(rs) == 7
    assert verifier().subject(es) == 8


@pytest.mark.parametrize(
    ("token_factory", "reason"),
    [
        (lambda: jwt.encode(claims(), None, algorithm="none"), "alg none"),
        (
            lambda: jwt.encode(claims(), "another-secret-of-the-same-length-ok!!!!", algorithm="HS256"),
            "bad sig",
        ),
        (lambda: jwt.encode(claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256"), "expired"),
        (lambda: jwt.encode(claims(nbf=int(time.time()) + 120), SECRET, algorithm="HS256"), "not yet valid"),
        (lambda: jwt.encode(claims(aud="someone-else"), SECRET, algorithm="HS256"), "wrong aud"),
        (lambda: jwt.encode({"sub": "7", "aud": AUDIENCE}, SECRET, algorithm="HS256"), "no exp"),
        (lambda: jwt.encode(claims(sub="alice"), SECRET, algorithm="HS256"), "non-numeric sub"),
        (lambda: jwt.encode(claims(), SECRET, algorithm="HS384"), "alg not allowed"),
        (
            lambda: jwt.encode(claims(), OTHER_RSA_KEY, algorithm="RS256", headers={"kid": "rsa-1"}),
            "signed by another key",
        ),
        (lambda: jwt.encode(claims(), RSA_KEY, algorithm="RS256", headers={"kid": "nope"}), "unknown kid"),
        (
            lambda: jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "rsa-1"}),
            "kid of other alg",
        ),
        (lambda: "not.a.jwt", "garbage"),
    ],
)
def test_invalid_tokens_are_refused(token_factory: Any, reason: str) -> None:
    """alg none, bad signatures, expired, early, wrong audience and malformed tokens are all 401."""
    with pytest.raises(Unauthorized):
        verifier().subject(token_factory())


def test_small_clock_skew_is_tolerated() -> None:
    """A token that expired within the leeway still passes."""
    token = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    assert verifier(jwt_leeway_seconds=30).subject(token) == 7


def test_issuer_is_checked_only_when_configured() -> None:
    """With `HUB_JWT_ISSUER` set, a token from another issuer is refused; the right one passes."""
    strict = verifier(jwt_issuer="https://idp.example")
    assert strict.subject(jwt.encode(claims(iss="https://idp.example"), SECRET, algorithm="HS256")) == 7
    with pytest.raises(Unauthorized):
        strict.subject(jwt.encode(claims(iss="https://evil.example"), SECRET, algorithm="HS256"))
    assert verifier().subject(jwt.encode(claims(iss="anyone"), SECRET, algorithm="HS256")) == 7


def test_hmac_token_refused_when_no_secret_is_configured() -> None:
    """Without an HS256 secret, an HS256 token cannot be verified by any public key (no alg confusion)."""
    settings = GatewaySettings(jwt_audience=AUDIENCE)
    with pytest.raises(Unauthorized):
        JwtVerifier(settings, jwks()).subject(jwt.encode(claims(), SECRET, algorithm="HS256"))

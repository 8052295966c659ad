"""How the gateway reads credentials off request headers."""

from __future__ import annotations

import base64

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.credentials import extract_credentials
from shared.errors import Unauthorized


def headers(**values: str) -> CIMultiDictProxy[str]:
    """Headers as aiohttp hands them over (underscores in names become dashes)."""
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


def test_x_api_key_is_an_api_key() -> None:
    """`X-API-KEY: KEY` is read as an API key."""
    creds = extract_credentials(headers(X_API_KEY="hk_0123456789abcdef.secret"))
    assert (creds.kind, creds.token) == ("api_key", "hk_0123456789abcdef.secret")


def test_bearer_with_two_parts_is_an_api_key_and_three_parts_a_jwt() -> None:
    """A Bearer value is a JWT when it has three dot-separated parts, else an API key."""
    assert extract_credentials(headers(Authorization="Bearer hk_ab.cd")).kind == "api_key"
    assert extract_credentials(headers(Authorization="Bearer aa.bb.cc")).kind == "jwt"


def test_basic_gives_key_id_and_secret() -> None:
    """HTTP Basic `key_id:secret` is split at the first colon."""
    value = base64.b64encode(b"hk_1:sec:ret").decode()
    creds = extract_credentials(headers(Authorization=f"Basic {value}"))
    assert (creds.kind, creds.key_id, creds.token) == ("basic", "hk_1", "sec:ret")


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Digest abc", "Basic !!!", f"Basic {base64.b64encode(b'nocolon').decode()}"],
)
def test_missing_or_malformed_credentials_are_401(authorization: str) -> None:
    """Anything but a well-formed scheme and value is refused as unauthenticated."""
    with pytest.raises(Unauthorized):
        extract_credentials(headers(Authorization=authorization) if authorization else headers())


def test_cache_key_differs_by_secret() -> None:
    """Two secrets for one key id never share a cache entry."""
    a = extract_credentials(headers(Authorization="Basic " + base64.b64encode(b"id:one").decode()))
    b = extract_credentials(headers(Authorization="Basic " + base64.b64encode(b"id:two").decode()))
    assert a.cache_key != b.cache_key


def test_two_credentials_at_once_are_refused() -> None:
    """X-API-KEY next to an Authorization header is 401: a wrong one beside a valid one never passes."""
    headers = CIMultiDictProxy(CIMultiDict({"X-API-KEY": "hk_a.b", "Authorization": "Bearer not-a-key"}))
    with pytest.raises(Unauthorized, match="not both"):
        extract_credentials(headers)


@pytest.mark.parametrize("name", ["X-API-KEY", "Authorization", "x-api-key"])
def test_a_credential_header_sent_twice_is_refused(name: str) -> None:
    """Two lines of one credential header are 401: which of them would count is a guess."""
    lines = CIMultiDict([(name, "Bearer hk_a.b" if name == "Authorization" else "hk_a.b")])
    lines.add(name.upper(), "Bearer hk_c.d" if name == "Authorization" else "hk_c.d")
    with pytest.raises(Unauthorized, match="once"):
        extract_credentials(CIMultiDictProxy(lines))

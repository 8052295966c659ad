"""What the OpenAPI fuzzer found, pinned (docs/api.md lists every finding)."""

from __future__ import annotations

import pytest

from tests.support import Hub


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/v1/me", "GET"),
        ("PUT", "/api/v2/collections/x1/assets", "POST"),
        ("PATCH", "/v1/collections", "GET"),
        ("PUT", "/admin/groups", "GET"),
    ],
)
async def test_a_method_a_route_lacks_is_405_naming_the_ones_it_has(
    hub: Hub, method: str, path: str, allowed: str
) -> None:
    """405 carries `Allow` (RFC 9110), whether the gateway or a service answers it."""
    response = await hub.call(method, path)
    assert response.status == 405
    assert allowed in response.headers.get("Allow", "")
    assert (await response.json()) == {"error": "method not allowed"}


async def test_a_wrong_credential_beside_a_valid_key_is_refused(hub: Hub) -> None:
    """X-API-KEY and Authorization together are 401, even when one of them is valid."""
    headers = {**hub.admin(), "Authorization": "Bearer wrong"}
    response = await hub.call("GET", "/v1/me", headers=headers)
    assert response.status == 401
    assert "not both" in (await response.json())["error"]

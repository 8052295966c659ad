"""The gateway's path -> service table."""

from __future__ import annotations

import pytest

from gateway.routing import admin_only, service_for


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/admin/users", "access"),
        ("/admin/users/3/api-keys", "access"),
        ("/admin/api-keys/hk_1", "access"),
        ("/admin/groups/1/members", "access"),
        ("/admin/namespaces", "catalog"),
        ("/admin/namespaces/acme/projects/p1/members/4", "access"),
        ("/api/v2/collections", "catalog"),
        ("/api/v2/collections/abc", "catalog"),
        ("/api/v2/collections/abc/assets", "catalog"),
        ("/api/v2/collections/abc/public", "access"),
        ("/api/v2/collections/abc/user_groups/2", "access"),
        ("/api/v2/collections/abc/history/0", "history"),
        ("/namespaces/acme/projects/p1/collections", "catalog"),
        ("/namespaces/acme/projects/p1/collections/clips/members", "catalog"),
        ("/namespaces/acme/projects/p1/collections/clips/history", "history"),
        ("/v1/collections/c1/history", "history"),
        ("/v1/collections/c1/models", "catalog"),
        ("/v1/assets", "catalog"),
        ("/v1/nothing", None),
        ("/elsewhere", None),
    ],
)
def test_each_public_path_goes_to_its_owner(path: str, service: str | None) -> None:
    """Every documented path prefix reaches the service that owns its data; others reach none."""
    assert service_for(path) == service


def test_admin_prefix_is_admin_only() -> None:
    """Only `/admin/` paths demand the admin role at the gateway."""
    assert admin_only("/admin/users")
    assert not admin_only("/api/v2/collections")

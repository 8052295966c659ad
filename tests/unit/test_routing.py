"""The gateway's path -> service table."""

from __future__ import annotations

import random
import re

import pytest

from gateway.routing import _TABLE, admin_only, service_for


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


def test_the_one_expression_picks_the_tables_first_matching_row() -> None:
    """`service_for` matches the table as one alternation: on paths built from every prefix the table
    names and assorted segments, it answers what trying each row in order would."""
    rows = [(re.compile(pattern), service) for pattern, service in _TABLE]
    words = [
        "admin",
        "api",
        "v2",
        "v1",
        "namespaces",
        "projects",
        "collections",
        "members",
        "history",
        "users",
        "groups",
        "api-keys",
        "public",
        "private",
        "guests",
        "user_groups",
        "all_users",
        "assets",
        "models",
        "x",
        "",
        "n1",
    ]
    rng = random.Random(11)
    seen = set()
    for _ in range(20_000):
        prefix = rng.choice(
            [
                "",
                "/admin",
                "/admin/namespaces/n1/projects",
                "/api/v2/collections",
                "/namespaces",
                "/v1/collections",
            ]
        )
        path = prefix + "/" + "/".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
        expected = next((service for pattern, service in rows if pattern.match(path)), None)
        assert service_for(path) == expected, path
        seen.add(next((n for n, (pattern, _) in enumerate(rows) if pattern.match(path)), None))
    assert seen == {*range(len(rows)), None}, "every row (and no row) was the answer at least once"

"""Which service owns a public path: an ordered table of path patterns, first match wins."""

from __future__ import annotations

import re
from typing import Literal

ServiceName = Literal["catalog", "access", "history"]

_SEGMENT = r"[^/]+"
_TABLE: list[tuple[str, ServiceName]] = [
    (r"^/admin/(users|api-keys|groups)(/|$)", "access"),
    (rf"^/admin/namespaces/{_SEGMENT}/projects/{_SEGMENT}/members(/|$)", "access"),
    (r"^/admin/namespaces(/|$)", "catalog"),
    (
        rf"^/api/v2/collections/{_SEGMENT}/(public|private|users|all_users|guests|user_groups)(/|$)",
        "access",
    ),
    (rf"^/api/v2/collections/{_SEGMENT}/history(/|$)", "history"),
    (r"^/api/v2/collections(/|$)", "catalog"),
    (rf"^/namespaces/{_SEGMENT}/projects/{_SEGMENT}/collections/{_SEGMENT}/history/?$", "history"),
    (r"^/namespaces/", "catalog"),
    (rf"^/v1/collections/{_SEGMENT}/history/?$", "history"),
    (r"^/v1/(collections|assets|models)(/|$)", "catalog"),
]
_ROUTES = [(re.compile(pattern), service) for pattern, service in _TABLE]


def service_for(raw_path: str) -> ServiceName | None:
    """The service that serves this (still percent-encoded) path, or None when no service does."""
    for pattern, service in _ROUTES:
        if pattern.match(raw_path):
            return service
    return None


def admin_only(raw_path: str) -> bool:
    """Everything under `/admin/` needs the admin role, checked here before any service is asked."""
    return raw_path.startswith("/admin/")

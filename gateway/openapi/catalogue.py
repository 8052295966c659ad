"""Which route tables make up which document: one per dialect, and one for the admin API and registry.

Each public route module of a service belongs to exactly one document; `tests/e2e/test_openapi.py` checks
that every route the services mount and the gateway forwards is listed here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from access_service.api import admin, groups, project_roles
from access_service.api import v2 as access_v2
from catalog_service.api import dialect_a, dialect_b, dialect_c, registry
from history_service.api import namespaced
from history_service.api import v1 as history_v1
from history_service.api import v2 as history_v2

# The security schemes the gateway accepts on every route (gateway/credentials.py).
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "jwtBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT (HS256, or RS256/ES256 from the configured JWKS) whose `sub` is a user id.",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-KEY",
        "description": "An API key, as `POST /admin/users/{user_id}/api-keys` showed it once (`key`).",
    },
    "bearerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key as a bearer token: `Authorization: Bearer KEY`.",
    },
    "basicKey": {
        "type": "http",
        "scheme": "basic",
        "description": "An API key's `key_id` as the user name and its `secret` as the password.",
    },
}


@dataclass(frozen=True)
class DocumentSpec:
    """One document: its file name, title, tag, what it says, the schemes it names first, its routes."""

    name: str
    title: str
    tag: str
    description: str
    security: tuple[str, ...]
    tables: tuple[web.RouteTableDef, ...]


DOCUMENTS: tuple[DocumentSpec, ...] = (
    DocumentSpec(
        name="a",
        title="collections-hub dialect A: namespaced collections of node ids",
        tag="A: namespaced",
        description=(
            "Collections by unique `name` within a project (`/namespaces/:slug/projects/:projectSlug/...`), "
            "members are node ids, an optional `datasetId`, numbered pages (`pageSize` 1-200, default 50), "
            "soft delete. Errors are `{statusCode, message, error}`. Authenticate with a JWT bearer token "
            "(an API key works too)."
        ),
        security=("jwtBearer", "apiKeyHeader", "bearerKey", "basicKey"),
        tables=(dialect_a.routes, namespaced.routes),
    ),
    DocumentSpec(
        name="b",
        title="collections-hub dialect B: /api/v2 collections, sharing and history",
        tag="B: v2",
        description=(
            "Collections by opaque id with `title` (at most 255 characters), public/private, shared users, "
            "guests and user groups, assets, and history pages of 20 behind a cursor. Errors are "
            '`{"error": "..."}` with the messages of the reference; schema failures are 422. Authenticate '
            "with `X-API-KEY`."
        ),
        security=("apiKeyHeader", "bearerKey", "basicKey", "jwtBearer"),
        tables=(dialect_b.routes, access_v2.routes, history_v2.routes),
    ),
    DocumentSpec(
        name="c",
        title="collections-hub dialect C: /v1 SDK-style collections of assets and models",
        tag="C: v1",
        description=(
            "Collections with asset and model counts and a thumbnail, cursor pages (`pageSize` 1-100, "
            "default 10; `paginationToken` -> `nextPaginationToken`), assets and models added or removed "
            '1 to 49 ids a call. Errors are `{"error": "..."}`. Authenticate with '
            "`Authorization: Bearer KEY` or Basic `key_id:secret`."
        ),
        security=("bearerKey", "basicKey", "apiKeyHeader", "jwtBearer"),
        tables=(dialect_c.routes, history_v1.routes),
    ),
    DocumentSpec(
        name="admin",
        title="collections-hub admin API and item registry",
        tag="admin and registry",
        description=(
            "Users, API keys, user groups, namespaces, projects and project roles (admin role required), "
            "the asset and model registry (`/v1/assets`, `/v1/models`) and `/v1/me`. "
            'Errors are `{"error": "..."}`.'
        ),
        security=("apiKeyHeader", "bearerKey", "basicKey", "jwtBearer"),
        tables=(registry.routes, admin.routes, groups.routes, project_roles.routes),
    ),
)

"""Error bodies per dialect."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pymongo.errors import AutoReconnect, ExecutionTimeout, ServerSelectionTimeoutError, WriteConcernError

from shared.errors import (
    Dialect,
    NotFound,
    ValidationFailed,
    dialect_for_path,
    error_body,
    error_middleware,
    error_status,
)


def test_dialect_by_prefix() -> None:
    """Paths map to the dialect whose document defines them."""
    assert dialect_for_path("/api/v2/collections") is Dialect.B
    assert dialect_for_path("/namespaces/a/projects/b/collections") is Dialect.A
    assert dialect_for_path("/v1/collections") is Dialect.C
    assert dialect_for_path("/admin/users") is Dialect.PLAIN


def test_dialect_b_answers_validation_failures_with_422() -> None:
    """Dialect B's document answers missing parameters with 422; the others with 400."""
    error = ValidationFailed("title: Field required")
    assert error_status(error, Dialect.B) == 422
    assert error_status(error, Dialect.A) == 400
    assert error_status(NotFound("x"), Dialect.B) == 404


def test_bodies_have_each_dialects_shape() -> None:
    """B and the rest answer `{"error": msg}`; A answers the NestJS-style triple."""
    assert error_body(404, "collection not found", Dialect.B) == {"error": "collection not found"}
    assert error_body(404, "Collection not found", Dialect.A) == {
        "statusCode": 404,
        "message": "Collection not found",
        "error": "Not Found",
    }


@pytest.mark.parametrize(
    "failure",
    [
        ServerSelectionTimeoutError("no server"),
        AutoReconnect("connection reset"),
        ExecutionTimeout("operation exceeded time limit"),
        WriteConcernError("waiting for replication timed out"),
    ],
)
async def test_a_database_that_is_away_answers_503_in_the_dialect_and_never_500(failure: Exception) -> None:
    """A request whose database is unreachable, or whose write could not be made durable, is told to try
    again (503, `Retry-After`), in its dialect's error shape: nothing was acknowledged."""

    async def handler(_request: web.Request) -> web.Response:
        raise failure

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/api/v2/collections", handler)
    app.router.add_get("/namespaces/n/projects/p/collections", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/api/v2/collections")
        assert (response.status, response.headers["Retry-After"]) == (503, "1")
        assert await response.json() == {"error": "service unavailable, try again"}
        response = await client.get("/namespaces/n/projects/p/collections")
        assert response.status == 503
        assert (await response.json())["statusCode"] == 503

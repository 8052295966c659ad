"""Error bodies per dialect."""

from __future__ import annotations

from shared.errors import Dialect, NotFound, ValidationFailed, dialect_for_path, error_body, error_status


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

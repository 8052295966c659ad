"""A bulk write that failed only on duplicates is a known outcome; anything else, including a write that
could not be made durable, must not be taken as done (shared/mongo.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import BulkWriteError, WriteConcernError

from shared.mongo import DUPLICATE_KEY, duplicates_of


def failure(
    write_errors: list[dict[str, Any]], concern: list[dict[str, Any]] | None = None
) -> BulkWriteError:
    details: dict[str, Any] = {
        "writeErrors": write_errors,
        "writeConcernErrors": concern or [],
        "nInserted": 1,
    }
    return BulkWriteError(details)


def test_duplicates_alone_are_returned_with_their_statements() -> None:
    errors = [{"index": 0, "code": DUPLICATE_KEY}, {"index": 3, "code": DUPLICATE_KEY}]
    assert [error["index"] for error in duplicates_of(failure(errors))] == [0, 3]


def test_any_other_write_error_is_raised_again() -> None:
    exc = failure([{"index": 0, "code": DUPLICATE_KEY}, {"index": 1, "code": 121}])
    with pytest.raises(BulkWriteError):
        duplicates_of(exc)


@pytest.mark.parametrize("write_errors", [[], [{"index": 0, "code": DUPLICATE_KEY}]])
def test_a_write_concern_error_is_never_taken_for_success(write_errors: list[dict[str, Any]]) -> None:
    """With or without duplicates beside it: the inserts may be rolled back, so the caller must retry."""
    exc = failure(write_errors, [{"code": 64, "errmsg": "waiting for replication timed out"}])
    with pytest.raises(WriteConcernError, match="replication"):
        duplicates_of(exc)

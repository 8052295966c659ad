"""Typed errors of the client: one class per answer a caller handles differently, with status and body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


class HubError(Exception):
    """Any failure of a hub call; `status` is None when no answer arrived."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


class HubConnectionError(HubError):
    """No answer: the connection was refused, reset or timed out (after the retries the call allowed)."""


class InvalidInput(HubError, ValueError):
    """Refused before sending: the hub's own request models rejected an argument (`errors()` says which)."""

    def __init__(self, message: str, *, details: Sequence[ErrorDetails]) -> None:
        super().__init__(message)
        self.details = list(details)

    def errors(self) -> list[ErrorDetails]:
        """Each refused field: `loc`, `msg` and `type`, as pydantic reports them."""
        return list(self.details)


class ApiError(HubError):
    """The server answered with an error status."""


class UnexpectedAnswer(ApiError):
    """A success status whose body the client cannot read (not a hub, or a version it does not know)."""


class BadRequest(ApiError):
    """400: the server refused the input (the body says why)."""


class AuthenticationError(ApiError):
    """401: the key or token was not accepted."""


class PermissionDenied(ApiError):
    """403: authenticated, but not allowed."""


class NotFound(ApiError):
    """404: no such thing, or not visible to this caller."""


class Conflict(ApiError):
    """409: a name or id is taken."""


class UnprocessableEntity(ApiError):
    """422: a required parameter is missing or has the wrong type (dialect B)."""


class RateLimited(ApiError):
    """429 after every retry; `retry_after` is the server's last hint in seconds."""

    def __init__(
        self, message: str, *, status: int | None = None, body: Any = None, retry_after: float
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx after every retry the call allowed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: UnprocessableEntity,
}


def message_of(body: Any) -> str | None:
    """The human message in any dialect's error body (`{"error": ...}`, or A's `{"message": ...}`)."""
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return None


def invalid_input(exc: ValidationError) -> InvalidInput:
    """The client's error for arguments a request model refused: `invalid input: name: String should...`."""
    details = exc.errors(include_url=False)
    fields = [
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in details
    ]
    return InvalidInput(f"invalid input: {'; '.join(fields)}", details=details)


def error_for(status: int, body: Any, *, retry_after: float = 0.0, subject: str | None = None) -> ApiError:
    """The typed exception for an error answer; a 404 names `subject` (`collection abc123`) when given."""
    if status == 404 and subject:
        message = f"{status}: {subject} not found"
    else:
        message = f"{status}: {message_of(body) or 'request failed'}"
    if status == 429:
        return RateLimited(message, status=status, body=body, retry_after=retry_after)
    if status >= 500:
        return ServerError(message, status=status, body=body)
    return _BY_STATUS.get(status, ApiError)(message, status=status, body=body)

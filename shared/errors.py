"""Typed domain errors and the one middleware that maps them to each dialect's HTTP error body."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from enum import Enum
from http import HTTPStatus

from aiohttp import web
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WriteConcernError

log = logging.getLogger(__name__)


class Dialect(Enum):
    """The public API dialects; each renders errors its own way (see docs/dialects.md)."""

    A = "namespaced"
    B = "v2"
    C = "v1"
    PLAIN = "plain"


class DomainError(Exception):
    """A failure the caller caused or should know about; `status` is the HTTP status it maps to."""

    status = 500

    def __init__(
        self,
        message: str,
        *,
        wording: dict[Dialect, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.wording = wording or {}
        self.headers = headers or {}

    def message_for(self, dialect: Dialect) -> str:
        """The message in the dialect's own words (dialect A capitalises "Collection not found")."""
        return self.wording.get(dialect, self.message)


class Invalid(DomainError):
    """The request is malformed or breaks a rule of the domain (400)."""

    status = 400


class ValidationFailed(DomainError):
    """A request body or query failed schema validation: 422 in dialect B, 400 elsewhere."""

    status = 400


class Unauthorized(DomainError):
    """No valid credentials (401)."""

    status = 401


class Forbidden(DomainError):
    """Authenticated, but not allowed (403)."""

    status = 403


class NotFound(DomainError):
    """The thing does not exist, or the caller may not know it does (404)."""

    status = 404


class Conflict(DomainError):
    """The change clashes with existing state, such as a taken unique name (409)."""

    status = 409


class RequestTimeout(DomainError):
    """The request's body did not arrive in time (408); the connection closes after this answer."""

    status = 408

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Connection": "close"})


class UriTooLong(DomainError):
    """The request path is longer than any route needs (414)."""

    status = 414


class TooManyRequests(DomainError):
    """A rate limit was reached (429); `Retry-After` says when to try again."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


class Unavailable(DomainError):
    """A dependency did not answer in time (503)."""

    status = 503


def dialect_for_path(path: str) -> Dialect:
    """Which dialect a public path belongs to, by its prefix."""
    if path.startswith("/api/v2/"):
        return Dialect.B
    if path.startswith("/namespaces/"):
        return Dialect.A
    if path.startswith("/v1/"):
        return Dialect.C
    return Dialect.PLAIN


def error_status(error: DomainError, dialect: Dialect) -> int:
    """The HTTP status for an error in a dialect: dialect B answers schema failures with 422."""
    if isinstance(error, ValidationFailed) and dialect is Dialect.B:
        return 422
    return error.status


def error_body(status: int, message: str, dialect: Dialect) -> dict[str, object]:
    """The JSON error body in the dialect's shape."""
    if dialect is Dialect.A:
        return {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase}
    return {"error": message}


def error_response(status: int, message: str, dialect: Dialect) -> web.Response:
    """A JSON error response in the dialect's shape."""
    return web.json_response(error_body(status, message, dialect), status=status)


_HTTP_MESSAGES = {
    404: "not found",
    405: "method not allowed",
    413: "request body too large",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error in the request's dialect; never leak a stack trace."""
    dialect = dialect_for_path(request.path)
    try:
        return await handler(request)
    except DomainError as error:
        response = error_response(error_status(error, dialect), error.message_for(dialect), dialect)
        response.headers.update(error.headers)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type == "application/json" and exc.text:
            try:
                json.loads(exc.text)
            except ValueError:
                pass
            else:
                raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason.lower())
        response = error_response(exc.status, message, dialect)
        # A 405 must say which methods the resource does allow (RFC 9110 15.5.6).
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except ConnectionResetError:
        raise  # the client went away mid-request: nothing to answer, nothing to log as a failure
    except (ConnectionFailure, ExecutionTimeout, WriteConcernError) as exc:
        # The database is away or could not make the write durable: nothing was acknowledged; try again.
        log.warning("database unavailable", extra={"path": request.path, "error": str(exc)})
        response = error_response(503, "service unavailable, try again", dialect)
        response.headers["Retry-After"] = "1"
        return response
    except Exception:
        log.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return error_response(500, "internal server error", dialect)

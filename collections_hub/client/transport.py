"""HTTP for the client (httpx, sync and async): authentication, throttling, timeouts and retries.

Retry rules: a 429 is retried whatever the method, because the gateway refuses it before forwarding, so
nothing was applied; it waits at least the `Retry-After` the answer gives. A refused or timed-out connect
is retried whatever the method, for the same reason. A 502/503/504, a timeout while reading, or a broken
connection after the request went out may follow a change the server applied: those are retried only for
calls that are safe to repeat (GET, PUT, DELETE and the idempotent POSTs an `Op` marks as such). Waits
grow exponentially with full jitter, so many clients refused at once do not come back at once.
"""

from __future__ import annotations

import asyncio
import base64
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx
from pydantic import ValidationError

from collections_hub.client.errors import HubConnectionError, UnexpectedAnswer, error_for

T = TypeVar("T")
AuthScheme = Literal["x-api-key", "bearer", "basic"]
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Failures that happen before a request leaves: repeating them cannot apply anything twice.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
USER_AGENT = "collections-hub-client/0.1"


@dataclass(frozen=True)
class Op(Generic[T]):
    """One API call: what to send, how to read the answer, and whether it is safe to send twice."""

    method: str
    path: str
    parse: Callable[[Any], T]
    body: Any = None
    params: Mapping[str, str | int] | None = None
    idempotent: bool | None = None  # None: by method (POST is not)
    subject: str | None = None  # what a 404 means is missing, when the call names one thing: "collection 7"

    @property
    def repeatable(self) -> bool:
        """Whether repeating the call after an unknown outcome is harmless."""
        return self.idempotent if self.idempotent is not None else self.method != "POST"


@dataclass(frozen=True)
class Credentials:
    """An API key and how to present it: `X-API-KEY` (dialect B), Bearer, or Basic `key_id:secret` (C)."""

    key: str
    scheme: AuthScheme = "x-api-key"

    @classmethod
    def for_dialect(cls, key: str, dialect: str) -> Credentials:
        """B: `X-API-KEY`; C: Basic for `key_id:secret`, else Bearer."""
        if dialect == "b":
            return cls(key, "x-api-key")
        return cls(key, "basic" if ":" in key else "bearer")

    def headers(self) -> dict[str, str]:
        """The authentication header."""
        if self.scheme == "x-api-key":
            return {"X-API-KEY": self.key}
        if self.scheme == "bearer":
            return {"Authorization": f"Bearer {self.key}"}
        return {"Authorization": f"Basic {base64.b64encode(self.key.encode()).decode()}"}


@dataclass
class RetryPolicy:
    """How often and how long to retry: `max_retries` more attempts, waits within [0, base * 2**n] <= cap."""

    max_retries: int = 5
    backoff_base: float = 0.2
    backoff_cap: float = 10.0
    max_retry_after: float = 60.0
    jitter: Callable[[float, float], float] = field(default=random.uniform)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        backoff = self.jitter(0.0, min(self.backoff_cap, self.backoff_base * 2**attempt))
        if retry_after is not None:
            # The server's hint is a floor; a little jitter on top spreads the clients it refused together.
            return min(self.max_retry_after, retry_after) + backoff / 4
        return backoff


def retry_after_of(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (delta form; the HTTP-date form is not used by the hub)."""
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def decode(response: httpx.Response) -> Any:
    """The JSON body, or the text when it is not JSON (a proxy's error page, say)."""
    try:
        return response.json()
    except ValueError:
        return response.text


class Pacer:
    """At most `rate` request starts a second (None: unlimited), shared by threads or tasks."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Book the next slot: seconds to wait before starting."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
            return start - now


@dataclass
class Settings:
    """What both transports share."""

    base_url: str
    credentials: Credentials | None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate: float | None = None

    def headers(self) -> dict[str, str]:
        """Headers on every request."""
        auth = self.credentials.headers() if self.credentials else {}
        return {"User-Agent": USER_AGENT, "Accept": "application/json", **auth}


def _outcome(op: Op[Any], response: httpx.Response, attempt: int, retry: RetryPolicy) -> float | None:
    """None when the answer is final; else the seconds to wait before retrying."""
    if response.status_code not in RETRY_STATUSES or attempt >= retry.max_retries:
        return None
    if response.status_code != 429 and not op.repeatable:
        return None
    return retry.delay(attempt, retry_after_of(response))


def _result(op: Op[T], response: httpx.Response) -> T:
    body = decode(response)
    if response.status_code >= 400:
        retry_after = retry_after_of(response) or 0.0
        raise error_for(response.status_code, body, retry_after=retry_after, subject=op.subject)
    try:
        return op.parse(body)
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        message = f"{response.status_code}: an answer the client cannot read ({op.method} {op.path})"
        raise UnexpectedAnswer(message, status=response.status_code, body=body) from exc


def _failure_wait(op: Op[Any], exc: httpx.TransportError, attempt: int, retry: RetryPolicy) -> float:
    """The wait before retrying after a transport error; raises when the call may not be retried."""
    if attempt >= retry.max_retries or not (isinstance(exc, NOT_SENT) or op.repeatable):
        raise HubConnectionError(f"cannot reach the hub: {type(exc).__name__}: {exc}") from exc
    return retry.delay(attempt, None)


class SyncTransport:
    """Blocking calls over one httpx.Client (connection pooling, keep-alive)."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        self.pacer = Pacer(settings.rate)
        self.http = client or httpx.Client(
            base_url=settings.base_url, timeout=settings.timeout, headers=settings.headers()
        )

    def run(self, op: Op[T]) -> T:
        """Send the call, retrying as the rules allow; the parsed answer or a typed error."""
        attempt = 0
        while True:
            time.sleep(self.pacer.reserve())
            try:
                response = self.http.request(op.method, op.path, json=op.body, params=op.params)
            except httpx.TransportError as exc:
                time.sleep(_failure_wait(op, exc, attempt, self.settings.retry))
                attempt += 1
                continue
            wait = _outcome(op, response, attempt, self.settings.retry)
            if wait is None:
                return _result(op, response)
            time.sleep(wait)
            attempt += 1

    def stream_to(self, op: Op[Any], sink: Any) -> None:
        """GET the call's answer into a binary file without holding it in memory (retried like a GET)."""
        attempt = 0
        while True:
            time.sleep(self.pacer.reserve())
            try:
                with self.http.stream(op.method, op.path, params=op.params) as response:
                    if response.status_code >= 400:
                        response.read()
                        wait = _outcome(op, response, attempt, self.settings.retry)
                        if wait is None:
                            _result(op, response)
                        time.sleep(wait or 0.0)
                        attempt += 1
                        continue
                    sink.seek(0)
                    sink.truncate()
                    for chunk in response.iter_bytes(1 << 16):
                        sink.write(chunk)
                    sink.seek(0)
                    return
            except httpx.TransportError as exc:
                time.sleep(_failure_wait(op, exc, attempt, self.settings.retry))
                attempt += 1

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()


class AsyncTransport:
    """Calls over one httpx.AsyncClient."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.pacer = Pacer(settings.rate)
        self.http = client or httpx.AsyncClient(
            base_url=settings.base_url, timeout=settings.timeout, headers=settings.headers()
        )

    async def run(self, op: Op[T]) -> T:
        """Send the call, retrying as the rules allow; the parsed answer or a typed error."""
        attempt = 0
        while True:
            await asyncio.sleep(self.pacer.reserve())
            try:
                response = await self.http.request(op.method, op.path, json=op.body, params=op.params)
            except httpx.TransportError as exc:
                await asyncio.sleep(_failure_wait(op, exc, attempt, self.settings.retry))
                attempt += 1
                continue
            wait = _outcome(op, response, attempt, self.settings.retry)
            if wait is None:
                return _result(op, response)
            await asyncio.sleep(wait)
            attempt += 1

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

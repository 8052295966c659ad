"""The client's retry rules and typed errors, over httpx's MockTransport: the one way to script a lost
answer, a 503 or a refused connection at an exact moment (the end-to-end tests use the real stack)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from collections_hub.client import Hub, HubConnectionError, NotFound, RateLimited, RetryPolicy, ServerError

Script = Callable[[httpx.Request], httpx.Response]


def scripted(answers: list[httpx.Response | Exception]) -> tuple[Hub, list[httpx.Request]]:
    """A client whose requests get `answers` in turn; the requests it sent are recorded."""
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.Client(base_url="http://hub.test", transport=httpx.MockTransport(handler))
    retry = RetryPolicy(max_retries=3, backoff_base=0.01, jitter=lambda low, high: high)
    return Hub("http://hub.test", api_key="k", retry=retry, http=http), sent


COLLECTION = {
    "collection": {
        "id": "c1",
        "name": "n",
        "ownerId": "1",
        "assetCount": 0,
        "modelCount": 0,
        "itemCount": 0,
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-01-01T00:00:00.000Z",
    }
}


def test_429_is_retried_after_retry_after_even_for_a_create() -> None:
    """A 429 was refused before anything happened: the create is sent again, no sooner than Retry-After."""
    hub, sent = scripted(
        [
            httpx.Response(429, headers={"Retry-After": "1"}, json={"error": "too many requests"}),
            httpx.Response(200, json=COLLECTION),
        ]
    )
    started = time.monotonic()
    assert hub.collections.create("n").id == "c1"
    assert time.monotonic() - started >= 1.0
    assert len(sent) == 2


def test_503_on_a_create_is_not_retried() -> None:
    """A create that got a 503 may have been applied: it is reported, not sent twice."""
    hub, sent = scripted(
        [httpx.Response(503, json={"error": "unavailable"}), httpx.Response(200, json=COLLECTION)]
    )
    with pytest.raises(ServerError) as raised:
        hub.collections.create("n")
    assert raised.value.status == 503
    assert raised.value.body == {"error": "unavailable"}
    assert len(sent) == 1


def test_502_503_504_on_a_read_are_retried() -> None:
    """Reads are safe to repeat: gateway errors are retried until an answer comes."""
    hub, sent = scripted(
        [httpx.Response(502), httpx.Response(503), httpx.Response(504), httpx.Response(200, json=COLLECTION)]
    )
    assert hub.collections.retrieve("c1").name == "n"
    assert len(sent) == 4


def test_lost_answer_to_a_create_is_not_retried() -> None:
    """A read timeout after the create went out: one attempt, then a connection error."""
    hub, sent = scripted([httpx.ReadTimeout("slow"), httpx.Response(200, json=COLLECTION)])
    with pytest.raises(HubConnectionError):
        hub.collections.create("n")
    assert len(sent) == 1


def test_refused_connection_is_retried_for_a_create() -> None:
    """A refused connect sent nothing, so even a create is tried again."""
    hub, sent = scripted([httpx.ConnectError("refused"), httpx.Response(200, json=COLLECTION)])
    assert hub.collections.create("n").id == "c1"
    assert len(sent) == 2


def test_retries_give_up_with_the_last_status() -> None:
    """After max_retries a 429 surfaces as RateLimited carrying the server's hint."""
    answers: list[httpx.Response | Exception] = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "too many requests"})
        for _ in range(4)
    ]
    hub, sent = scripted(answers)
    with pytest.raises(RateLimited) as raised:
        hub.collections.retrieve("c1")
    assert raised.value.retry_after == 0
    assert len(sent) == 4


def test_errors_are_typed_with_status_and_body() -> None:
    """A 404 is NotFound with the dialect's body; nothing is retried."""
    hub, sent = scripted([httpx.Response(404, json={"error": "collection not found"})])
    with pytest.raises(NotFound) as raised:
        hub.collections.retrieve("nope")
    assert (raised.value.status, raised.value.body) == (404, {"error": "collection not found"})
    assert str(raised.value) == "404: collection nope not found"  # names the id it asked for
    assert len(sent) == 1

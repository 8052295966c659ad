"""Protocol safety at the gateway (issue 22): a chunked request's trailers never reach another request,
no credential bytes give a 5xx, guesses in flight at once cannot pass the failure limit, and an `Expect`
other than `100-continue` is a quiet 417 in the dialect's JSON."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from aiohttp import ClientSession, web
from pydantic import SecretStr

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack
from gateway.app import create_app
from gateway.front import install_front
from gateway.settings import GatewaySettings
from tests.security.conftest import GatewayFactory, RawResponse
from tests.support import Hub, hs256_token

SMUGGLED_ID = "smuggled-request-id"


def read_responses(data: bytes) -> list[RawResponse]:
    """Every complete HTTP/1.1 answer in a byte stream, in order (interim 1xx answers included)."""
    responses = []
    while b"\r\n\r\n" in data:
        head, _, data = data.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        status = int(status_line.split()[1])
        body = b""
        if headers.get("transfer-encoding") == "chunked":
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body, data = body + data[:size], data[size + 2 :]
                if size == 0:
                    break
        elif status >= 200:
            length = int(headers.get("content-length", "0"))
            body, data = data[:length], data[length:]
        responses.append(RawResponse(status, headers, body))
    return responses


async def exchange(base_url: str, data: bytes) -> list[RawResponse]:
    """Send bytes on one connection and read every answer until the gateway closes it."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(data)
    await writer.drain()
    received = await asyncio.wait_for(reader.read(), timeout=15)
    writer.close()
    return read_responses(received)


def head(method: str, target: str, *lines: bytes) -> bytes:
    """A request head with a Host line and the given header lines."""
    return b"\r\n".join([f"{method} {target} HTTP/1.1".encode(), b"Host: gateway", *lines]) + b"\r\n\r\n"


# Chunked bodies ending in trailers: `{admin}` stands for the admin's API key.
TRAILERS = {
    "credential": b"5\r\nhello\r\n0\r\nX-API-KEY: {admin}\r\n\r\n",
    "request id": b"5\r\nhello\r\n0\r\nX-Request-ID: " + SMUGGLED_ID.encode() + b"\r\n\r\n",
    "several lines": b"5\r\nhello\r\n0\r\nX-One: 1\r\nX-Two: 2\r\nX-API-KEY: {admin}\r\n\r\n",
    "empty value": b"5\r\nhello\r\n0\r\nX-API-KEY:\r\n\r\n",
    "chunk extensions": b"5;name=value\r\nhello\r\n0;last=1\r\nX-API-KEY: {admin}\r\n\r\n",
}
# Where the chunked request goes: the front's direct way (proxied paths) and the application's (own routes).
FIRST_TARGETS = ["/v1/collections", "/api/v2/collections", "/v1/me", "/healthz"]


def smuggling(admin_key: str, first_target: str, body: bytes, second: bytes, *own: bytes) -> bytes:
    """A chunked POST to `first_target` (with header lines `own`) with the given body and trailers, then
    `second` pipelined."""
    chunked = head(
        "POST", first_target, b"Transfer-Encoding: chunked", b"Content-Type: application/json", *own
    )
    return chunked + body.replace(b"{admin}", admin_key.encode()) + second


@pytest.mark.parametrize("front", [True, False], ids=["front", "application"])
@pytest.mark.parametrize("trailer", list(TRAILERS))
async def test_trailers_never_reach_the_next_request(
    hub: Hub, gateway_with: GatewayFactory, trailer: str, front: bool
) -> None:
    """A chunked request with trailers (with no credential, or a user's), pipelined with `GET /v1/me` (with
    no credential, or the admin's with no request id): the chunked request is the connection's last, so the
    next one is never answered, and neither the admin's identity nor the smuggled request id comes back."""
    _, user_key = await hub.user_with_key()
    async with gateway_with(front=front) as url:
        for target in FIRST_TARGETS:
            for own in ((), (f"X-API-KEY: {user_key}".encode(),)):
                for second in (
                    head("GET", "/v1/me", b"Connection: close"),
                    head("GET", "/v1/me", f"X-API-KEY: {hub.admin_key}".encode(), b"Connection: close"),
                ):
                    data = smuggling(hub.admin_key, target, TRAILERS[trailer], second, *own)
                    answers = await exchange(url, data)
                    case = (target, own, [a.status for a in answers], [a.body[:100] for a in answers])
                    assert len(answers) == 1, case
                    assert b"admin" not in answers[0].body, case
                    assert answers[0].headers["x-request-id"] != SMUGGLED_ID, case


async def test_nothing_is_read_after_a_chunked_request(hub: Hub, gateway_with: GatewayFactory) -> None:
    """A request sent after a chunked request's answer, on the same connection, is not answered."""
    async with gateway_with() as url:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(smuggling(hub.admin_key, "/v1/collections", TRAILERS["credential"], b""))
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=15)
        assert first.startswith(b"HTTP/1.1 401 ")
        writer.write(head("GET", "/v1/me"))
        rest = await asyncio.wait_for(reader.read(), timeout=15)  # EOF: the gateway closed the connection
        writer.close()
        assert b"HTTP/1.1" not in rest


async def test_chunked_requests_still_work(hub: Hub, gateway_with: GatewayFactory) -> None:
    """A chunked request with credentials is answered as any other (a collection is created), then closed."""
    async with gateway_with() as url:
        body = json.dumps({"name": "chunked"}).encode()
        data = head(
            "POST",
            "/v1/collections",
            f"X-API-KEY: {hub.admin_key}".encode(),
            b"Transfer-Encoding: chunked",
            b"Content-Type: application/json",
        ) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        (answer,) = await exchange(url, data)
        assert answer.status == 200, answer.body
        assert json.loads(answer.body)["collection"]["name"] == "chunked"


# --- credentials: every byte sequence is a 401 -----------------------------------------------------------


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _hostile_parts(rng: random.Random) -> Iterator[bytes]:
    """Token material no issuer would send: non-UTF-8, non-ASCII, delimiters, over-long, random bytes."""
    yield from [
        b"\xff",
        b"\xc3\x28",
        b"\x80abc",
        b"\xed\xa0\x80",  # an encoded surrogate
        "é".encode(),
        "€uro".encode(),
        "\U0001f4a9".encode(),
        "\uff48\uff4b".encode(),  # fullwidth "hk"
        b"",
        b"=",
        b"..",
        b"a b",
        b"\"'<>{}",
        b"%00",
        b"\\x00",
        b"A" * 5000,
        _b64url(b"\xff\xfe"),
        _b64url(b"[]"),
        _b64url(b'"just a string"'),
        _b64url(b"[" * 2000 + b"]" * 2000),
        _b64url(b'{"alg": "none"}'),
        _b64url(b'{"alg": ["HS256"]}'),
        _b64url(b'{"alg": "HS256", "kid": {"x": 1}}'),
        _b64url(b'{"alg": "RS256", "kid": []}'),
        _b64url(b'{"alg": "HS256", "b64": false}'),
        _b64url(b'{"alg": "HS256", "crit": ["b64"], "b64": false}'),
        _b64url('{"alg": "HS256", "typ": "\udcff"}'.encode(errors="surrogatepass")),
    ]
    # Any byte a field value may hold (RFC 9110 5.5: visible ASCII, space, obs-text; DEL is refused by the
    # HTTP parser before any credential is read, `test_control_bytes_are_refused_quietly`).
    allowed = [b for b in range(0x20, 0x100) if b != 0x7F]
    for _ in range(25):
        yield bytes(rng.choice(allowed) for _ in range(rng.randrange(1, 60)))


def hostile_credentials(jwt_secret: str) -> list[bytes]:
    """Header lines carrying hostile credentials: X-API-KEY, Bearer (API key or JWT, each part) and Basic."""
    rng = random.Random(22)
    good_header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    good_payload = _b64url(b'{"sub":"1","aud":"collections-hub","exp":9999999999}')
    lines = []
    for part in _hostile_parts(rng):
        lines += [
            b"X-API-KEY: " + part,
            b"X-API-KEY: hk_0123456789abcdef." + part,
            b"Authorization: Bearer " + part,
            b"Authorization: Bearer hk_0123456789abcdef." + part,
            b"Authorization: Bearer " + part + b".b.c",  # the header of a JWT
            b"Authorization: Bearer " + good_header + b"." + part + b".c2ln",  # its payload
            b"Authorization: Bearer " + good_header + b"." + good_payload + b"." + part,  # its signature
            b"Authorization: Bearer a.b." + part,
            b"Authorization: Basic " + part,
            b"Authorization: Basic " + base64.b64encode(part),
            b"Authorization: Basic " + base64.b64encode(b"hk_0123456789abcdef:" + part),
            b"Authorization: Basic " + base64.b64encode(part + b":secret"),
            b"Authorization: " + part,
        ]
    # Signed with the gateway's own secret, so every claim is checked: claims of the wrong type or range.
    for claims in [
        {"sub": "1", "aud": "collections-hub", "exp": float("inf")},
        {"sub": "1", "aud": "collections-hub", "exp": float("nan")},
        {"sub": "1", "aud": "collections-hub", "exp": -(10**400)},
        {"sub": "1", "aud": "collections-hub", "exp": "soon"},
        {"sub": "1", "aud": "collections-hub", "exp": 9999999999, "nbf": [1]},
        {"sub": "1", "aud": "collections-hub", "exp": 9999999999, "iat": {"a": 1}},
        {"sub": "1", "aud": ["\udcff"], "exp": 9999999999},
        {"sub": ["1"], "aud": "collections-hub", "exp": 9999999999},
        {"sub": "1" * 400, "aud": "collections-hub", "exp": 9999999999},
        {"sub": "\u0661", "aud": "collections-hub", "exp": 9999999999},
        {"sub": "1", "aud": {"x": 1}, "exp": 9999999999},
    ]:
        lines.append(b"Authorization: Bearer " + _signed(jwt_secret, claims).encode())
    lines.append(
        b"Authorization: Bearer " + hs256_token("not-the-gateway-secret-but-long-enough!", 1).encode()
    )
    return lines


def _signed(secret: str, claims: dict[str, object]) -> str:
    """An HS256 token over claims as given (PyJWT writes NaN and Infinity as JSON's extensions)."""
    payload = json.dumps(claims).encode("ascii")
    return jwt.api_jws.encode(payload, secret, algorithm="HS256")


async def _statuses(url: str, lines: list[bytes], *, concurrency: int) -> list[int]:
    """Each header line in a `GET /v1/me` of its own (raw bytes), `concurrency` at a time; the statuses."""
    gate = asyncio.Semaphore(concurrency)

    async def one(line: bytes) -> int:
        async with gate:
            (answer,) = await exchange(url, head("GET", "/v1/me", line, b"Connection: close"))
            return answer.status

    return list(await asyncio.gather(*(one(line) for line in lines)))


async def test_no_credential_bytes_give_a_5xx(
    stack: EmbeddedStack, gateway_with: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Hundreds of hostile credentials (non-UTF-8, non-ASCII, over-long, each part of a JWT, X-API-KEY,
    Bearer, Basic), sent as raw bytes: every one is a 401, and nothing is logged as unhandled."""
    lines = hostile_credentials(stack.jwt_secret)
    assert len(lines) > 500
    with caplog.at_level(logging.ERROR):
        async with gateway_with(
            rate_limit_auth_failures_burst=100_000, rate_limit_address_per_second=0
        ) as url:
            statuses = await _statuses(url, lines, concurrency=8)
    bad = [(status, line[:80]) for status, line in zip(statuses, lines, strict=True) if status != 401]
    assert bad == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("control", [b"\x7f", b"\x00", b"\x01", b"\x1b", b"\x0b"])
async def test_control_bytes_are_refused_quietly(gateway_with: GatewayFactory, control: bytes) -> None:
    """A credential with a control byte in it is a 400 (the HTTP parser refuses the line) or a 401, never
    a 5xx."""
    lines = [
        b"X-API-KEY: hk_0123456789abcdef." + control + b"x",
        b"Authorization: Bearer a.b." + control,
        b"Authorization: Basic " + control,
    ]
    async with gateway_with(rate_limit_address_per_second=0) as url:
        assert set(await _statuses(url, lines, concurrency=1)) <= {400, 401}


async def test_hostile_credentials_are_charged_as_failures(
    stack: EmbeddedStack, gateway_with: GatewayFactory
) -> None:
    """Hostile credentials empty the failure bucket like any wrong key: `burst` 401s, then 429s."""
    lines = hostile_credentials(stack.jwt_secret)[::7][:60]
    async with gateway_with(
        rate_limit_auth_failures_per_second=0.001,
        rate_limit_auth_failures_burst=10,
        rate_limit_address_per_second=0,
    ) as url:
        statuses = await _statuses(url, lines, concurrency=1)
    assert statuses == [401] * 10 + [429] * (len(lines) - 10)


# --- guesses in flight at once ---------------------------------------------------------------------------


@asynccontextmanager
async def held_relay(target: str, hold_until: int, at_most: float) -> AsyncIterator[tuple[str, list[int]]]:
    """A relay in front of the real access_service that holds each request until `hold_until` have arrived
    (or `at_most` seconds passed), so every authentication the gateway starts is in flight at once: its
    URL, and how many requests reached it."""
    arrived: list[int] = []
    everyone = asyncio.Event()

    async def relay(request: web.Request) -> web.Response:
        arrived.append(1)
        if len(arrived) >= hold_until:
            everyone.set()
        with suppress(TimeoutError):
            await asyncio.wait_for(everyone.wait(), at_most)
        forwarded = {k: v for k, v in request.headers.items() if k.lower() not in {"host", "content-length"}}
        async with (
            ClientSession() as http,
            http.request(
                request.method, f"{target}{request.rel_url}", headers=forwarded, data=await request.read()
            ) as answer,
        ):
            return web.Response(
                status=answer.status, body=await answer.read(), content_type="application/json"
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", arrived
    finally:
        await runner.cleanup()


@asynccontextmanager
async def gateway_via(stack: EmbeddedStack, access_url: str, **overrides: Any) -> AsyncIterator[str]:
    """A gateway of its own (with the front, as served) that asks `access_url` about credentials: its URL."""
    port = free_port()
    settings = GatewaySettings(
        host="127.0.0.1",
        port=port,
        catalog_url=",".join(stack.replica_urls("catalog_service")),
        access_url=access_url,
        history_url=",".join(stack.replica_urls("history_service")),
        internal_secret=SecretStr(stack.internal_secret),
        jwt_secret=SecretStr(stack.jwt_secret),
        **overrides,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    assert install_front(runner)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_parallel_guesses_cannot_pass_the_failure_limit(stack: EmbeddedStack) -> None:
    """40 wrong keys at once, each held at access_service until all that were let through arrived: at most
    the failure burst (5) get a 401 and reach access_service, the rest a 429."""
    access = stack.replica_urls("access_service")[0]
    async with (
        held_relay(access, hold_until=40, at_most=2.0) as (relay_url, arrived),
        gateway_via(
            stack,
            relay_url,
            rate_limit_auth_failures_per_second=0.001,
            rate_limit_auth_failures_burst=5,
            rate_limit_address_per_second=0,
        ) as url,
    ):
        lines = [f"X-API-KEY: hk_{n:016x}.wrong-secret-{n}".encode() for n in range(40)]
        statuses = await _statuses(url, lines, concurrency=40)
    assert sorted(statuses) == [401] * 5 + [429] * 35
    assert len(arrived) == 5


async def test_valid_credentials_are_not_charged(stack: EmbeddedStack, hub: Hub) -> None:
    """With no principal cache, a good key (alone, or ten at once) makes many more requests than the
    failure burst (3) allows failures: each check's reserved token is given back."""
    _, key = await hub.user_with_key()
    access = stack.replica_urls("access_service")[0]
    async with (
        held_relay(access, hold_until=2, at_most=1.0) as (relay_url, _),
        gateway_via(
            stack,
            relay_url,
            auth_cache_ttl_seconds=0,
            rate_limit_auth_failures_per_second=0.001,
            rate_limit_auth_failures_burst=3,
            rate_limit_address_per_second=0,
        ) as url,
    ):
        line = f"X-API-KEY: {key}".encode()
        assert await _statuses(url, [line] * 10, concurrency=10) == [200] * 10
        assert await _statuses(url, [line] * 12, concurrency=1) == [200] * 12
        # The three failures the bucket holds are still there to be made, and no more.
        wrong = f"X-API-KEY: {key}x".encode()
        assert await _statuses(url, [wrong] * 4, concurrency=1) == [401, 401, 401, 429]


# --- Expect ----------------------------------------------------------------------------------------------

EXPECTATIONS = [b"foo", b"100-continue, foo", b"100-continue-please", b"\xff\xfe\x80secret", b"x" * 4000]
EXPECT_TARGETS = {
    "/v1/me": {"error": "expectation failed"},
    "/healthz": {"error": "expectation failed"},
    "/docs": {"error": "expectation failed"},
    "/v1/collections": {"error": "expectation failed"},
    "/api/v2/collections": {"error": "expectation failed"},
    "/namespaces/ns/projects/p/collections": {
        "statusCode": 417,
        "message": "expectation failed",
        "error": "Expectation Failed",
    },
}


@pytest.mark.parametrize("front", [True, False], ids=["front", "application"])
async def test_unknown_expectation_is_a_quiet_417(
    hub: Hub, gateway_with: GatewayFactory, front: bool
) -> None:
    """Any `Expect` but `100-continue`, on own routes and proxied paths: 417 in the dialect's JSON, our
    server name, a request id, and none of the value echoed."""
    async with gateway_with(front=front) as url:
        for target, body in EXPECT_TARGETS.items():
            for value in EXPECTATIONS:
                lines = (b"Expect: " + value, f"X-API-KEY: {hub.admin_key}".encode(), b"Connection: close")
                (answer,) = await exchange(url, head("GET", target, *lines))
                assert answer.status == 417, (target, value[:20], answer.body)
                assert answer.headers["server"] == "collections-hub"
                assert answer.headers["content-type"].startswith("application/json")
                assert answer.headers["x-request-id"]
                assert json.loads(answer.body) == body
                assert value[:8] not in answer.body
                assert b"aiohttp" not in answer.body


async def test_unknown_expectation_without_a_route_is_quiet(hub: Hub, gateway_with: GatewayFactory) -> None:
    """`OPTIONS *` (no route matches it) with an unknown `Expect`, through the front as the gateway serves: a
    quiet JSON 4xx with our server name, not aiohttp's plain-text 417 quoting the value."""
    async with gateway_with() as url:
        for value in EXPECTATIONS:
            lines = (b"Expect: " + value, f"X-API-KEY: {hub.admin_key}".encode(), b"Connection: close")
            (answer,) = await exchange(url, head("OPTIONS", "*", *lines))
            assert 400 <= answer.status < 500, answer.body
            assert answer.headers["server"] == "collections-hub"
            assert set(json.loads(answer.body)) == {"error"}
            assert value[:8] not in answer.body


@pytest.mark.parametrize("front", [True, False], ids=["front", "application"])
async def test_100_continue_still_works(hub: Hub, gateway_with: GatewayFactory, front: bool) -> None:
    """`Expect: 100-continue` gets its interim answer, then the request is answered as usual."""
    async with gateway_with(front=front) as url:
        body = json.dumps({"name": "continued"}).encode()
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(
            head(
                "POST",
                "/v1/collections",
                b"Expect: 100-Continue",
                f"X-API-KEY: {hub.admin_key}".encode(),
                b"Content-Type: application/json",
                b"Content-Length: %d" % len(body),
                b"Connection: close",
            )
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=15)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        (answer,) = read_responses(await asyncio.wait_for(reader.read(), timeout=15))
        writer.close()
        assert answer.status == 200, answer.body
        assert json.loads(answer.body)["collection"]["name"] == "continued"
        lines = (b"Expect: 100-continue", f"X-API-KEY: {hub.admin_key}".encode(), b"Connection: close")
        answers = await exchange(url, head("GET", "/v1/me", *lines))
        assert [a.status for a in answers] == [100, 200]

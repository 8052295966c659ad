"""Rate limits at the gateway: token buckets per credential and per address, stricter for failed logins."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time

from aiohttp import ClientSession
from multidict import CIMultiDict

from gateway.ratelimit import TokenBuckets
from gateway.settings import GatewaySettings
from tests.security.conftest import GatewayFactory
from tests.support import Hub


def test_bucket_refills_at_its_rate() -> None:
    """A bucket gives `burst` at once, then one per 1/rate seconds, and says how long to wait."""
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", now=0.0) == 0.5
    assert buckets.take("k", now=0.5) == 0.0
    assert buckets.take("other", now=0.5) == 0.0  # keys are independent
    assert buckets.wait("k", now=0.6) > 0
    assert buckets.wait("k", now=1.0) == 0.0


def test_bucket_table_stays_bounded() -> None:
    """Many distinct keys never grow the table past its bound, and an active key keeps its state."""
    buckets = TokenBuckets(rate=1.0, burst=2, max_keys=100)
    buckets.take("busy", now=0.0)
    buckets.take("busy", now=0.0)
    for n in range(1_000):
        buckets.take(f"k{n}", now=0.0)
        assert len(buckets._buckets) <= 100


def test_rate_zero_switches_a_limit_off() -> None:
    """A rate of 0 never refuses."""
    buckets = TokenBuckets(rate=0, burst=1)
    assert all(buckets.take("k", now=0.0) == 0.0 for _ in range(1_000))


def test_defaults_are_on() -> None:
    """Out of the box every limit applies (docs/security.md states these numbers)."""
    settings = GatewaySettings()
    assert settings.rate_limit_credential_per_second == 100
    assert settings.rate_limit_address_per_second == 200
    assert settings.rate_limit_auth_failures_per_second == 1
    assert settings.rate_limit_auth_failures_burst == 20


async def test_guessing_secrets_is_cut_off_with_429(hub: Hub, gateway_with: GatewayFactory) -> None:
    """2,000 wrong secrets: the first 20 get 401, the rest 429 with Retry-After, and the address stays
    blocked (even with a valid key) until its bucket refills."""
    _, key = await hub.user_with_key()
    key_id = key.split(".")[0]
    async with gateway_with() as url, ClientSession() as http:
        statuses = []
        started = time.monotonic()
        for n in range(2_000):
            basic = base64.b64encode(f"{key_id}:wrong-{n}".encode()).decode()
            async with http.get(f"{url}/v1/me", headers={"Authorization": f"Basic {basic}"}) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                    # The address bucket may run dry too: either limit answers 429.
                    assert (await response.json())["error"] in {
                        "too many failed authentications",
                        "too many requests",
                    }
        elapsed = time.monotonic() - started
        assert statuses[:20] == [401] * 20
        # The failure bucket refills at 1/s: only the burst and what refilled meanwhile get a 401.
        assert statuses.count(401) <= 20 + math.ceil(elapsed) + 1
        assert statuses.count(429) + statuses.count(401) == 2_000
        async with http.get(f"{url}/v1/me", headers={"X-API-KEY": key}) as response:
            assert response.status == 429


async def test_blocked_address_recovers_after_retry_after(hub: Hub, gateway_with: GatewayFactory) -> None:
    """Once the failure bucket refills, a valid key from the same address works again."""
    _, key = await hub.user_with_key()
    async with (
        gateway_with(rate_limit_auth_failures_per_second=1.0, rate_limit_auth_failures_burst=3) as url,
        ClientSession() as http,
    ):
        statuses = []
        while not statuses or statuses[-1] != 429:  # fail until the address is blocked (3, or a few more)
            async with http.get(f"{url}/v1/me", headers={"X-API-KEY": "hk_0.bad"}) as response:
                statuses.append(response.status)
            assert len(statuses) <= 10
        assert statuses[:3] == [401] * 3
        async with http.get(f"{url}/v1/me", headers={"X-API-KEY": key}) as response:
            assert response.status == 429
            retry_after = int(response.headers["Retry-After"])
        await asyncio.sleep(retry_after)
        async with http.get(f"{url}/v1/me", headers={"X-API-KEY": key}) as response:
            assert response.status == 200


async def test_each_credential_has_its_own_bucket(hub: Hub, gateway_with: GatewayFactory) -> None:
    """One key past its burst gets 429 in its dialect's format; another user's key is unaffected."""
    _, busy = await hub.user_with_key()
    _, quiet = await hub.user_with_key()
    async with (
        gateway_with(rate_limit_credential_per_second=0.01, rate_limit_credential_burst=5) as url,
        ClientSession() as http,
    ):
        statuses = []
        for _ in range(8):
            async with http.get(f"{url}/v1/collections", headers={"X-API-KEY": busy}) as response:
                statuses.append(response.status)
        assert statuses == [200] * 5 + [429] * 3
        async with http.get(f"{url}/api/v2/collections", headers={"X-API-KEY": busy}) as response:
            assert response.status == 429
            assert await response.json() == {"error": "too many requests"}
        async with http.get(f"{url}/namespaces/x/projects/y/collections", headers={"X-API-KEY": busy}) as r:
            assert r.status == 429
            assert await r.json() == {
                "statusCode": 429,
                "message": "too many requests",
                "error": "Too Many Requests",
            }
        async with http.get(f"{url}/v1/collections", headers={"X-API-KEY": quiet}) as response:
            assert response.status == 200


async def test_each_address_has_a_bucket_before_authentication(gateway_with: GatewayFactory) -> None:
    """An address that floods (even without credentials) gets 429 once its bucket is empty."""
    async with (
        gateway_with(rate_limit_address_per_second=0.01, rate_limit_address_burst=10) as url,
        ClientSession() as http,
    ):
        statuses = []
        for _ in range(15):
            async with http.get(f"{url}/v1/collections") as response:
                statuses.append(response.status)
                body = await response.read()
        assert statuses == [401] * 10 + [429] * 5
        assert json.loads(body) == {"error": "too many requests"}


async def test_trusted_proxy_hops_pick_the_client_address(hub: Hub, gateway_with: GatewayFactory) -> None:
    """Behind one trusted proxy, clients are told apart by X-Forwarded-For; a spoofed extra hop is ignored."""
    async with (
        gateway_with(
            trusted_proxy_hops=1, rate_limit_address_per_second=0.01, rate_limit_address_burst=2
        ) as url,
        ClientSession() as http,
    ):

        async def status(forwarded_for: str) -> int:
            headers = {**hub.admin(), "X-Forwarded-For": forwarded_for}
            async with http.get(f"{url}/v1/me", headers=headers) as response:
                return response.status

        assert [await status("10.0.0.1") for _ in range(3)] == [200, 200, 429]
        assert await status("10.0.0.2") == 200
        # The client cannot pick its bucket: the proxy appends the real address last.
        assert await status("1.2.3.4, 10.0.0.1") == 429
        # ... nor with a line of its own before the one the proxy added (HAProxy's `option forwardfor`).
        lines = CIMultiDict(hub.admin())
        lines.add("X-Forwarded-For", "7.7.7.7")
        lines.add("X-Forwarded-For", "10.0.0.1")
        async with http.get(f"{url}/v1/me", headers=lines) as response:
            assert response.status == 429

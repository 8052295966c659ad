"""Token buckets: per credential, per client address, and a stricter one for failed authentications.

A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes one. An empty
bucket means 429 with `Retry-After`. The table is bounded: past `max_keys` buckets, the full ones (callers
that have been quiet long enough to refill) are forgotten first, which changes nobody's answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from gateway.settings import GatewaySettings
from shared.errors import TooManyRequests


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """One bucket per key; `rate` <= 0 switches the limit off."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        """Whether this limit applies at all."""
        return self.rate > 0

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        return bucket

    def wait(self, key: str, now: float | None = None) -> float:
        """Seconds until this key may act again (0: now), without taking a token."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(key, time.monotonic() if now is None else now)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, key: str, now: float | None = None) -> float:
        """Take a token: 0 when there was one, else the seconds until there will be (nothing taken)."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(key, time.monotonic() if now is None else now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def give_back(self, key: str) -> None:
        """Return a token taken for an attempt that turned out not to count (never past `burst`)."""
        bucket = self._buckets.get(key)
        if bucket is not None:  # a forgotten bucket is a full one: nothing to give back to
            bucket.tokens = min(self.burst, bucket.tokens + 1)

    def _forget_idle(self, now: float) -> None:
        full = self.burst
        self._buckets = {
            key: bucket
            for key, bucket in self._buckets.items()
            if bucket.tokens + (now - bucket.stamp) * self.rate < full
        }
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()  # everyone is busy: start over rather than grow without bound


@dataclass(frozen=True)
class RateLimits:
    """The gateway's three limits and how it tells one client from another."""

    per_credential: TokenBuckets
    per_address: TokenBuckets
    auth_failures: TokenBuckets
    trusted_proxy_hops: int = 0

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RateLimits:
        """The limits the settings ask for, as this process's share of them.

        With `gateway_workers` processes each keeps its own buckets and the kernel spreads connections
        over them, so each gets 1/N of every rate and burst: whatever the spread, a client never gets more
        than the configured limit in all (one that keeps to one connection gets 1/N of it).
        """
        share = settings.gateway_workers
        return cls(
            TokenBuckets(
                settings.rate_limit_credential_per_second / share,
                settings.rate_limit_credential_burst / share,
            ),
            TokenBuckets(
                settings.rate_limit_address_per_second / share, settings.rate_limit_address_burst / share
            ),
            TokenBuckets(
                settings.rate_limit_auth_failures_per_second / share,
                settings.rate_limit_auth_failures_burst / share,
            ),
            settings.trusted_proxy_hops,
        )

    def client_address(self, request: web.Request) -> str:
        """The peer address, or with trusted proxies the address the outermost of them saw."""
        if self.trusted_proxy_hops:
            # Every line of the header, in order (RFC 9110 5.3): a client's own line must not pass for
            # the one the proxy added.
            lines = ",".join(request.headers.getall("X-Forwarded-For", ()))
            hops = [hop.strip() for hop in lines.split(",") if hop.strip()]
            if len(hops) >= self.trusted_proxy_hops:
                return hops[-self.trusted_proxy_hops]
        return request.remote or "unknown"

    @staticmethod
    def admit(buckets: TokenBuckets, key: str) -> None:
        """Take a token from the key's bucket, or refuse with 429."""
        if wait := buckets.take(key):
            raise TooManyRequests("too many requests", wait)

    def admit_failures(self, address: str) -> None:
        """Refuse an address whose failed authentications used up its bucket (429), taking nothing."""
        if wait := self.auth_failures.wait(address):
            raise TooManyRequests("too many failed authentications", wait)

    def charge_failure(self, address: str) -> None:
        """Take a token for one failed authentication from this address, or refuse with 429 when there is
        none left: every 401 for bad credentials is paid for before it is sent."""
        if wait := self.auth_failures.take(address):
            raise TooManyRequests("too many failed authentications", wait)

    def reserve_failure(self, address: str) -> None:
        """Take a token before checking new credentials (429 when there is none): guesses in flight at once
        cannot outnumber the bucket. `refund_failure` returns it when the credentials prove valid."""
        self.charge_failure(address)

    def refund_failure(self, address: str) -> None:
        """Return the token `reserve_failure` took: the credentials were valid (or never checked)."""
        self.auth_failures.give_back(address)

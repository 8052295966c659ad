"""The failed-authentication bucket's reservation: taken before a check, given back when it passes."""

from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimits, TokenBuckets
from shared.errors import TooManyRequests


def limits(burst: float) -> RateLimits:
    """Limits whose failure bucket holds `burst` tokens and (almost) never refills."""
    off = TokenBuckets(rate=0, burst=1)
    return RateLimits(off, off, TokenBuckets(rate=0.0001, burst=burst))


def test_reservations_stop_at_the_burst() -> None:
    """However many checks are started at once, only `burst` get a token; the next is a 429."""
    failures = limits(3)
    for _ in range(3):
        failures.reserve_failure("10.0.0.1")
    with pytest.raises(TooManyRequests):
        failures.reserve_failure("10.0.0.1")
    failures.reserve_failure("10.0.0.2")  # another address has its own bucket


def test_a_refund_gives_the_token_back_and_never_more() -> None:
    """A check that passed returns its token; refunds never fill the bucket past its burst."""
    failures = limits(2)
    failures.reserve_failure("a")
    failures.reserve_failure("a")
    failures.refund_failure("a")
    failures.reserve_failure("a")
    with pytest.raises(TooManyRequests):
        failures.reserve_failure("a")
    fresh = limits(2)
    for _ in range(5):
        fresh.refund_failure("b")  # nothing was reserved: nothing to give back
    fresh.reserve_failure("b")
    fresh.reserve_failure("b")
    with pytest.raises(TooManyRequests):
        fresh.charge_failure("b")


def test_give_back_is_capped_at_the_burst() -> None:
    """A bucket given back more tokens than were taken holds its burst, no more."""
    buckets = TokenBuckets(rate=1.0, burst=2)
    assert buckets.take("k", now=0.0) == 0.0
    buckets.give_back("k")
    buckets.give_back("k")
    assert [buckets.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 1.0]

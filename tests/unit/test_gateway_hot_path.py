"""The gateway's per-request shortcuts give the answers the long way gives: the path check without `%`,
request ids, and each worker's share (the request metrics: test_gateway_metrics.py) of the rate limits."""

from __future__ import annotations

import itertools
import random
from urllib.parse import unquote

import pytest

from gateway.middleware import RequestIds
from gateway.ratelimit import RateLimits
from gateway.routing import _DOT_SEGMENTS, _PATH_CHARACTERS, _suspicious, canonical_path
from gateway.settings import GatewaySettings
from shared.errors import Invalid


def suspicious_the_long_way(segment: str) -> bool:
    """`_suspicious` without its shortcut: decode once and twice, check every reading."""
    try:
        once = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        return True
    for decoded in (segment, once, unquote(once)):
        if decoded.split(";", 1)[0] in _DOT_SEGMENTS or "/" in decoded or "\\" in decoded:
            return True
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
            return True
    return False


def test_segments_without_escapes_are_judged_as_the_long_way_judges_them() -> None:
    """Every short segment of path characters without `%` (and 20,000 random longer ones) gets the same
    verdict from the shortcut as from decoding."""
    alphabet = [chr(c) for c in range(0x21, 0x7F) if chr(c) not in "%/\\"]
    short = ["".join(chars) for n in (1, 2) for chars in itertools.product(alphabet, repeat=n)]
    picked = random.Random(12).choices
    longer = ["".join(picked(alphabet + [".", ";"] * 8, k=n)) for n in range(3, 12) for _ in range(2_000)]
    for segment in short + longer + [".;x", "..;a=b", "...", ".a", ";", ".;", "..;"]:
        assert _PATH_CHARACTERS.fullmatch(f"/{segment}")
        assert _suspicious(segment) == suspicious_the_long_way(segment), segment


@pytest.mark.parametrize(
    "path",
    [
        "/v1/../admin/users",
        "/v1/.;x/me",
        "/v1/a/..;/b",
        "/a//b",
        "/v1/%2e%2E/x",
        "/v1/..\n",  # `$` alone would let a final line feed through
        "/admin/users\n",
        "/v1/me\r\n",
    ],
)
def test_dot_segments_are_still_refused(path: str) -> None:
    """Dot segments, with or without escapes or parameters, empty segments and a trailing line end are a
    400."""
    with pytest.raises(Invalid):
        canonical_path(path)


def test_request_ids_are_unique_and_shaped_like_a_uuid() -> None:
    """Ids from one generator never repeat, two generators differ in their prefix, all are 32 hex digits."""
    ids, other = RequestIds(), RequestIds()
    made = [ids.next() for _ in range(10_000)]
    assert len(set(made)) == len(made)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)
    assert other.next()[:16] != made[0][:16]


def test_each_worker_takes_its_share_of_every_limit() -> None:
    """With two workers each process holds half of every rate and burst (the whole when alone)."""
    alone = RateLimits.from_settings(GatewaySettings(gateway_workers=1))
    halved = RateLimits.from_settings(GatewaySettings(gateway_workers=2))
    for mine, whole in (
        (halved.per_credential, alone.per_credential),
        (halved.per_address, alone.per_address),
        (halved.auth_failures, alone.auth_failures),
    ):
        assert (mine.rate, mine.burst) == (whole.rate / 2, whole.burst / 2)

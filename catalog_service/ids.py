"""Opaque, URL-safe ids that sort by creation time (so keyset pages come out oldest first)."""

from __future__ import annotations

import secrets
import time

# 64 URL-safe characters in ASCII order, so lexicographic order of ids is the order they were made in.
_ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


def _encode(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 64)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str = "") -> str:
    """20 characters: 8 of millisecond time, then 12 random (72 bits)."""
    return prefix + _encode(time.time_ns() // 1_000_000, 8) + _encode(secrets.randbits(72), 12)

"""Opaque history cursors, bound to one collection.

A cursor names the last record a page showed (its integer `seq`) and the collection it belongs to,
base64url-encoded JSON. It is not signed: it only positions a read of a collection the caller may
already see, so a hand-made one reveals nothing. Binding it to the collection makes a cursor taken
from another collection's history a 422 instead of a silently wrong page.
"""

from __future__ import annotations

import base64
import binascii
import json

FIRST_PAGE = "0"
_MAX_LENGTH = 512


class InvalidCursor(ValueError):
    """The cursor was not issued for this collection's history."""


def encode(collection_id: str, last_seq: int) -> str:
    """The cursor of the page after the record `last_seq`."""
    raw = json.dumps({"c": collection_id, "s": last_seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(collection_id: str, cursor: str) -> int | None:
    """The `seq` to read below, or None for the first page; raises `InvalidCursor`."""
    if cursor == FIRST_PAGE:
        return None
    if not cursor or len(cursor) > _MAX_LENGTH or not cursor.isascii():
        raise InvalidCursor(cursor)
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor(cursor) from exc
    if not isinstance(payload, dict) or payload.get("c") != collection_id:
        raise InvalidCursor(cursor)
    seq = payload.get("s")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise InvalidCursor(cursor)
    return seq

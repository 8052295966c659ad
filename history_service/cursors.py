"""History cursors: signed tokens naming the last record a page showed, bound to one collection.

Dialect B's `next_cursor` and dialect C's `nextPaginationToken` are the same token. A cursor is signed
(shared/cursors.py) with the services' internal secret, so any replica accepts the cursors of any other,
and a hand-built one (a huge `seq`, a cursor of another collection, a changed byte) is refused before it
reaches a query. `0` stays the first page, as dialect B's document shows.
"""

from __future__ import annotations

import re

from shared.cursors import InvalidToken, TokenSigner

FIRST_PAGE = "0"
PURPOSE = "history"
# Record `seq`s are positive and below the heads' (HEAD_SEQ_BASE = 2**60); the signature already proves
# we issued it, this only keeps a leaked key from turning into an overflowing query.
_SEQ = re.compile(r"[1-9][0-9]{0,17}")


class InvalidCursor(ValueError):
    """The cursor was not issued for this collection's history."""


class HistoryCursors:
    """Issues and reads the history cursors of every dialect."""

    def __init__(self, secret: str) -> None:
        self._signer = TokenSigner(secret, PURPOSE)

    def encode(self, collection_id: str, last_seq: int) -> str:
        """The cursor of the page after the record `last_seq`."""
        return self._signer.issue(collection_id, str(last_seq))

    def decode(self, collection_id: str, cursor: str) -> int | None:
        """The `seq` to read below, or None for the first page; raises `InvalidCursor`."""
        if cursor == FIRST_PAGE:
            return None
        try:
            position = self._signer.verify(collection_id, cursor)
        except InvalidToken as exc:
            raise InvalidCursor("invalid cursor") from exc
        if not _SEQ.fullmatch(position):
            raise InvalidCursor("invalid cursor")
        return int(position)

"""Use cases of a collection's item lists: its assets or models, a page at a time (dialects B and C).

A page is read by a keyset over the member documents' position `q` (catalog_service/member_repository.py):
every add takes fresh positions from the collection's counter, so a position is never reused and never
moves while its item stays a member. The token carries the last position a page showed, signed and bound
to the caller, the collection and the kind; the next page is the members after it, by position. So an item
that is a member for a whole walk is shown exactly once, whatever is added or removed meanwhile: the pages
split the positions into disjoint ranges, and the item's position stays in the range it was in. Items added
during the walk come at the end (a removed and re-added one takes a new position, as a new member would).

Cost per page: the collection (one command, which also decides 404), the page of members (one query the
listing index serves: equalities and a range, about 1 ms at 1,000,000 members on the stand-in), and the
page's registry documents (one `_id $in`); an empty page skips the last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from catalog_service.collection_crud import Collections
from catalog_service.member_repository import MemberRepository
from catalog_service.repository import CatalogRepository, ItemKind
from shared.cursors import InvalidToken, TokenSigner, invalid_cursor
from shared.errors import DomainError, Invalid
from shared.mongo import Document
from shared.principal import Principal

PAGE_SIZE_B = 20  # dialect B pages as its history does
_POSITION_DIGITS = 19  # positions are int64 counters


@dataclass(frozen=True)
class ItemPage:
    """The registry documents of a page's items, in the order they were added, and the next page's token."""

    items: list[Document]
    next_token: str | None


class ItemCursors:
    """Tokens of the item lists: a position, signed, valid only for one caller, collection and kind."""

    def __init__(self, secret: str) -> None:
        self._signer = TokenSigner(secret, "catalog-items")

    @staticmethod
    def _scope(user_id: int, collection_id: str, kind: ItemKind) -> str:
        # The collection id comes last: it is the only part that could hold a separator.
        return f"{kind}\x1f{user_id}\x1f{collection_id}"

    def encode(self, user_id: int, collection_id: str, kind: ItemKind, position: int) -> str:
        """A token for the page after `position`."""
        return self._signer.issue(self._scope(user_id, collection_id, kind), str(position))

    def decode(self, user_id: int, collection_id: str, kind: ItemKind, token: str) -> int:
        """The position a token continues after; `InvalidToken` for one not issued for exactly this."""
        position = self._signer.verify(self._scope(user_id, collection_id, kind), token)
        if not position.isascii() or not position.isdigit() or len(position) > _POSITION_DIGITS:
            raise InvalidToken("not a position")
        return int(position)


class ItemLists:
    """Pages of a collection's assets or models, for whoever may read the collection."""

    def __init__(
        self,
        collections: Collections,
        members: MemberRepository,
        repository: CatalogRepository,
        cursors: ItemCursors,
    ) -> None:
        self.collections = collections
        self.members = members
        self.repo = repository
        self.cursors = cursors

    async def page_c(
        self, principal: Principal, collection_id: str, kind: ItemKind, size: int, token: str | None
    ) -> ItemPage:
        """Dialect C: `size` items after `paginationToken`; a token not issued for this is 400."""
        return await self._page(
            principal, collection_id, kind, size, token, refused=lambda: Invalid("invalid paginationToken")
        )

    async def page_b(self, principal: Principal, collection_id: str, cursor: str) -> ItemPage:
        """Dialect B: 20 assets after the cursor (`0`: the first page); a cursor not issued is 422."""

        def refused() -> DomainError:
            return invalid_cursor("cursor", cursor, "Invalid cursor")

        token = None if cursor == "0" else cursor
        return await self._page(principal, collection_id, "asset", PAGE_SIZE_B, token, refused=refused)

    async def _page(
        self,
        principal: Principal,
        collection_id: str,
        kind: ItemKind,
        size: int,
        token: str | None,
        *,
        refused: Callable[[], DomainError],
    ) -> ItemPage:
        # The collection first: an unreadable one is a 404 whatever its token (as the history routes).
        await self.collections.get(principal, collection_id)
        after = -1  # positions start at 0
        if token is not None:
            try:
                after = self.cursors.decode(principal.user_id, collection_id, kind, token)
            except InvalidToken as exc:
                raise refused() from exc
        found = await self.members.page(collection_id, kind, after, size + 1)
        shown = found[:size]
        next_token = (
            self.cursors.encode(principal.user_id, collection_id, kind, shown[-1][0])
            if len(found) > size
            else None
        )
        if not shown:
            return ItemPage([], next_token)
        by_id = {doc["_id"]: doc for doc in await self.repo.items_by_ids(kind, [i for _, i in shown])}
        # An id the registry never held cannot be linked through the API (links need a registered item, and
        # the registry only soft-deletes); were one there, it is left out rather than made up.
        return ItemPage([by_id[i] for _, i in shown if i in by_id], next_token)

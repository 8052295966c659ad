"""Forged, edited, foreign and oversized cursors on every paging route: a 4xx in the dialect, never a 5xx.

History pages in B (`/history/{cursor}`) and C (`paginationToken`), dialect A's numbered pages, and the C
collections list. Genuine tokens still page, and are good wherever the stack's internal secret is.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from catalog_service.service import ListCursors
from collections_hub.stack import EmbeddedStack
from history_service.cursors import HistoryCursors
from shared.cursors import TokenSigner
from tests.support import Hub, json_of, wait_for_history

EVENTS = 25  # created + 24 visibility changes: two B pages (20 + 5), three C pages of 10


def b64(raw: bytes) -> str:
    """Unpadded base64url, as the tokens are spelled."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(token: str) -> bytes:
    """The bytes of an unpadded base64url token."""
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def echoed(value: str) -> str:
    """How an error message may show a value: short printable ASCII as is, else the placeholder."""
    return value if len(value) <= 64 and all(" " <= ch <= "~" for ch in value) else "(omitted)"


def hostile(genuine: str, collection_id: str, other_genuine: str) -> list[str]:
    """Tokens no client should be able to use: made up, edited, stripped, foreign, huge, long, non-ASCII."""
    raw = unb64(genuine)
    made: list[str] = [
        "test",
        "1",
        "-1",
        "00",
        "01",
        "1e30",
        str(10**30),
        str(2**63),
        "null",
        "A" * 43,
        secrets.token_urlsafe(8),
        secrets.token_urlsafe(43),
        secrets.token_urlsafe(64),
        secrets.token_hex(40),
        "A" * 260,
        "A" * 1000,
        "Z" * 1900,
        "é",
        "токен",
        "🍪" * 10,
        "\u00ff" * 70,
        genuine + "=",
        genuine + "A",
        genuine[:-1],
        genuine[:-4],
        genuine[:10],
        genuine[1:],
        b64(raw[:-32]),  # the position without its signature
        b64(raw[:-32] + bytes(32)),  # with a zeroed signature
        b64(raw[-32:]),  # the signature alone
        b64(b"999999999999999999999999999999" + raw[-32:]),  # a huge position under the old signature
        other_genuine,  # issued for another collection
    ]
    for value in (10**30, -1, 0, 1.5, 1e308, "7", "x" * 10, None, True, [1], 2**63, 2**64):
        made.append(b64(json.dumps({"c": collection_id, "s": value}).encode()))
        made.append(b64(f"c1:{value}".encode()))
    for index in (0, len(raw) // 2, len(raw) - 33, len(raw) - 1):  # one byte changed, in place
        edited = bytearray(raw)
        edited[index] ^= 0x01
        made.append(b64(bytes(edited)))
    return made


async def collection_with_history(hub: Hub, title: str) -> str:
    """A B collection (as the admin) with `EVENTS` history entries, all recorded."""
    status, body = await json_of(hub, "POST", "/api/v2/collections", json={"title": title})
    assert status == 200
    cid = str(body["collection"]["id"])
    for n in range(EVENTS - 1):
        change = "public" if n % 2 == 0 else "private"
        assert (await hub.call("POST", f"/api/v2/collections/{cid}/{change}")).status == 200
    await wait_for_history(hub, cid, EVENTS)
    return cid


@pytest.fixture
async def histories(hub: Hub) -> tuple[str, str]:
    """Two collections with two pages of B history each."""
    tag = uuid.uuid4().hex[:6]
    return (
        await collection_with_history(hub, f"cursors-{tag}-1"),
        await collection_with_history(hub, f"cursors-{tag}-2"),
    )


def assert_dialect_error(status: int, body: Any, token: str) -> None:
    """A 4xx with dialect B's or C's body (`{"error": "..."}`), which never repeats a long or odd token."""
    assert 400 <= status < 500, (status, token[:80])
    assert isinstance(body, dict)
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    if echoed(token) != token:
        assert token not in body["error"]


# --- history, dialect B ----------------------------------------------------------------------------------
async def test_b_history_refuses_every_hostile_cursor_with_its_422(
    hub: Hub, histories: tuple[str, str]
) -> None:
    """Each hostile cursor is 4xx in B's body; the URL-safe ones get the document's exact 422 message."""
    mine, other = histories
    _, first = await json_of(hub, "GET", f"/api/v2/collections/{mine}/history/0")
    _, foreign = await json_of(hub, "GET", f"/api/v2/collections/{other}/history/0")
    genuine, other_genuine = first["history"]["next_cursor"], foreign["history"]["next_cursor"]
    exact = 0
    for token in hostile(genuine, mine, other_genuine):
        status, body = await json_of(
            hub, "GET", f"/api/v2/collections/{mine}/history/{quote(token, safe='')}"
        )
        assert_dialect_error(status, body, token)
        if status == 422:
            assert body == {"error": f"Invalid parameter 'cursor' value \"{echoed(token)}\": Invalid cursor"}
            exact += 1
    # Only the gateway may refuse a path first (too long for it); everything else reaches history's 422.
    assert exact >= len(hostile(genuine, mine, other_genuine)) - 2


async def test_b_history_genuine_cursors_page_and_zero_is_the_first_page(
    hub: Hub, histories: tuple[str, str]
) -> None:
    """`0` is the newest 20; its next_cursor gives the other 5, older, none repeated, then null."""
    mine, _ = histories
    status, first = await json_of(hub, "GET", f"/api/v2/collections/{mine}/history/0")
    assert status == 200
    page_one = [entry["id"] for entry in first["history"]["results"]]
    status, second = await json_of(
        hub, "GET", f"/api/v2/collections/{mine}/history/{first['history']['next_cursor']}"
    )
    assert status == 200
    page_two = [entry["id"] for entry in second["history"]["results"]]
    assert (len(page_one), len(page_two), second["history"]["next_cursor"]) == (20, 5, None)
    assert page_one + page_two == sorted(page_one + page_two, reverse=True)
    assert len(set(page_one + page_two)) == EVENTS


async def test_a_cursor_for_another_collection_is_refused_but_one_signed_with_the_stack_secret_works(
    hub: Hub, stack: EmbeddedStack, histories: tuple[str, str]
) -> None:
    """Tokens are bound to their collection and keyed by the shared secret (any replica accepts them)."""
    mine, other = histories
    _, everything = await json_of(hub, "GET", f"/v1/collections/{mine}/history?pageSize=100")
    ids = [entry["id"] for entry in everything["data"]]
    newest = ids[0]
    cursors = HistoryCursors(stack.internal_secret)
    status, page = await json_of(
        hub, "GET", f"/api/v2/collections/{mine}/history/{cursors.encode(mine, newest)}"
    )
    assert status == 200
    assert [entry["id"] for entry in page["history"]["results"]] == ids[1:21]
    refused = {
        "other collection": cursors.encode(other, newest),
        "other purpose": TokenSigner(stack.internal_secret, "catalog-list").issue(mine, str(newest)),
        "other secret": HistoryCursors("not-the-stack-secret").encode(mine, newest),
        "huge, validly signed": TokenSigner(stack.internal_secret, "history").issue(mine, str(10**30)),
        "negative, validly signed": TokenSigner(stack.internal_secret, "history").issue(mine, "-1"),
        "float, validly signed": TokenSigner(stack.internal_secret, "history").issue(mine, "1.5"),
    }
    for label, token in refused.items():
        status, body = await json_of(hub, "GET", f"/api/v2/collections/{mine}/history/{token}")
        assert (status, body) == (
            422,
            {"error": f"Invalid parameter 'cursor' value \"{echoed(token)}\": Invalid cursor"},
        ), label


async def test_an_unknown_collection_is_404_before_its_cursor_is_judged(hub: Hub) -> None:
    """A forged cursor on a collection that does not exist answers the document's 404, not a 422 or 5xx."""
    for token in ("0", "test", str(10**30), "A" * 500):
        assert await json_of(hub, "GET", f"/api/v2/collections/not-found-id/history/{token}") == (
            404,
            {"error": "collection not found"},
        )


# --- history, dialect C ----------------------------------------------------------------------------------
async def test_c_history_refuses_every_hostile_token_with_its_400(
    hub: Hub, histories: tuple[str, str]
) -> None:
    """Each hostile `paginationToken` is 400 in C's body, with the value echoed only when short and plain."""
    mine, other = histories
    _, first = await json_of(hub, "GET", f"/v1/collections/{mine}/history?pageSize=10")
    _, foreign = await json_of(hub, "GET", f"/v1/collections/{other}/history?pageSize=10")
    genuine, other_genuine = first["nextPaginationToken"], foreign["nextPaginationToken"]
    for token in hostile(genuine, mine, other_genuine):
        status, body = await json_of(
            hub, "GET", f"/v1/collections/{mine}/history", params={"pageSize": "10", "paginationToken": token}
        )
        assert_dialect_error(status, body, token)
        if len(token) < 1000:  # the longest may meet the gateway's path limit first
            message = (
                f"Invalid parameter 'paginationToken' value \"{echoed(token)}\": Invalid pagination token"
            )
            assert (status, body) == (400, {"error": message}), token[:80]


async def test_c_history_genuine_tokens_page_through_everything_once(
    hub: Hub, histories: tuple[str, str]
) -> None:
    """Following nextPaginationToken gives 10, 10 and 5 entries, newest first, none twice, then no token."""
    mine, _ = histories
    seen: list[int] = []
    sizes = []
    token: str | None = None
    while True:
        params = {"pageSize": "10", **({"paginationToken": token} if token else {})}
        status, body = await json_of(hub, "GET", f"/v1/collections/{mine}/history", params=params)
        assert status == 200
        sizes.append(len(body["data"]))
        seen += [entry["id"] for entry in body["data"]]
        token = body.get("nextPaginationToken")
        if token is None:
            break
    assert sizes == [10, 10, 5]
    assert seen == sorted(set(seen), reverse=True)


# --- history, dialect A (numbered pages) -----------------------------------------------------------------
async def test_a_history_refuses_hostile_page_numbers_with_its_400(
    hub: Hub, histories: tuple[str, str]
) -> None:
    """Dialect A pages by number: huge, negative, fractional or text values are a 400 in A's body."""
    mine, _ = histories
    _, got = await json_of(hub, "GET", f"/api/v2/collections/{mine}")
    path = f"/namespaces/personal/projects/user-1/collections/{quote(got['collection']['title'])}/history"
    status, body = await json_of(hub, "GET", f"{path}?page=2&pageSize=20")
    assert (status, len(body["history"]), body["total"]) == (200, 5, EVENTS)
    values = [str(10**30), "-1", "0", "1.5", "1e3", "abc", "", "0x10", "٣", "1" * 500, "1000001"]
    for field in ("page", "pageSize"):
        for value in values:
            status, body = await json_of(hub, "GET", path, params={field: value})
            assert status == 400, (field, value)
            assert (body["statusCode"], body["error"]) == (400, "Bad Request")
            assert isinstance(body["message"], str)
            assert len(value) < 100 or value not in body["message"]


# --- the C collections list ------------------------------------------------------------------------------
async def test_c_list_refuses_hostile_and_other_users_tokens(hub: Hub, stack: EmbeddedStack) -> None:
    """Hostile tokens, and a genuine token of another user, are 400 in C's body on the collections list."""
    me, key = await hub.user_with_key()
    _, other_key = await hub.user_with_key()
    for n in range(7):
        await json_of(hub, "POST", "/v1/collections", key=key, json={"name": f"l{n}"})
        await json_of(hub, "POST", "/v1/collections", key=other_key, json={"name": f"o{n}"})
    _, mine = await json_of(hub, "GET", "/v1/collections", key=key, params={"pageSize": "3"})
    _, theirs = await json_of(hub, "GET", "/v1/collections", key=other_key, params={"pageSize": "3"})
    genuine, other_genuine = mine["nextPaginationToken"], theirs["nextPaginationToken"]
    first_id = mine["collections"][0]["id"]
    tokens = hostile(genuine, first_id, other_genuine)
    tokens.append(TokenSigner(stack.internal_secret, "history").issue("user:1", first_id))
    tokens.append(ListCursors("not-the-stack-secret").encode_cursor(1, 3))
    # Signed with the stack's secret for this very caller, but not a position: the payload is checked too.
    signer = TokenSigner(stack.internal_secret, "catalog-list")
    tokens += [
        signer.issue(f"user:{me['id']}", bad) for bad in ("abc", "-1", "1e3", " 3", "\u0663", first_id)
    ]
    for token in tokens:
        status, body = await json_of(
            hub, "GET", "/v1/collections", key=key, params={"pageSize": "3", "paginationToken": token}
        )
        assert_dialect_error(status, body, token)
        assert status == 400, token[:80]
        if len(token) <= 200:  # longer ones fail the query's length rule first, in the same body
            assert body == {"error": "invalid paginationToken"}, token[:80]
        assert first_id not in body["error"]


async def test_c_list_genuine_tokens_page_every_collection_once(hub: Hub, stack: EmbeddedStack) -> None:
    """The list's tokens show each of the caller's collections once; the shared secret signs them."""
    user, key = await hub.user_with_key()
    made = []
    for n in range(7):
        _, body = await json_of(hub, "POST", "/v1/collections", key=key, json={"name": f"page-{n}"})
        made.append(body["collection"]["id"])
    seen: list[str] = []
    token: str | None = None
    while True:
        params = {"pageSize": "3", **({"paginationToken": token} if token else {})}
        status, body = await json_of(hub, "GET", "/v1/collections", key=key, params=params)
        assert status == 200
        seen += [c["id"] for c in body["collections"]]
        token = body.get("nextPaginationToken")
        if token is None:
            break
    assert seen == made  # in the order they became visible to the caller
    forged_by_the_stack = ListCursors(stack.internal_secret).encode_cursor(user["id"], 4)
    status, body = await json_of(
        hub,
        "GET",
        "/v1/collections",
        key=key,
        params={"pageSize": "10", "paginationToken": forged_by_the_stack},
    )
    assert (status, [c["id"] for c in body["collections"]]) == (200, made[4:])

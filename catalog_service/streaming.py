"""JSON answers written as they are produced: an async iterator inside the value becomes a JSON array sent
item by item, so an answer listing a million members never exists whole in memory.

A HEAD request gets the head a GET would get and no body: aiohttp frames a `StreamResponse` to HEAD with
neither a length nor chunks, so anything written would reach the client as stray bytes where its next
answer should start (docs/security.md, "HEAD answers carry no body")."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import hdrs, web

FLUSH_BYTES = 64 * 1024
_encode = json.JSONEncoder(ensure_ascii=True).encode


class Counted:
    """An async iterator that counts what it yields (for a total written after the list)."""

    def __init__(self, items: AsyncIterator[Any]) -> None:
        self._items = items
        self.count = 0

    def __aiter__(self) -> Counted:
        return self

    async def __anext__(self) -> Any:
        item = await self._items.__anext__()
        self.count += 1
        return item


class _Writer:
    def __init__(self, response: web.StreamResponse) -> None:
        self._response = response
        self._parts: list[str] = []
        self._size = 0

    async def put(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= FLUSH_BYTES:
            await self.flush()

    async def flush(self) -> None:
        if self._parts:
            await self._response.write("".join(self._parts).encode())
            self._parts, self._size = [], 0

    async def value(self, value: Any) -> None:
        if isinstance(value, dict):
            await self.put("{")
            for n, (key, item) in enumerate(value.items()):
                await self.put(("," if n else "") + _encode(key) + ":")
                await self.value(item)
            await self.put("}")
        elif isinstance(value, list):
            await self.put("[")
            for n, item in enumerate(value):
                if n:
                    await self.put(",")
                await self.value(item)
            await self.put("]")
        elif hasattr(value, "__aiter__"):
            await self.put("[")
            first = True
            async for item in value:
                await self.put("" if first else ",")
                first = False
                await self.value(item)
            await self.put("]")
        elif callable(value):
            await self.value(value())
        else:
            await self.put(_encode(value))


async def stream_json(request: web.Request, value: Any, *, status: int = 200) -> web.StreamResponse:
    """Answer `value` as JSON; async iterators in it are streamed, zero-argument callables evaluated late.

    To HEAD, the same status and headers and no body: the value's iterators are never started (no query
    runs for members nobody will read) and its callables never called."""
    response = web.StreamResponse(status=status)
    response.content_type = "application/json"
    response.charset = "utf-8"
    await response.prepare(request)
    if request.method != hdrs.METH_HEAD:
        writer = _Writer(response)
        await writer.value(value)
        await writer.flush()
    await response.write_eof()
    return response

"""What one client may hold: a deadline for each request body, and a cap on connections per address.

aiohttp bounds a request's head (line and field sizes) and an idle connection (the keep-alive timeout),
but a request whose body stops coming holds its connection, a parser and a handler for as long as the
client keeps the socket open: 12 such requests were all still open after 125 s. `BodyDeadline` gives a
body `HUB_BODY_TIMEOUT_SECONDS` from the end of its head; past that, reading it fails with
`RequestTimeout` (408 in the dialect's shape, through the one error mapping) and the connection closes
after that answer. A request whose body came with its head (nearly all) gets no timer at all.

`CappedConnection` counts open connections per TCP peer address from its `connection_made` to its
`connection_lost`, once per connection and never per request; the connection past the cap is closed at
once, before anything is read from it. Behind proxies (`HUB_TRUSTED_PROXY_HOPS`) the peer is the proxy:
the cap counts the proxy's connections, not its clients'.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from shared.errors import RequestTimeout

ServerHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class BodyDeadline:
    """The server's request handler, with `seconds` for a request's body to arrive in full."""

    __slots__ = ("_handler", "_seconds")

    def __init__(self, handler: ServerHandler, seconds: float) -> None:
        self._handler = handler
        self._seconds = seconds

    def __call__(self, request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        """The handler's answer; a body still arriving gets a deadline while the handler runs."""
        if request.content.is_eof():
            # No body, or all of it came with the head: the handler's own coroutine, no timer, no frame.
            return self._handler(request)
        return self._within_deadline(request)

    async def _within_deadline(self, request: web.BaseRequest) -> web.StreamResponse:
        timer = asyncio.get_running_loop().call_later(self._seconds, expire_body, request)
        try:
            return await self._handler(request)
        finally:
            # Once answered, aiohttp's own lingering (at most 10 s) bounds whatever body is left.
            timer.cancel()


def expire_body(request: web.BaseRequest) -> None:
    """Past the deadline: a body not yet complete fails every read, and the connection closes after
    the answer (the rest of that body must never be parsed as a next request)."""
    body = request.content
    if body.is_eof():
        return
    body.set_exception(RequestTimeout("request body not received in time"))
    # Complete, so aiohttp does not linger reading the rest once the 408 is out; reads still fail.
    body.feed_eof()
    request.protocol.close()


class AddressCounts:
    """Open connections per client address, at most `limit` each."""

    __slots__ = ("_limit", "_open")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._open: dict[str, int] = {}

    def admit(self, address: str) -> bool:
        """Count one more connection from `address`; False (nothing counted) when it has `limit` open."""
        count = self._open.get(address, 0)
        if count >= self._limit:
            return False
        self._open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        """One connection from `address` closed."""
        count = self._open.pop(address) - 1
        if count:
            self._open[address] = count

    def open(self, address: str) -> int:
        """How many connections from `address` are open."""
        return self._open.get(address, 0)


class CappedConnection(web.RequestHandler):
    """aiohttp's connection handler, refusing a connection whose peer address already has its cap."""

    __slots__ = ("_address", "_counts", "_refused")

    def __init__(self, manager: web.Server, counts: AddressCounts, **options: Any) -> None:
        super().__init__(manager, **options)
        self._counts = counts
        self._address: str | None = None  # set while counted
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Serve the connection, or close it at once when its address has its cap open."""
        address = peer_address(transport)
        if address is not None:
            if not self._counts.admit(address):
                # Refused before a byte is read: no parser, no handler, no answer (a 429 would need the
                # request's head read, the excess connection holding a buffer meanwhile).
                self._refused = True
                transport.close()
                return
            self._address = address
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Release the address's count (a refused connection was never served nor counted)."""
        if self._refused:
            return  # aiohttp never saw it
        if self._address is not None:
            self._counts.release(self._address)
            self._address = None
        super().connection_lost(exc)


def peer_address(transport: asyncio.BaseTransport) -> str | None:
    """The TCP peer's address (None for a peer without one, as on a Unix socket)."""
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else None


class CappedSite(web.BaseSite):
    """A site on a listening socket whose connections are `CappedConnection`s sharing `counts`."""

    __slots__ = ("_counts", "_name", "_options", "_sock")

    def __init__(
        self, runner: web.BaseRunner, sock: socket.socket, counts: AddressCounts, **options: Any
    ) -> None:
        super().__init__(runner)
        self._sock = sock
        self._counts = counts
        self._options = options
        host, port = sock.getsockname()[:2]
        self._name = f"http://{host}:{port}"

    @property
    def name(self) -> str:
        """The site's URL."""
        return self._name

    async def start(self) -> None:
        """Accept connections on the socket."""
        await super().start()
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")
        loop = asyncio.get_running_loop()

        def connection() -> CappedConnection:
            return CappedConnection(server, self._counts, loop=loop, **self._options)

        self._server = await loop.create_server(connection, sock=self._sock)

"""The caller's copy of a short upstream answer, written the way aiohttp's `web.Response` writes it, in fewer
steps.

aiohttp prepares a response in a chain of coroutines (prepare, start, prepare the headers, the prepare
signals, write the headers, write the end), each asking what the gateway already knows of a short answer
it relays: its length, that it has a body, that nothing compresses it, that no cookie is set. A
`ShortAnswer` sets the same headers and hands the same status line, headers and body to the same writer
(`write_headers` then `write_eof`: one coalesced socket write), so the caller receives the same bytes.
It serves only where that is plainly so: an HTTP/1.1 request that keeps its connection, not HEAD, and a
status that carries a body (not 1xx, 204 or 304). Every other answer is a `web.Response`, as before.
`tests/unit/test_answer.py` compares the two byte for byte on a real server.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time

_NO_BODY_STATUSES = frozenset({204, 304})


class ShortAnswer(web.StreamResponse):
    """A status, headers and a whole body, written in one piece when aiohttp prepares it."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(status=status, headers=headers)
        self._whole = body

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Write the status line, the headers and the body (the same headers `web.Response` would send:
        Content-Length, Date, and what the handler and middleware set), then mark the answer ended."""
        if self._eof_sent:
            return None
        writer = request._payload_writer
        headers = self._headers
        headers[hdrs.CONTENT_LENGTH] = str(len(self._whole))
        if hdrs.DATE not in headers:
            headers[hdrs.DATE] = rfc822_formatted_time()
        if self._keep_alive is False:  # `force_close()`: say so, and aiohttp ends the connection after it
            headers[hdrs.CONNECTION] = "close"
        else:
            self._keep_alive = True
        await request._prepare_hook(self)  # the prepare signals, as `web.Response` sends them
        await writer.write_headers(f"HTTP/1.1 {self.status} {self.reason}", headers)
        await writer.write_eof(self._whole)
        self._eof_sent = True
        self._body_length = writer.output_size
        return None


def answer(
    request: web.BaseRequest, status: int, headers: Mapping[str, str], body: bytes
) -> web.StreamResponse:
    """The answer to send for a whole upstream body: a `ShortAnswer` where it writes what `web.Response`
    would, else a `web.Response`."""
    if (
        request.version == HttpVersion11
        and request.keep_alive
        and request.method != hdrs.METH_HEAD
        and status >= 200
        and status not in _NO_BODY_STATUSES
    ):
        return ShortAnswer(status, headers, body)
    return web.Response(body=body, status=status, headers=headers)

"""Which service owns a public path (an ordered table of patterns, first match wins), and which paths
the gateway accepts at all.

The gateway routes, authorises and forwards one string: the raw path exactly as received, once
`canonical_path` has accepted it. Anything a server or client between here and the service could read
differently (dot segments in any encoding, encoded or back slashes, empty segments, percent-encoded
characters that need none, control or non-ASCII bytes) is refused with 400 instead of being normalised,
so what was checked is byte for byte what the service sees.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import unquote

from shared.errors import Invalid, UriTooLong

ServiceName = Literal["catalog", "access", "history"]

_SEGMENT = r"[^/]+"
_TABLE: list[tuple[str, ServiceName]] = [
    (r"^/admin/(users|api-keys|groups)(/|$)", "access"),
    (rf"^/admin/namespaces/{_SEGMENT}/projects/{_SEGMENT}/members(/|$)", "access"),
    (r"^/admin/(namespaces|collections|views)(/|$)", "catalog"),
    (
        rf"^/api/v2/collections/{_SEGMENT}/(public|private|users|all_users|guests|user_groups)(/|$)",
        "access",
    ),
    (rf"^/api/v2/collections/{_SEGMENT}/history(/|$)", "history"),
    (r"^/api/v2/collections(/|$)", "catalog"),
    (rf"^/namespaces/{_SEGMENT}/projects/{_SEGMENT}/collections/{_SEGMENT}/history/?$", "history"),
    (r"^/namespaces/", "catalog"),
    (rf"^/v1/collections/{_SEGMENT}/history/?$", "history"),
    (r"^/v1/(collections|assets|models)(/|$)", "catalog"),
]
# The table as one alternation, a named group per row: one match in C finds the first row that matches
# (alternatives are tried in order, all anchored at the start), rather than up to ten in turn.
_ROUTES = re.compile("|".join(f"(?P<r{n}>{pattern[1:]})" for n, (pattern, _) in enumerate(_TABLE)))
_SERVICES = {f"r{n}": service for n, (_, service) in enumerate(_TABLE)}


def service_for(raw_path: str) -> ServiceName | None:
    """The service that serves this (still percent-encoded) path, or None when no service does."""
    match = _ROUTES.match(raw_path)
    return _SERVICES[match.lastgroup] if match is not None and match.lastgroup is not None else None


def admin_only(path: str) -> bool:
    """Everything under `/admin/`, and the gateway's `/metrics`, need the admin role (checked here)."""
    return path.startswith("/admin/") or path == "/metrics"


MAX_PATH_LENGTH = 2048
# Printable ASCII but the backslash; `%` only as a well-formed escape.
_PATH_CHARACTERS = re.compile(r"^/[!-\[\]-~]*$")
_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%(2[DdEe]|5[Ff]|7[Ee]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa])")
_DOT_SEGMENTS = frozenset({".", ".."})


def _suspicious(segment: str) -> bool:
    """Whether a segment, decoded once or twice, is a dot segment, hides a slash, backslash or control
    character, or is not UTF-8 (a service could not store or look it up). The segment's characters are
    already known to be printable ASCII but the backslash (`canonical_path`)."""
    if "%" not in segment:  # nothing to decode (most paths): only a dot segment is left to refuse
        return segment.split(";", 1)[0] in _DOT_SEGMENTS
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


def canonical_path(raw_path: str) -> str:
    """The raw path if the gateway may route and forward it unchanged; 400 (or 414) otherwise."""
    if len(raw_path) > MAX_PATH_LENGTH:
        raise UriTooLong("request path too long")
    if not _PATH_CHARACTERS.fullmatch(raw_path) or _ESCAPE.search(raw_path):
        raise Invalid("malformed request path")
    segments = raw_path[1:].split("/")
    # An empty segment is allowed only as a trailing slash.
    if any(not segment for segment in segments[:-1]) or any(_suspicious(s) for s in segments):
        raise Invalid("malformed request path")
    return raw_path

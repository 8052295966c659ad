"""Signed, opaque pagination tokens: a client can only hand back a token a service issued for the same thing.

A token is `base64url(position || tag)`, where `tag` = HMAC-SHA256 over the scope (what is paged: a
collection's history, one caller's list) and the position (where the page ended). The key is derived from
the services' shared internal secret with a fixed label per purpose, so every replica verifies the tokens
of every other, and a token of one purpose or scope is refused by another. Tokens are length-bounded and
must be the canonical encoding, so a changed byte, a truncation, a re-encoding without the tag, a token
made for another collection or user, and any hand-built position (a huge number, say) are all refused
before the position is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from shared.errors import ValidationFailed

# Changing the label invalidates every token issued before (a key rotation does the same).
_KEY_LABEL = b"collections-hub/pagination-token/v1\x00"
_TAG_BYTES = 32
MAX_POSITION_BYTES = 160
# Four characters per three bytes of position and tag, rounded up: nothing longer was ever issued.
MAX_TOKEN_LENGTH = -(-(MAX_POSITION_BYTES + _TAG_BYTES) // 3) * 4
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class InvalidToken(ValueError):
    """The token was not issued by this service for this scope."""


# Longest cursor value an error message repeats; anything longer, or not printable ASCII, is not echoed.
_ECHO_LIMIT = 64


def echoable(value: str) -> str:
    """The value as an error may show it: short printable ASCII as given, anything else a placeholder."""
    if len(value) <= _ECHO_LIMIT and all(" " <= ch <= "~" for ch in value):
        return value
    return "(omitted)"


def invalid_cursor(name: str, value: str, what: str) -> ValidationFailed:
    """Dialect B's message for a cursor it did not issue, with the value as given when safe to repeat."""
    return ValidationFailed(f"Invalid parameter '{name}' value \"{echoable(value)}\": {what}")


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _framed(text: str) -> bytes:
    """`text` with its length first, so that scope and position can never run into each other."""
    # surrogatepass: a path segment may decode to a lone surrogate; it must still map to distinct bytes.
    data = text.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(4, "big") + data


class TokenSigner:
    """Issues and verifies the tokens of one purpose (`history`, `catalog-list`...)."""

    def __init__(self, secret: str, purpose: str) -> None:
        # Without a configured secret, a random key: tokens then work on this process only, never forged.
        material = secret.encode() if secret else secrets.token_bytes(32)
        self._key = hmac.new(material, _KEY_LABEL + purpose.encode(), hashlib.sha256).digest()

    def _tag(self, scope: str, position: bytes) -> bytes:
        return hmac.new(self._key, _framed(scope) + position, hashlib.sha256).digest()

    def issue(self, scope: str, position: str) -> str:
        """A token for `position` within `scope`."""
        payload = position.encode()
        if not payload or len(payload) > MAX_POSITION_BYTES:
            raise ValueError("a position must be 1 to 160 bytes")
        return _encode(payload + self._tag(scope, payload))

    def verify(self, scope: str, token: str) -> str:
        """The position a token issued for `scope` carries; `InvalidToken` for anything else."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
            raise InvalidToken("malformed")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken("malformed") from exc
        # Only the canonical spelling: otherwise the unused low bits of the last character would give
        # several tokens per position.
        if len(raw) <= _TAG_BYTES or _encode(raw) != token:
            raise InvalidToken("malformed")
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(scope, payload)):
            raise InvalidToken("not issued for this scope")
        try:
            return payload.decode()
        except UnicodeDecodeError as exc:  # only if the key leaked: nothing we issue fails here
            raise InvalidToken("malformed") from exc

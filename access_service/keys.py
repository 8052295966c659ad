"""API key material: generation, the lookup id / secret split, and hashing."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_ID_PREFIX = "hk_"
_ISSUED_KEY = re.compile(r"^(hk_[0-9a-f]{16})\.([A-Za-z0-9_-]{32,128})$")


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret, as stored: keys are high-entropy, so a slow hash adds nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def new_key() -> tuple[str, str]:
    """A fresh (key_id, secret) pair: a 64-bit lookup id and a 256-bit secret."""
    return f"{KEY_ID_PREFIX}{secrets.token_hex(8)}", secrets.token_urlsafe(32)


def join_key(key_id: str, secret: str) -> str:
    """The single-string key shown once: works as `X-API-KEY` or `Authorization: Bearer`."""
    return f"{key_id}.{secret}"


def split_key(key: str) -> tuple[str, str]:
    """(key_id, secret) of a presented single-string key.

    Keys we issue carry their lookup id. An operator-chosen key (`HUB_ADMIN_API_KEY`) may be any string:
    its lookup id is derived from its hash, so it is still found with one read and compared in full.
    """
    if match := _ISSUED_KEY.match(key):
        return match.group(1), match.group(2)
    return f"{KEY_ID_PREFIX}{hashlib.sha256(key.encode()).hexdigest()[:16]}", key

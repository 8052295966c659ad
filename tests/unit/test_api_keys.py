"""API key material: issued keys carry their lookup id; operator keys get a derived one."""

from __future__ import annotations

from access_service import keys


def test_issued_key_splits_back_into_its_parts() -> None:
    """The single-string key shown once splits into the lookup id and the secret it was made of."""
    key_id, secret = keys.new_key()
    assert keys.split_key(keys.join_key(key_id, secret)) == (key_id, secret)


def test_issued_keys_are_high_entropy_and_distinct() -> None:
    """Secrets are at least 256 bits of URL-safe randomness and never repeat."""
    secrets = {keys.new_key()[1] for _ in range(200)}
    assert len(secrets) == 200
    assert all(len(s) >= 43 for s in secrets)


def test_operator_key_gets_a_stable_derived_lookup_id() -> None:
    """Any other string keeps itself as the secret and always maps to the same lookup id."""
    first = keys.split_key("my operator key")
    assert first == keys.split_key("my operator key")
    assert first[1] == "my operator key"
    assert first[0].startswith(keys.KEY_ID_PREFIX)


def test_only_the_hash_is_compared() -> None:
    """The stored hash matches the right secret and no other."""
    stored = keys.hash_secret("right")
    assert keys.secret_matches("right", stored)
    assert not keys.secret_matches("wrong", stored)

"""A second embedded stack standing in for a hosted service (rate-limited, as a hosted one would be)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import pytest

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack, StackConfig
from tests.support import UNLIMITED_RATES


@pytest.fixture(scope="session")
def remote(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """The "hosted service" migrations copy from: its own databases, and a per-key limit that answers 429."""
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("remote"),
        port=free_port(),
        mongodb_url=mongodb_url,
        nats_url=nats_url,
        admin_api_key=f"remote-admin-{secrets.token_urlsafe(16)}",
        database_prefix=f"remote_{uuid.uuid4().hex[:8]}",
        extra_env={
            "HUB_CONSUMER_DELIVER_POLICY": "new",
            **UNLIMITED_RATES,
            # A hosted service limits each key: clients must wait out the 429s, not fail on them.
            "HUB_RATE_LIMIT_CREDENTIAL_PER_SECOND": "60",
            "HUB_RATE_LIMIT_CREDENTIAL_BURST": "20",
        },
    )
    stack = EmbeddedStack(config)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()

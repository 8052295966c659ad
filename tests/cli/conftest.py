"""A second embedded stack standing in for a hosted service (rate-limited, as a hosted one would be)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collections_hub.stack import EmbeddedStack
from tests.support import running_stack


@pytest.fixture(scope="session")
def remote(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """The "hosted service" migrations copy from: its own databases, and a per-key limit that answers 429."""
    # A hosted service limits each key: clients must wait out the 429s, not fail on them.
    limited = {"HUB_RATE_LIMIT_CREDENTIAL_PER_SECOND": "60", "HUB_RATE_LIMIT_CREDENTIAL_BURST": "20"}
    with running_stack(
        tmp_path_factory.mktemp("remote"), mongodb_url, nats_url, "remote", extra_env=limited
    ) as stack:
        yield stack

"""The whole stack as real processes (three services and the gateway) on the session's servers."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession

from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack, StackConfig
from tests.support import Hub


@pytest.fixture(scope="session")
def stack(
    mongodb_url: str, nats_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedStack]:
    """One stack for the e2e session, on its own databases."""
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        port=free_port(),
        mongodb_url=mongodb_url,
        nats_url=nats_url,
        admin_api_key=f"e2e-admin-{secrets.token_urlsafe(16)}",
        database_prefix=f"e2e_{uuid.uuid4().hex[:8]}",
        # The session's NATS server is shared: start at new events, not at every earlier test's.
        extra_env={"HUB_CONSUMER_DELIVER_POLICY": "new"},
    )
    stack = EmbeddedStack(config)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
async def hub(stack: EmbeddedStack) -> AsyncIterator[Hub]:
    """A client of the running gateway."""
    async with ClientSession() as http:
        yield Hub(stack.gateway_url, http, stack.admin_api_key)


@pytest.fixture
def stack_logs(stack: EmbeddedStack) -> Path:
    """Where the stack's processes log."""
    return stack.config.data_dir / "logs"

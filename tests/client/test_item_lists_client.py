"""`hub.collections.assets.list(id)` and `.models.list(id)`: lazy typed pages, sync and async client."""

from __future__ import annotations

import uuid

import pytest

from collections_hub.client import AsyncHub, Hub, NotFound
from collections_hub.client import models as m
from collections_hub.stack import EmbeddedStack
from tests.support import unique_email


def test_sync_client_lists_a_collections_items_page_by_page(stack: EmbeddedStack) -> None:
    """Assets and models come back typed, in the order they were added, across pages; a stranger gets 404."""
    tag = uuid.uuid4().hex[:8]
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as admin:
        stranger = admin.admin.create_user(unique_email("stranger"))
        stranger_key = admin.admin.create_key(stranger.id).key
        assets = [admin.assets.create(f"a{i}", id=f"{tag}-a{i}").id for i in range(7)]
        models = [admin.models.create(f"m{i}").id for i in range(3)]
        box = admin.collections.create(f"items-{tag}")
        admin.collections.assets.add(box.id, assets[3:])
        admin.collections.assets.add(box.id, assets[:3])
        admin.collections.models.add(box.id, models[::-1])
        listed = list(admin.collections.assets.list(box.id, page_size=2))  # four pages, fetched lazily
        assert all(isinstance(item, m.CollectionItem) for item in listed)
        assert [item.id for item in listed] == assets[3:] + assets[:3]
        assert [item.id for item in admin.collections.models.list(box.id)] == models[::-1]
        assert listed[0] == m.CollectionItem.model_validate(admin.assets.retrieve(assets[3]).model_dump())
        admin.assets.delete(assets[0])
        deleted = [item for item in admin.collections.assets.list(box.id) if item.deleted]
        assert [item.id for item in deleted] == [assets[0]]
    with Hub(stack.gateway_url, api_key=stranger_key) as hub, pytest.raises(NotFound):
        list(hub.collections.assets.list(box.id))


async def test_async_client_lists_items_lazily(stack: EmbeddedStack) -> None:
    """AsyncHub: 60 assets iterated in pages of 25, in order; an empty models list yields nothing."""
    tag = uuid.uuid4().hex[:8]
    async with AsyncHub(stack.gateway_url, api_key=stack.admin_api_key) as hub:
        assets = [(await hub.assets.create(f"x{i}", id=f"{tag}-{i}")).id for i in range(60)]
        box = await hub.collections.create(f"async-items-{tag}")
        await hub.collections.assets.add(box.id, assets)
        assert [item.id async for item in hub.collections.assets.list(box.id, page_size=25)] == assets
        assert [item async for item in hub.collections.models.list(box.id)] == []

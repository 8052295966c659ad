"""Dialect C's thumbnail through the gateway: `url` is always a string, as document 003 types it."""

from __future__ import annotations

import httpx

from collections_hub.client import AsyncHub, Hub
from collections_hub.stack import EmbeddedStack


def raw_thumbnail(stack: EmbeddedStack, collection_id: str) -> object:
    """The thumbnail exactly as the gateway sends it (the client's model would accept a missing url)."""
    answer = httpx.get(
        f"{stack.gateway_url}/v1/collections/{collection_id}", headers={"X-API-KEY": stack.admin_api_key}
    )
    assert answer.status_code == 200
    return answer.json()["collection"]["thumbnail"]


def test_a_thumbnail_of_an_asset_without_a_url_has_an_empty_url(stack: EmbeddedStack) -> None:
    """An asset registered without a url becomes a thumbnail with `url: ""`; one with a url shows it."""
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as hub:
        bare = hub.assets.create("bare")
        pictured = hub.assets.create("pictured", url="https://cdn.example/p.png")
        box = hub.collections.create("thumbs")
        added = hub.collections.assets.add(box.id, [bare.id, pictured.id])
        assert added.thumbnail is not None
        assert (added.thumbnail.assetId, added.thumbnail.url) == (bare.id, "")
        assert raw_thumbnail(stack, box.id) == {"assetId": bare.id, "url": ""}

        chosen = hub.collections.update(box.id, thumbnail_asset_id=pictured.id)
        assert chosen.thumbnail is not None
        assert chosen.thumbnail.url == "https://cdn.example/p.png"
        assert raw_thumbnail(stack, box.id) == {"assetId": pictured.id, "url": "https://cdn.example/p.png"}


async def test_the_async_client_reads_the_empty_thumbnail_url(stack: EmbeddedStack) -> None:
    """The async client gets the same `url: ""` for a thumbnail of an asset without a url."""
    async with AsyncHub(stack.gateway_url, api_key=stack.admin_api_key) as hub:
        bare = await hub.assets.create("bare")
        box = await hub.collections.create("thumbs-async")
        await hub.collections.assets.add(box.id, [bare.id])
        thumbnail = (await hub.collections.retrieve(box.id)).thumbnail
        assert thumbnail is not None
        assert (thumbnail.assetId, thumbnail.url) == (bare.id, "")

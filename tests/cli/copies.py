"""Reading back what a user owns at a hub, in a shape two hubs' copies can be compared in."""

from __future__ import annotations

from typing import Any

from collections_hub.client import Hub
from collections_hub.transfer.items import linked_items


def owned(url: str, key: str) -> dict[str, dict[str, Any]]:
    """The key's user's collections by title: details, item ids, thumbnail, visibility and shares."""
    result: dict[str, dict[str, Any]] = {}
    with Hub(url, api_key=key) as hub:
        me = str(hub.me().user_id)
        for c in hub.collections.list():
            if c.ownerId != me:
                continue
            details = hub.collections.details(c.id)
            items = linked_items(lambda cid=c.id: hub.history.list(cid), (c.assetCount, c.modelCount))
            users = hub.sharing.users(c.id)[1:]
            assert c.name not in result, f"{c.name} is there twice"
            result[c.name] = {
                "id": c.id,
                "description": details.description,
                "category": details.category,
                "tags": details.tags,
                "public": details.isPublic,
                "assets": sorted(items.assets),
                "models": sorted(items.models),
                "thumbnail": c.thumbnail.assetId if c.thumbnail else None,
                "users": sorted((u.email, u.user_role.name) for u in users),
                "groups": sorted(g.name for g in hub.sharing.groups(c.id)),
            }
    return result


def without_ids(library: dict[str, dict[str, Any]], *also: str) -> dict[str, dict[str, Any]]:
    """The same, collection ids (a copy always has new ones) and the `also` fields left out."""
    left_out = {"id", *also}
    return {title: {k: v for k, v in spec.items() if k not in left_out} for title, spec in library.items()}

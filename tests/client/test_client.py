"""The client against the real stack: every operation round-trips, typed, in the sync and async client."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from collections_hub.client import AsyncHub, BadRequest, Conflict, Credentials, Hub, NotFound
from collections_hub.stack import EmbeddedStack
from tests.client.waiting import wait_for
from tests.support import unique_email


def test_sync_client_round_trips_every_operation(stack: EmbeddedStack) -> None:
    """Admin, registry, collections (A, B, C), links, sharing, history, auth schemes: each answers typed."""
    tag = uuid.uuid4().hex[:8]
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as admin:
        owner = admin.admin.create_user(unique_email("owner"), first_name="Olga")
        friend = admin.admin.create_user(unique_email("friend"))
        assert admin.admin.get_user(owner.id).email == owner.email
        key = admin.admin.create_key(owner.id, "client-test")
        spare = admin.admin.create_key(owner.id)
        assert admin.admin.revoke_key(spare.id).revoked
        group = admin.admin.create_group(f"g-{tag}", "a group")
        assert [u.id for u in admin.admin.add_group_members(group.id, [friend.id]).users] == [friend.id]
        assert group.id in {g.id for g in admin.admin.groups()}
        admin.admin.create_namespace(f"ns-{tag}")
        project = admin.admin.create_project(f"ns-{tag}", "proj")
        assert admin.admin.set_project_role(f"ns-{tag}", "proj", owner.id, "editor").role == "editor"

    with Hub(stack.gateway_url, credentials=Credentials(f"{key.key_id}:{key.secret}", "basic")) as hub:
        assert hub.me().user_id == owner.id
        asset = hub.assets.create("pic", url="https://example.com/p.png", id=f"a-{tag}")
        model = hub.models.create("net")
        assert hub.assets.retrieve(asset.id).url == "https://example.com/p.png"
        with pytest.raises(Conflict):
            hub.assets.create("again", id=asset.id)

        made = [hub.collections.create(f"c{i}-{tag}") for i in range(3)]
        listed = [c.id for c in hub.collections.list(page_size=1) if c.id in {m.id for m in made}]
        assert listed == [c.id for c in made]  # three pages followed lazily, in creation order
        box = made[0]
        assert hub.collections.assets.add(box.id, [asset.id]).thumbnail.assetId == asset.id  # type: ignore[union-attr]
        assert hub.collections.models.add(box.id, [model.id]).itemCount == 2
        assert hub.collections.update(box.id, name=f"renamed-{tag}").name == f"renamed-{tag}"
        details = hub.collections.update_details(box.id, description="d", category="cat", tags=["x"])
        assert (details.title, details.category, details.tags) == (f"renamed-{tag}", "cat", ["x"])
        assert box.id in hub.collections.ids()
        b = hub.collections.create_detailed(f"b-{tag}", description="bd", category="bc", tags=["t"])
        assert hub.collections.details(b.id).original_title == f"b-{tag}"

        assert hub.sharing.set_public(box.id, True).is_public
        with pytest.raises(BadRequest, match="public already"):
            hub.sharing.set_public(box.id, True)
        hub.sharing.add_user(box.id, friend.id)
        guests = hub.sharing.invite_guest(box.id, unique_email("guest"))
        assert [u.user_role.name for u in guests] == ["user", "user", "guest"]
        hub.sharing.add_group(box.id, group.id)
        assert [g.name for g in hub.sharing.groups(box.id)] == [f"g-{tag}"]
        assert friend.email in {u.email for u in hub.sharing.users(box.id, everyone=True)}
        hub.sharing.remove_user(box.id, friend.id)
        hub.sharing.remove_group(box.id, group.id)
        hub.sharing.set_public(box.id, False)
        hub.collections.models.remove(box.id, [model.id])
        assert hub.collections.assets.remove(box.id, [asset.id]).itemCount == 0

        a = hub.project(f"ns-{tag}", "proj")
        assert a.create("nodes", members=["n1"], tags=["k"]).projectId == project.id
        assert a.add_members("nodes", ["n2", "n3"]) == 2
        assert a.remove_members("nodes", ["n1"]) == 1
        assert a.update("nodes", description="nd").members == ["n2", "n3"]
        assert [c.name for c in a.list(page_size=1)] == ["nodes"]
        assert a.retrieve("nodes").description == "nd"
        a.delete("nodes")
        with pytest.raises(NotFound):
            a.retrieve("nodes")

        entries = wait_for(lambda: list(hub.history.list(box.id, page_size=2)), lambda e: len(e) >= 12)
        assert entries[-1].event_type == "COLLECTION_CREATED"
        assert [e.id for e in hub.history.list_v2(box.id)] == [e.id for e in entries]
        hub.collections.delete(box.id)
        with pytest.raises(NotFound):
            hub.collections.retrieve(box.id)
        hub.models.delete(model.id)
        with pytest.raises(NotFound):
            hub.models.retrieve(model.id)

    with Hub(stack.gateway_url, credentials=Credentials(key.key, "bearer")) as bearer:
        assert bearer.me().user_id == owner.id


async def test_async_client_follows_pages_and_links(stack: EmbeddedStack) -> None:
    """AsyncHub: create, iterate pages lazily, link 60 assets in 49-id calls, read history, delete."""
    tag = uuid.uuid4().hex[:8]
    async with AsyncHub(stack.gateway_url, api_key=stack.admin_api_key) as admin:
        user = await admin.admin.create_user(unique_email("async"))
        key = (await admin.admin.create_key(user.id)).key
    async with AsyncHub(stack.gateway_url, api_key=key) as hub:
        made = [(await hub.collections.create(f"a{i}-{tag}")).id for i in range(3)]
        assert [c.id async for c in hub.collections.list(page_size=2)] == made
        assets = [(await hub.assets.create(f"x{i}", id=f"{tag}-{i}")).id for i in range(60)]
        assert (await hub.collections.assets.add(made[0], assets)).assetCount == 60
        await hub.collections.delete(made[1])
        assert [c.id async for c in hub.collections.list()] == [made[0], made[2]]
        for _ in range(50):  # history is recorded a moment after the change
            history = [e.event_type async for e in hub.history.list(made[0], page_size=1)]
            if history.count("ASSET_LINKED") >= 2 and "COLLECTION_CREATED" in history:
                break
            await asyncio.sleep(0.2)
        assert history[-1] == "COLLECTION_CREATED"
        assert history.count("ASSET_LINKED") == 2  # 49 + 11 ids: two calls, two events

"""Libraries to copy: users with collections, assets, models, shares, made through the client."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from collections_hub.cli import main
from collections_hub.client import Hub
from collections_hub.client.models import ApiKeyCreated, UserPublic
from collections_hub.stack import EmbeddedStack
from tests.client.waiting import wait_for
from tests.support import unique_email


@dataclass
class Library:
    """What was made at the source, to compare the copy with."""

    owner: UserPublic
    key: ApiKeyCreated
    collections: dict[str, dict[str, object]] = field(default_factory=dict)  # by title
    friend: str = ""
    guest: str = ""
    group: str = ""


def new_user(stack: EmbeddedStack, prefix: str) -> tuple[UserPublic, ApiKeyCreated]:
    """A user with a key on `stack`."""
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as admin:
        user = admin.admin.create_user(unique_email(prefix))
        return user, admin.admin.create_key(user.id)


def seed(stack: EmbeddedStack, count: int, *, items: int = 3, with_models: bool = False) -> Library:
    """`count` collections with descriptions, categories, tags and `items` assets (and models); the
    first is public and shared with a user, a guest and a group; the second has a thumbnail."""
    tag = uuid.uuid4().hex[:6]
    owner, key = new_user(stack, "owner")
    library = Library(owner, key)
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as admin:
        friend = admin.admin.create_user(unique_email("friend"), first_name="Fred")
        group = admin.admin.create_group(f"team-{tag}", "the team")
        admin.admin.add_group_members(group.id, [friend.id])
    library.friend, library.group, library.guest = friend.email, group.name, unique_email("guest")
    with Hub(stack.gateway_url, api_key=key.key) as hub:
        for n in range(count):
            title = f"box {n} {tag}"
            made = hub.collections.create_detailed(
                title, description=f"about {n}", category="cat", tags=[f"t{n}"]
            )
            assets = [
                hub.assets.create(f"pic {n}.{i}", url=f"https://x.test/{tag}/{n}/{i}").id
                for i in range(items)
            ]
            hub.collections.assets.add(made.id, assets)
            models = []
            if with_models:
                models = [hub.models.create(f"net {n}.{i}").id for i in range(2)]
                hub.collections.models.add(made.id, models)
            if n == 1:
                hub.collections.update(made.id, thumbnail_asset_id=assets[-1])
            if n == 0:
                hub.sharing.set_public(made.id, True)
                hub.sharing.add_user(made.id, friend.id)
                hub.sharing.invite_guest(made.id, library.guest)
                hub.sharing.add_group(made.id, group.id)
            library.collections[title] = {"id": made.id, "assets": assets, "models": models}
        links = 2 if with_models else 1
        for spec in library.collections.values():  # history lags its changes by a moment
            wait_for(
                lambda cid=spec["id"]: [
                    e for e in hub.history.list(str(cid)) if e.event_type in ("ASSET_LINKED", "MODEL_LINKED")
                ],
                lambda linked: len(linked) >= links,
            )
    return library


def personal_library(stack: EmbeddedStack) -> tuple[UserPublic, ApiKeyCreated]:
    """A user whose personal project holds two collections: "scored" (node members and a decimal in its
    metadata) and "plain"."""
    owner, key = new_user(stack, "owner")
    with Hub(stack.gateway_url, api_key=key.key) as hub:
        personal = hub.project("personal", f"user-{owner.id}")
        personal.create("scored", members=["node-1", "node-2"], metadata={"score": 0.5})
        personal.create("plain", description="nothing in it")
    return owner, key


def export_user(stack: EmbeddedStack, user_id: int, path: Path) -> None:
    """`collections-hub export --user` into `path`, with the admin key."""
    args = ["--url", stack.gateway_url, "--api-key", stack.admin_api_key, "--json"]
    assert main(["export", "--user", str(user_id), "-o", str(path), *args]) == 0

"""Use cases of user groups: create, list, show, and change membership (admin API)."""

from __future__ import annotations

from access_service.repository import AccessRepository
from access_service.schemas import GroupCreate, GroupMembersAdd, GroupPublic, GroupsPublic, int_id
from access_service.service import user_v2
from shared.catalog_directory import CollectionDirectory, VisibilityFact
from shared.clock import timestamp
from shared.errors import Invalid, NotFound
from shared.event_types import GroupChanged, event
from shared.mongo import Document


def group_not_found(raw: object) -> NotFound:
    """The documented 404 for a user group id that names no group."""
    return NotFound(f"Couldn't find UserGroup with 'id'={raw}")


def user_not_found(raw: object) -> NotFound:
    """The documented 404 for a user id that names no user."""
    return NotFound(f"Couldn't find User with 'id'={raw}")


async def render_groups(repository: AccessRepository, groups: list[Document]) -> list[GroupPublic]:
    """Groups with their members, by id; members by id too (one read for all members)."""
    members = await repository.users_in_groups([group["_id"] for group in groups])
    members.sort(key=lambda user: int(user["_id"]))
    return [
        GroupPublic(
            id=group["_id"],
            name=group["name"],
            description=group.get("description"),
            created_at=group["created_at"],
            updated_at=group["updated_at"],
            users=[user_v2(user) for user in members if group["_id"] in user.get("group_ids", [])],
        )
        for group in sorted(groups, key=lambda group: int(group["_id"]))
    ]


class GroupService:
    """User groups; a group's membership lives in its members' user documents."""

    def __init__(self, repository: AccessRepository, collections: CollectionDirectory) -> None:
        self.repository = repository
        self.collections = collections

    async def create(self, data: GroupCreate, *, actor: int | None) -> GroupPublic:
        """A new, empty group with the next integer id."""
        group_id = await self.repository.next_id("groups")
        now = timestamp()
        group = {
            "_id": group_id,
            "name": data.name,
            "description": data.description,
            "created_at": now,
            "updated_at": now,
        }
        created = event("access.group.created", GroupChanged(name=data.name), actor=actor, group_id=group_id)
        await self.repository.insert_group(group, created)
        return (await render_groups(self.repository, [group]))[0]

    async def list_groups(self) -> GroupsPublic:
        """Every group with its members."""
        return GroupsPublic(
            user_groups=await render_groups(self.repository, await self.repository.all_groups())
        )

    async def get(self, raw_group_id: str) -> GroupPublic:
        """One group with its members; 404 when there is none."""
        group = await self._group(raw_group_id)
        return (await render_groups(self.repository, [group]))[0]

    async def add_members(
        self, raw_group_id: str, data: GroupMembersAdd, *, actor: int | None
    ) -> GroupPublic:
        """Put users into the group; all must exist (404 naming the first missing one, nothing added).

        Users already in the group are left as they are: adding is idempotent.
        """
        group = await self._group(raw_group_id)
        wanted = list(dict.fromkeys(data.user_ids))
        found = {user["_id"] for user in await self.repository.users_by_ids(wanted)}
        if missing := [user_id for user_id in wanted if user_id not in found]:
            raise user_not_found(missing[0])
        for user_id in wanted:
            added = event(
                "access.group.member_added",
                GroupChanged(name=group["name"]),
                actor=actor,
                group_id=group["_id"],
                user_id=user_id,
            )
            if version := await self.repository.add_group_member(group["_id"], user_id, added):
                await self.collections.tell_facts([_member_fact(group["_id"], user_id, True, version)])
        return (await render_groups(self.repository, [group]))[0]

    async def remove_member(self, raw_group_id: str, raw_user_id: str, *, actor: int | None) -> GroupPublic:
        """Take a user out of the group; 404 for an unknown user, 400 when it is not a member."""
        group = await self._group(raw_group_id)
        user_id = int_id(raw_user_id)
        if user_id is None or await self.repository.user_by_id(user_id) is None:
            raise user_not_found(raw_user_id)
        removed = event(
            "access.group.member_removed",
            GroupChanged(name=group["name"]),
            actor=actor,
            group_id=group["_id"],
            user_id=user_id,
        )
        version = await self.repository.remove_group_member(group["_id"], user_id, removed)
        if not version:
            raise Invalid("User is not a member of this UserGroup")
        await self.collections.tell_facts([_member_fact(group["_id"], user_id, False, version)])
        return (await render_groups(self.repository, [group]))[0]

    async def _group(self, raw_group_id: str) -> Document:
        group_id = int_id(raw_group_id)
        group = None if group_id is None else await self.repository.group_by_id(group_id)
        if group is None:
            raise group_not_found(raw_group_id)
        return group


def _member_fact(group_id: int, user_id: int, on: bool, version: int) -> VisibilityFact:
    """What catalog's lists need to know: the user sees (or no longer sees) what the group sees."""
    return VisibilityFact(kind="member", on=on, version=version, group_id=group_id, user_id=user_id)

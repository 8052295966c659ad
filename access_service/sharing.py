"""Use cases of dialect B's access endpoints: visibility, shared users, guests and shared groups.

Every call first finds the collection in catalog_service and decides what the caller may do with it:
one that may not read it gets `404 collection not found` (never a hint that it exists); one that may
read it but is neither its owner nor an admin gets `403` (docs/access.md).
"""

from __future__ import annotations

from access_service.decisions import Decisions
from access_service.groups import group_not_found, render_groups, user_not_found
from access_service.ports import Mailer, MailMessage
from access_service.repository import AccessRepository
from access_service.schemas import GroupsPublic, GuestInvite, OkV2, UsersV2, VisibilityV2, int_id
from access_service.service import new_user, user_v2
from shared.authz import ALL, Permissions
from shared.catalog_directory import CollectionDirectory, CollectionInfo, VisibilityFact
from shared.clock import timestamp
from shared.errors import Conflict, Forbidden, Invalid, NotFound
from shared.event_types import GuestInvited, ShareChanged, VisibilityChanged, event
from shared.mongo import Document
from shared.principal import Principal
from shared.requests import validate

# Longer than any id catalog_service issues; a longer path segment names no collection.
MAX_COLLECTION_ID = 128


def collection_not_found() -> NotFound:
    """Dialect B's answer for a collection that does not exist or that the caller may not see."""
    return NotFound("collection not found")


class CollectionSharing:
    """Who may see a collection: public/private, shared users, guests and shared groups."""

    def __init__(
        self,
        repository: AccessRepository,
        decisions: Decisions,
        collections: CollectionDirectory,
        mailer: Mailer,
    ) -> None:
        self.repository = repository
        self.decisions = decisions
        self.collections = collections
        self.mailer = mailer

    # --- visibility -------------------------------------------------------------------------------------

    async def set_public(self, principal: Principal, collection_id: str, is_public: bool) -> VisibilityV2:
        """Make the collection public or private; 400 when it already is."""
        collection = await self._shareable(principal, collection_id)
        now = timestamp()
        await self.repository.ensure_access(collection.collection_id, now)
        changed = event(
            "access.collection.made_public" if is_public else "access.collection.made_private",
            VisibilityChanged(is_public=is_public),
            actor=principal.user_id,
            collection_id=collection.collection_id,
        )
        version = await self.repository.set_public(collection.collection_id, is_public, now, changed)
        if not version:
            raise Invalid(f"Collection is {'public' if is_public else 'private'} already")
        # catalog's copy of the flag (B's `isPublic`) is current before this answers; the event is the
        # backstop should catalog not answer now (it applies versions in order either way).
        await self.collections.show_visibility(collection.collection_id, is_public, version)
        return VisibilityV2(is_public=is_public)

    # --- users ------------------------------------------------------------------------------------------

    async def users(self, principal: Principal, collection_id: str) -> UsersV2:
        """The owner, then the users and guests it is shared with, in the order they were added."""
        collection = await self._shareable(principal, collection_id)
        return await self._users(collection)

    async def all_users(self, principal: Principal, collection_id: str) -> UsersV2:
        """Everyone allowed to see it: owner, shared users and guests, members of shared groups,
        holders of a role on its project, and every admin; by id."""
        collection = await self._shareable(principal, collection_id)
        access = await self.repository.access_of(collection.collection_id) or {}
        users = await self.repository.users_allowed_on(
            [collection.owner_id, *access.get("user_ids", [])],
            access.get("group_ids", []),
            collection.project_id,
        )
        users.sort(key=lambda user: int(user["_id"]))
        return UsersV2(users=[user_v2(user) for user in users])

    async def add_user(self, principal: Principal, collection_id: str, raw_user_id: str) -> OkV2:
        """Share the collection with a user; 400 when it already is (the owner always is)."""
        collection = await self._shareable(principal, collection_id)
        user_id = await self._existing_user(raw_user_id)
        now = timestamp()
        await self.repository.ensure_access(collection.collection_id, now)
        linked = event(
            "access.collection.user_linked",
            ShareChanged(),
            actor=principal.user_id,
            collection_id=collection.collection_id,
            user_id=user_id,
        )
        version = 0
        if user_id != collection.owner_id:
            version = await self.repository.link(collection.collection_id, "user_ids", user_id, now, linked)
        if not version:
            raise Invalid("User is already member of this Collection")
        await self._tell(collection, version, True, user_id=user_id)
        return OkV2(ok=f"User {user_id} was added succesfully")

    async def remove_user(self, principal: Principal, collection_id: str, raw_user_id: str) -> OkV2:
        """Stop sharing the collection with a user (or guest); 400 when it is not shared with it."""
        collection = await self._shareable(principal, collection_id)
        user_id = await self._existing_user(raw_user_id)
        if user_id == collection.owner_id:
            raise Invalid("The owner cannot be removed from this Collection")
        unlinked = event(
            "access.collection.user_unlinked",
            ShareChanged(),
            actor=principal.user_id,
            collection_id=collection.collection_id,
            user_id=user_id,
        )
        version = await self.repository.unlink(
            collection.collection_id, "user_ids", user_id, timestamp(), unlinked
        )
        if not version:
            raise Invalid("User is not a member of this Collection")
        await self._tell(collection, version, False, user_id=user_id)
        return OkV2(ok=f"User {user_id} was removed succesfully")

    async def invite_guest(self, principal: Principal, collection_id: str, data: GuestInvite) -> UsersV2:
        """Create a guest user for a new e-mail, share the collection with it and mail it an invitation.

        400 when the e-mail belongs to a user already. The guest is marked `invite_pending` until the
        share and the mail are done, so a retry after a failure part-way finishes the same invitation.
        """
        collection = await self._shareable(principal, collection_id)
        email = str(data.email)
        guest = await self.repository.user_by_email(email)
        if guest is None:
            guest = await self._create_guest(email, collection.collection_id, actor=principal.user_id)
        elif guest.get("invite_pending") != collection.collection_id:
            raise Invalid("User already exists")
        now = timestamp()
        await self.repository.ensure_access(collection.collection_id, now)
        invited = event(
            "access.collection.guest_invited",
            GuestInvited(email=guest["email"]),
            actor=principal.user_id,
            collection_id=collection.collection_id,
            user_id=guest["_id"],
        )
        if version := await self.repository.link(
            collection.collection_id, "user_ids", guest["_id"], now, invited
        ):
            await self._tell(collection, version, True, user_id=guest["_id"])
        await self.mailer.send(invitation(guest, collection, principal))
        await self.repository.set_invite_pending(guest["_id"], None)
        return await self._users(collection)

    async def _create_guest(self, email: str, collection_id: str, *, actor: int) -> Document:
        user_id = await self.repository.next_id("users")
        guest, created = new_user(user_id, email, "guest", actor=actor)
        guest["invite_pending"] = collection_id
        try:
            await self.repository.insert_user(guest, created)
        except Conflict as exc:  # the same e-mail was taken between our read and our insert
            raise Invalid("User already exists") from exc
        return guest

    async def _users(self, collection: CollectionInfo) -> UsersV2:
        access = await self.repository.access_of(collection.collection_id) or {}
        ordered = [collection.owner_id, *access.get("user_ids", [])]
        found = {user["_id"]: user for user in await self.repository.users_by_ids(ordered)}
        return UsersV2(users=[user_v2(found[user_id]) for user_id in ordered if user_id in found])

    async def _existing_user(self, raw_user_id: str) -> int:
        user_id = int_id(raw_user_id)
        if user_id is None or await self.repository.user_by_id(user_id) is None:
            raise user_not_found(raw_user_id)
        return user_id

    # --- user groups ------------------------------------------------------------------------------------

    async def user_groups(self, principal: Principal, collection_id: str) -> GroupsPublic:
        """The groups the collection is shared with, each with its members."""
        collection = await self._shareable(principal, collection_id)
        access = await self.repository.access_of(collection.collection_id) or {}
        groups = await self.repository.groups_by_ids(access.get("group_ids", []))
        return GroupsPublic(user_groups=await render_groups(self.repository, groups))

    async def add_group(self, principal: Principal, collection_id: str, raw_group_id: str) -> OkV2:
        """Share the collection with a user group; 400 when it already is."""
        collection = await self._shareable(principal, collection_id)
        group_id = await self._existing_group(raw_group_id)
        now = timestamp()
        await self.repository.ensure_access(collection.collection_id, now)
        linked = event(
            "access.collection.group_linked",
            ShareChanged(),
            actor=principal.user_id,
            collection_id=collection.collection_id,
            group_id=group_id,
        )
        version = await self.repository.link(collection.collection_id, "group_ids", group_id, now, linked)
        if not version:
            raise Invalid(f"User group with id {group_id} is already part of this Collection")
        await self._tell(collection, version, True, group_id=group_id)
        return OkV2(ok=f"User group {group_id} was added succesfully")

    async def remove_group(self, principal: Principal, collection_id: str, raw_group_id: str) -> OkV2:
        """Stop sharing the collection with a user group; 400 when it is not shared with it."""
        collection = await self._shareable(principal, collection_id)
        group_id = await self._existing_group(raw_group_id)
        unlinked = event(
            "access.collection.group_unlinked",
            ShareChanged(),
            actor=principal.user_id,
            collection_id=collection.collection_id,
            group_id=group_id,
        )
        version = await self.repository.unlink(
            collection.collection_id, "group_ids", group_id, timestamp(), unlinked
        )
        if not version:
            raise Invalid(f"User group with id {group_id} is not part of this Collection")
        await self._tell(collection, version, False, group_id=group_id)
        return OkV2(ok=f"User group {group_id} was removed succesfully")

    async def _existing_group(self, raw_group_id: str) -> int:
        group_id = int_id(raw_group_id)
        if group_id is None or await self.repository.group_by_id(group_id) is None:
            raise group_not_found(raw_group_id)
        return group_id

    async def _tell(
        self,
        collection: CollectionInfo,
        version: int,
        on: bool,
        *,
        user_id: int | None = None,
        group_id: int | None = None,
    ) -> None:
        """Catalog's lists follow a share before it is answered (the event is the backstop)."""
        fact = VisibilityFact(
            kind="share",
            on=on,
            version=version,
            collection_id=collection.collection_id,
            user_id=user_id,
            group_id=group_id,
        )
        await self.collections.tell_facts([fact])

    # --- the gate ---------------------------------------------------------------------------------------

    async def _shareable(self, principal: Principal, collection_id: str) -> CollectionInfo:
        """The collection, if the caller may manage who sees it: 404 when it may not even see it."""
        collection, permissions = await self._visible(principal, collection_id)
        if not permissions.share:
            raise Forbidden("only the owner or an admin may change who can see this collection")
        return collection

    async def _visible(self, principal: Principal, collection_id: str) -> tuple[CollectionInfo, Permissions]:
        if not collection_id or len(collection_id) > MAX_COLLECTION_ID:
            raise collection_not_found()
        collection = await self.collections.collection(collection_id)
        if collection is None:
            raise collection_not_found()
        if principal.is_admin or principal.user_id == collection.owner_id:
            return collection, ALL
        permissions = await self.decisions.permissions(principal.user_id, collection.ref)
        if not permissions.read:
            raise collection_not_found()
        return collection, permissions

    async def invite_guest_body(self, principal: Principal, collection_id: str, body: object) -> UsersV2:
        """`invite_guest` for a raw body: 404/403 on the collection come before 422 on the body (doc 002)."""
        # invite_guest looks the collection up again: one more internal call, on a rare request, rather
        # than a second copy of the invitation steps.
        await self._shareable(principal, collection_id)
        return await self.invite_guest(principal, collection_id, validate(GuestInvite, body))


def invitation(guest: Document, collection: CollectionInfo, inviter: Principal) -> MailMessage:
    """The invitation a new guest receives; its id makes a resend of the same invitation harmless."""
    return MailMessage(
        id=f"guest-invitation:{collection.collection_id}:{guest['_id']}",
        to=guest["email"],
        subject=f"You have been invited to the collection {collection.name or collection.collection_id}",
        body=(
            f'{inviter.email} has shared the collection "{collection.name or collection.collection_id}" '
            f"(id {collection.collection_id}) with you as a guest."
        ),
    )

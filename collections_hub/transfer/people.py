"""Users and groups a share names, found or created at the destination by e-mail or group name.

The API has no look-up of a user by e-mail, so a user is created (admin API) when the e-mail is free,
or invited as a guest; an e-mail that already has an account here cannot be resolved to its id and the
share is reported as not restored. Groups are matched by name (the admin API lists them).

`counted(kind, outcome)` hears each user and group once: "created" (an account made or a guest invited
here), "adopted" (a group of that name was here), "failed" (not resolved, so not shared with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from collections_hub.client import Hub
from collections_hub.client.errors import BadRequest, Conflict


@dataclass
class People:
    """Resolves e-mails and group names at the destination, remembering what it learned."""

    dest: Hub
    admin: Hub | None
    users: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] | None = None
    unresolved: list[str] = field(default_factory=list)
    counted: Callable[[str, str], None] = lambda _kind, _outcome: None
    refused: dict[str, str] = field(default_factory=dict)  # e-mail or group name -> why it failed
    counted_groups: set[str] = field(default_factory=set)

    def share_user(
        self, collection_id: str, email: str, role: str, first: str | None, last: str | None
    ) -> bool:
        """Share the collection with the user holding `email` here; False when that cannot be done."""
        if email in self.refused:
            return self._unresolved(self.refused[email])
        user_id = self.users.get(email)
        if user_id is None and (role == "guest" or self.admin is None):
            try:
                for user in self.dest.sharing.invite_guest(collection_id, email):
                    self.users[user.email] = user.id
            except BadRequest as exc:
                return self._refuse("users", email, f"{exc.message}; the API has no look-up by e-mail")
            self.counted("users", "created")
            return True
        if user_id is None:
            assert self.admin is not None  # the branch above took every case without it
            try:
                created = self.admin.admin.create_user(email, role=role, first_name=first, last_name=last)
            except Conflict:
                return self._refuse("users", email, "has an account here; the API has no look-up by e-mail")
            user_id = self.users[email] = created.id
            self.counted("users", "created")
        try:
            self.dest.sharing.add_user(collection_id, user_id)
        except BadRequest as exc:
            if "already" not in exc.message:
                raise
        return True

    def share_group(self, collection_id: str, name: str, description: str | None, emails: list[str]) -> bool:
        """Share with the group of that name here, creating it (with the members we know) when missing."""
        if name in self.refused:
            return self._unresolved(self.refused[name])
        if self.admin is None:
            return self._refuse("groups", name, "needs the admin key")
        if self.groups is None:
            self.groups = {g.name: g.id for g in self.admin.admin.groups()}
        group_id = self.groups.get(name)
        if group_id is None:
            group_id = self.groups[name] = self.admin.admin.create_group(name, description).id
            self.counted_groups.add(name)
            self.counted("groups", "created")
            members = [self.users[e] for e in emails if e in self.users]
            if members:
                self.admin.admin.add_group_members(group_id, members)
        elif name not in self.counted_groups:
            self.counted_groups.add(name)
            self.counted("groups", "adopted")
        try:
            self.dest.sharing.add_group(collection_id, group_id)
        except BadRequest as exc:
            if "already" not in exc.message:
                raise
        return True

    def _refuse(self, kind: str, name: str, why: str) -> bool:
        """The first failure for this user or group: counted once, remembered, and reported."""
        self.counted(kind, "failed")
        self.refused[name] = f"{kind[:-1]} {name}: {why}"
        return self._unresolved(self.refused[name])

    def _unresolved(self, why: str) -> bool:
        self.unresolved.append(why)
        return False

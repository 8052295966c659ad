"""Use cases of access_service: users, API keys and resolving callers to principals."""

from __future__ import annotations

import contextlib
import logging

from access_service import keys
from access_service.repository import USER_ARRAYS, VERSION_FIELD, AccessRepository
from access_service.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    KeyCredentials,
    UserCreate,
    UserPublic,
    UserRole,
    UserV2,
)
from shared.clock import timestamp
from shared.errors import Conflict, NotFound, Unauthorized
from shared.event_types import ApiKeyChanged, UserCreated, event
from shared.events import EventEnvelope
from shared.mongo import Document
from shared.principal import Principal

log = logging.getLogger(__name__)

BOOTSTRAP_ADMIN_EMAIL = "admin@localhost"


def user_public(doc: Document) -> UserPublic:
    """The admin API's view of a stored user."""
    return UserPublic(
        id=doc["_id"],
        email=doc["email"],
        first_name=doc.get("first_name"),
        last_name=doc.get("last_name"),
        role=doc["role"],
        created_at=doc["created_at"],
    )


def new_user(
    user_id: int,
    email: str,
    role: str,
    *,
    first_name: str | None = None,
    last_name: str | None = None,
    actor: int | None,
) -> tuple[Document, EventEnvelope]:
    """A new user document and its `access.user.created` event.

    Its arrays are created empty here: `$addToSet` on a missing array does nothing on nx-27017.
    """
    now = timestamp()
    user: Document = {
        "_id": user_id,
        "email": email,
        "email_key": email.lower(),
        "first_name": first_name,
        "last_name": last_name,
        "role": role,
        **{array: [] for array in USER_ARRAYS},
        VERSION_FIELD: 0,
        "created_at": now,
        "updated_at": now,
    }
    created = event(
        "access.user.created",
        UserCreated(email=email, role=role, first_name=first_name, last_name=last_name),
        actor=actor,
        user_id=user_id,
    )
    return user, created


def user_v2(doc: Document) -> UserV2:
    """Dialect B's view of a stored user."""
    return UserV2(
        id=doc["_id"],
        first_name=doc.get("first_name"),
        last_name=doc.get("last_name"),
        email=doc["email"],
        user_role=UserRole(name=doc["role"]),
    )


def principal_of(user: Document, *, auth: str, key_id: str | None = None) -> Principal:
    """The principal a stored user authenticates as."""
    return Principal.model_validate(
        {
            "user_id": user["_id"],
            "email": user["email"],
            "role": user["role"],
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
            "auth": auth,
            "key_id": key_id,
        }
    )


class AccessService:
    """Users, API keys and principals."""

    def __init__(self, repository: AccessRepository) -> None:
        self.repository = repository

    async def create_user(self, data: UserCreate, *, actor: int | None) -> UserPublic:
        """Create a user with the next integer id; 409 when the e-mail is taken."""
        return await self._insert_user(
            str(data.email), data.role, first_name=data.first_name, last_name=data.last_name, actor=actor
        )

    async def _insert_user(
        self, email: str, role: str, *, first_name: str | None, last_name: str | None, actor: int | None
    ) -> UserPublic:
        user_id = await self.repository.next_id("users")
        user, created = new_user(
            user_id, email, role, first_name=first_name, last_name=last_name, actor=actor
        )
        await self.repository.insert_user(user, created)
        return user_public(user)

    async def get_user(self, user_id: int) -> UserPublic:
        """One user; 404 when there is none."""
        user = await self.repository.user_by_id(user_id)
        if user is None:
            raise NotFound(f"Couldn't find User with 'id'={user_id}")
        return user_public(user)

    async def create_api_key(self, user_id: int, data: ApiKeyCreate, *, actor: int | None) -> ApiKeyCreated:
        """Issue a key for a user; the secret is returned here once and stored only as a hash."""
        if await self.repository.user_by_id(user_id) is None:
            raise NotFound(f"Couldn't find User with 'id'={user_id}")
        key_id, secret = keys.new_key()
        now = timestamp()
        created = event(
            "access.api_key.created",
            ApiKeyChanged(name=data.name),
            actor=actor,
            user_id=user_id,
            key_id=key_id,
        )
        await self.repository.insert_api_key(
            {
                "_id": key_id,
                "user_id": user_id,
                "name": data.name,
                "secret_sha256": keys.hash_secret(secret),
                "created_at": now,
                "revoked_at": None,
            },
            created,
        )
        return ApiKeyCreated(
            id=key_id,
            key_id=key_id,
            key=keys.join_key(key_id, secret),
            secret=secret,
            name=data.name,
            user_id=user_id,
            created_at=now,
        )

    async def revoke_api_key(self, key_id: str, *, actor: int | None) -> None:
        """Revoke a key; 404 when there is no such active key."""
        revoked = event("access.api_key.revoked", ApiKeyChanged(), actor=actor, key_id=key_id)
        if not await self.repository.revoke_api_key(key_id, timestamp(), revoked):
            raise NotFound(f"Couldn't find ApiKey with 'id'={key_id}")

    async def authenticate_key(self, credentials: KeyCredentials) -> Principal:
        """The principal behind an API key; 401 for an unknown, revoked or wrong key."""
        if credentials.key is not None:
            key_id, secret = keys.split_key(credentials.key)
        elif credentials.key_id is not None and credentials.secret is not None:
            key_id, secret = credentials.key_id, credentials.secret
        else:
            raise Unauthorized("invalid API key")
        stored = await self.repository.api_key(key_id)
        # Compare even when the key is unknown, so timing does not tell which key ids exist.
        expected = stored["secret_sha256"] if stored else keys.hash_secret(key_id)
        if (
            not keys.secret_matches(secret, expected)
            or stored is None
            or stored.get("revoked_at") is not None
        ):
            raise Unauthorized("invalid API key")
        user = await self.repository.user_by_id(stored["user_id"])
        if user is None:
            raise Unauthorized("invalid API key")
        return principal_of(user, auth="api_key", key_id=key_id)

    async def principal_for_user(self, user_id: int) -> Principal:
        """The principal of a JWT subject; 401 when no such user exists."""
        user = await self.repository.user_by_id(user_id)
        if user is None:
            raise Unauthorized("unknown user")
        return principal_of(user, auth="jwt")

    async def bootstrap_admin(self, api_key: str) -> None:
        """Make sure admin@localhost exists and holds exactly `api_key` (idempotent across restarts)."""
        admin = await self.repository.user_by_email(BOOTSTRAP_ADMIN_EMAIL)
        if admin is None:
            # `localhost` is not a public mail domain, so this user bypasses the API's e-mail check.
            with contextlib.suppress(Conflict):  # another replica created it first; read it below
                await self._insert_user(
                    BOOTSTRAP_ADMIN_EMAIL, "admin", first_name=None, last_name=None, actor=None
                )
            admin = await self.repository.user_by_email(BOOTSTRAP_ADMIN_EMAIL)
        if admin is None:
            raise RuntimeError("bootstrap admin could not be created")
        key_id, secret = keys.split_key(api_key)
        stored = await self.repository.api_key(key_id)
        secret_hash = keys.hash_secret(secret)
        if stored is not None and stored.get("revoked_at") is not None:
            # Revoked through the API (a leak?): a restart must not bring it back. A new key id does.
            log.error("HUB_ADMIN_API_KEY names key %s, which was revoked: it stays revoked", key_id)
            return
        if (
            stored is not None
            and stored.get("revoked_at") is None
            and stored["user_id"] == admin["_id"]
            and keys.secret_matches(secret, stored["secret_sha256"])
        ):
            return
        created = event(
            "access.api_key.created",
            ApiKeyChanged(name="bootstrap"),
            actor=None,
            user_id=admin["_id"],
            key_id=key_id,
        )
        await self.repository.upsert_api_key(
            key_id,
            {"user_id": admin["_id"], "name": "bootstrap", "secret_sha256": secret_hash},
            timestamp(),
            created,
        )

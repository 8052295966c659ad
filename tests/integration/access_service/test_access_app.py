"""access_service on its own: bootstrap, key storage, and events leaving through the outbox."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from access_service import keys
from access_service.app import create_app
from access_service.settings import AccessSettings
from shared.principal import Principal, internal_headers
from shared.web import DB_KEY
from tests.integration.access_service.conftest import quiesce
from tests.integration.conftest import INTERNAL_SECRET, AppRunner

ADMIN = Principal(user_id=0, email="root@example.com", role="admin", auth="api_key")


def settings(mongodb_url: str, nats_url: str, db_name: str, admin_key: str | None = None) -> AccessSettings:
    """Settings for a test instance on its own database."""
    return AccessSettings(
        mongodb_url=mongodb_url,
        nats_url=nats_url,
        mongo_database=db_name,
        mongo_write_concern="1",
        internal_secret=SecretStr(INTERNAL_SECRET),
        admin_api_key=SecretStr(admin_key) if admin_key else None,
    )


def as_admin() -> dict[str, str]:
    """Internal headers for a call the gateway makes on an admin's behalf."""
    return internal_headers(INTERNAL_SECRET, ADMIN, "it-request")


async def test_bootstrap_admin_is_idempotent_across_restarts(
    serve: AppRunner, mongodb_url: str, nats_url: str, db_name: str
) -> None:
    """Two starts with the same HUB_ADMIN_API_KEY leave one admin user holding one working key."""
    for _ in range(2):
        async with serve(
            create_app(settings(mongodb_url, nats_url, db_name, "operator-chosen-key"))
        ) as client:
            response = await client.post(
                "/internal/principals/by-api-key", json={"key": "operator-chosen-key"}, headers=as_admin()
            )
            assert response.status == 200
            assert (await response.json())["email"] == "admin@localhost"
            db = client.app[DB_KEY]
            assert await db["users"].count_documents({"email_key": "admin@localhost"}) == 1
            assert await db["api_keys"].count_documents({}) == 1
            await quiesce(client.app)


async def test_a_revoked_bootstrap_key_stays_revoked_across_restarts(
    serve: AppRunner, mongodb_url: str, nats_url: str, db_name: str
) -> None:
    """An admin revokes the operator's HUB_ADMIN_API_KEY (it leaked): a restart with the variable still
    set must not bring it back."""
    key_id, _ = keys.split_key("operator-chosen-key")
    for start in range(2):
        async with serve(
            create_app(settings(mongodb_url, nats_url, db_name, "operator-chosen-key"))
        ) as client:
            if start == 0:
                revoked = await client.delete(f"/admin/api-keys/{key_id}", headers=as_admin())
                assert revoked.status == 200
            response = await client.post(
                "/internal/principals/by-api-key", json={"key": "operator-chosen-key"}, headers=as_admin()
            )
            assert response.status == 401, start
            await quiesce(client.app)


async def test_keys_are_stored_as_hashes_only(
    serve: AppRunner, mongodb_url: str, nats_url: str, db_name: str
) -> None:
    """The database holds the SHA-256 of the secret, never the secret or the full key."""
    async with serve(create_app(settings(mongodb_url, nats_url, db_name))) as client:
        user = await (
            await client.post("/admin/users", json={"email": "h@example.com"}, headers=as_admin())
        ).json()
        issued = await (
            await client.post(f"/admin/users/{user['id']}/api-keys", json={}, headers=as_admin())
        ).json()
        stored = await client.app[DB_KEY]["api_keys"].find_one({"_id": issued["key_id"]})
        await quiesce(client.app)
    assert stored is not None
    flat = repr(stored)
    assert issued["secret"] not in flat
    assert issued["key"] not in flat
    assert len(stored["secret_sha256"]) == 64


async def test_outbox_is_emptied_once_events_are_published(
    serve: AppRunner, mongodb_url: str, nats_url: str, db_name: str
) -> None:
    """Writes leave their events in the document; the relay publishes them and then removes them."""
    async with serve(create_app(settings(mongodb_url, nats_url, db_name))) as client:
        mongo_db = client.app[DB_KEY]
        for n in range(5):
            response = await client.post(
                "/admin/users", json={"email": f"o{n}@example.com"}, headers=as_admin()
            )
            assert response.status == 201
        for _ in range(100):
            pending = await mongo_db["users"].count_documents({"outbox_count": {"$gt": 0}})
            if pending == 0:
                break
            await asyncio.sleep(0.05)
        assert pending == 0
        user = await mongo_db["users"].find_one({"email_key": "o0@example.com"})
        assert user is not None
        assert user["outbox"] == {}
        await quiesce(client.app)


async def test_unknown_user_ids_are_404_with_the_documented_message(
    serve: AppRunner, mongodb_url: str, nats_url: str, db_name: str
) -> None:
    """A user id that is not an integer, or names nobody, is a 404 naming the id."""
    async with serve(create_app(settings(mongodb_url, nats_url, db_name))) as client:
        for raw in ("abc", "424242"):
            response = await client.get(f"/admin/users/{raw}", headers=as_admin())
            assert response.status == 404
            assert await response.json() == {"error": f"Couldn't find User with 'id'={raw}"}
        await quiesce(client.app)

"""Read models catalog keeps from other services' events: a collection's public flag (dialect B shows it).

Each flag keeps the entity version of the event that set it (`visibility_version`); events reach this
consumer in the stream's order, but a redelivery (nak, ack timeout, a replica dying) can bring an older
one after a newer one, and it must not win.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import ValidationError

from catalog_service.repository import CatalogRepository
from shared.events import STREAM_NAME, EventEnvelope
from shared.tasks import raise_if_cancelling

log = logging.getLogger(__name__)

SUBJECT = "hub.access.collection.>"
VISIBILITY_TYPES = {"access.collection.made_public": True, "access.collection.made_private": False}


async def consume_visibility(js: JetStreamContext, repository: CatalogRepository, durable: str) -> None:
    """Apply made_public/made_private to the collection documents; replicas share one durable consumer."""
    sub = await js.pull_subscribe(
        SUBJECT,
        durable=durable,
        stream=STREAM_NAME,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_deliver=20, ack_wait=10),
    )
    try:
        await _apply_visibility(sub, repository)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _apply_visibility(sub: JetStreamContext.PullSubscription, repository: CatalogRepository) -> None:
    while True:
        raise_if_cancelling()
        try:
            messages = await sub.fetch(50, timeout=1)
        except (nats.errors.TimeoutError, TimeoutError):
            continue
        except nats.errors.Error as exc:
            log.warning("visibility consumer fetch failed: %s", exc)
            await asyncio.sleep(0.5)
            continue
        for message in messages:
            try:
                event = EventEnvelope.model_validate_json(message.data)
            except ValidationError:
                await message.term()  # not an event: history's dead-letter keeps a record of it
                continue
            is_public = VISIBILITY_TYPES.get(event.type)
            collection_id = event.ids.get("collection_id")
            if is_public is not None and isinstance(collection_id, str):
                try:
                    # Only a newer version than the one applied sets the flag: a redelivered or reordered
                    # older event changes nothing, so the flag converges on access_service's state.
                    await repository.apply_visibility(collection_id, is_public, event.entity_version)
                except Exception as exc:  # noqa: BLE001 - retry later rather than lose the change
                    log.warning("visibility update failed, will retry: %s", exc)
                    await message.nak(delay=1)
                    continue
            await message.ack()

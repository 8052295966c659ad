"""A typed Python client for collections-hub (sync `Hub`, asyncio `AsyncHub`), shaped like dialect C's SDK.

from collections_hub.client import Hub
with Hub("http://127.0.0.1:8080", api_key=KEY) as hub:
    box = hub.collections.create("holiday")
    beach = hub.assets.create("beach", url="https://example.com/beach.jpg")  # items are registered first
    hub.collections.assets.add(box.id, [beach.id])
    names = [c.name for c in hub.collections.list()]   # follows nextPaginationToken lazily
"""

from collections_hub.client.aio import AsyncHub
from collections_hub.client.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    Conflict,
    HubConnectionError,
    HubError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    UnexpectedAnswer,
    UnprocessableEntity,
)
from collections_hub.client.models import Collection, CollectionDetails, HistoryEntry, Item, ProjectCollection
from collections_hub.client.sync import Hub
from collections_hub.client.transport import Credentials, RetryPolicy

__all__ = [
    "ApiError",
    "AsyncHub",
    "AuthenticationError",
    "BadRequest",
    "Collection",
    "CollectionDetails",
    "Conflict",
    "Credentials",
    "HistoryEntry",
    "Hub",
    "HubConnectionError",
    "HubError",
    "InvalidInput",
    "Item",
    "NotFound",
    "PermissionDenied",
    "ProjectCollection",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "UnexpectedAnswer",
    "UnprocessableEntity",
]

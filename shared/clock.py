"""Time as the services store it: fixed-width ISO-8601 UTC strings with milliseconds.

The stand-in server stores a datetime written by `$set` as a string (see docs/mongo.md), so timestamps
are kept as strings everywhere: fixed width, so they sort and compare in time order on both servers, and
already in the form the public APIs answer with.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """Now in UTC at millisecond precision."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def stamp(moment: datetime) -> str:
    """`2023-11-27T09:42:47.269Z` for an aware datetime."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def timestamp() -> str:
    """The current time as a stored timestamp string."""
    return stamp(now())

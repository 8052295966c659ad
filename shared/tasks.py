"""Background loops that stop when asked, even if a library call swallowed their cancellation."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Re-raise a pending cancellation of the current task.

    pymongo's async cursor can swallow a task's cancellation on Python 3.11 (a `to_list()` cancelled at the
    wrong moment returns or raises something else); a loop that catches broad errors would then run on and
    hold shutdown forever. Every background loop calls this once per turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

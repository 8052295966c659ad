"""Where each service is: one or more base URLs (replicas), taken in turn."""

from __future__ import annotations

import itertools
from collections.abc import Iterator


class Upstream:
    """A service's replicas, taken round robin (in a cluster a Kubernetes Service does this)."""

    def __init__(self, urls: str) -> None:
        self.urls = [url.strip().rstrip("/") for url in urls.split(",") if url.strip()]
        if not self.urls:
            raise ValueError("an upstream needs at least one URL")
        self._turns: Iterator[str] = itertools.cycle(self.urls)

    def next(self) -> str:
        """The replica to send the next request to."""
        return next(self._turns)

"""Typed app keys for history_service's use cases (kept apart so handlers and app share them)."""

from __future__ import annotations

from aiohttp import web

from history_service.consumer import HistoryConsumer
from history_service.service import HistoryService

HISTORY_KEY = web.AppKey("history", HistoryService)
CONSUMER_KEY = web.AppKey("history_consumer", HistoryConsumer)

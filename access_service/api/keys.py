"""Typed app keys for access_service's use cases (kept apart so handlers and app share them)."""

from __future__ import annotations

from aiohttp import web

from access_service.service import AccessService

ACCESS_KEY = web.AppKey("access", AccessService)

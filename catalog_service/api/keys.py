"""Typed app keys shared by catalog_service's handlers and app factory."""

from __future__ import annotations

from aiohttp import web

from catalog_service.service import CatalogService

CATALOG_KEY = web.AppKey("catalog", CatalogService)

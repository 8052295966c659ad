"""Typed app keys shared by catalog_service's handlers and app factory."""

from __future__ import annotations

from aiohttp import web

from catalog_service.service import CatalogService
from catalog_service.view_verifier import ViewVerifier

CATALOG_KEY = web.AppKey("catalog", CatalogService)
VERIFIER_KEY = web.AppKey("view_verifier", ViewVerifier)

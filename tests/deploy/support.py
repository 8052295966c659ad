"""What the deploy tests share: where deploy/ is, the four services, and deploy/render.py as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# Kubernetes name (Deployment, Service, ...) -> the Python package it runs.
SERVICES = {
    "gateway": "gateway",
    "catalog-service": "catalog_service",
    "access-service": "access_service",
    "history-service": "history_service",
}


def load_render() -> ModuleType:
    """deploy/render.py as a module (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_render", DEPLOY / "render.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""The OpenAPI documents through the gateway: valid 3.1, complete, cached with an ETag, open to anyone."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from access_service.app import create_app as create_access
from access_service.settings import AccessSettings
from catalog_service.app import create_app as create_catalog
from catalog_service.settings import CatalogSettings
from gateway.routing import service_for
from history_service.app import create_app as create_history
from history_service.settings import HistorySettings
from tests.support import Hub

DIALECT_DOCUMENTS = ("a", "b", "c", "admin")
# Served by the services but never forwarded by the gateway.
NOT_PUBLIC = re.compile(r"^/(internal/|healthz$|readyz$|metrics$)")


async def fetch(hub: Hub, name: str) -> dict[str, Any]:
    """A document as an anonymous reader gets it."""
    path = "/openapi.json" if name == "all" else f"/openapi/{name}.json"
    response = await hub.call("GET", path, headers={})
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    document: dict[str, Any] = await response.json()
    return document


def operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in a document."""
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def concrete_paths(info: dict[str, Any]) -> list[str]:
    """A resource's path as the documents spell it: `{kind:assets|models}` becomes both paths."""
    if "path" in info:
        return [info["path"]]
    paths = [info["formatter"]]
    for name, alternatives in re.findall(r"\(\?P<(\w+)>([\w|-]+)\)", info["pattern"].pattern):
        paths = [p.replace(f"{{{name}}}", alt) for p in paths for alt in alternatives.split("|")]
    return paths


def mounted_routes() -> dict[tuple[str, str], str]:
    """Every public (METHOD, path) each service's app mounts, with the service that mounts it."""
    apps = {
        "catalog": create_catalog(CatalogSettings()),
        "access": create_access(AccessSettings()),
        "history": create_history(HistorySettings()),
    }
    mounted: dict[tuple[str, str], str] = {}
    for service, app in apps.items():
        for route in app.router.routes():
            info = route.resource.get_info() if route.resource else {}
            for path in concrete_paths(dict(info)):
                if route.method != "HEAD" and not NOT_PUBLIC.match(path):
                    mounted[(route.method, path)] = service
    return mounted


def sample(path: str) -> str:
    """The path with each parameter replaced by a plausible value, as a client would send it."""
    return re.sub(r"\{\w+\}", "x1", path)


@pytest.mark.parametrize("name", [*DIALECT_DOCUMENTS, "all"])
async def test_each_document_is_valid_openapi_31_and_needs_no_credentials(hub: Hub, name: str) -> None:
    """`/openapi/{a,b,c,admin}.json` and `/openapi.json` answer anyone with a valid OpenAPI 3.1 document."""
    document = await fetch(hub, name)
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_forwarded_route_is_in_exactly_one_dialect_document(hub: Hub) -> None:
    """Each public route a service mounts is forwarded by the gateway to that service and documented once."""
    documents = {name: operations(await fetch(hub, name)) for name in DIALECT_DOCUMENTS}
    mounted = mounted_routes()
    for (method, path), service in mounted.items():
        assert service_for(sample(path)) == service, f"the gateway does not forward {method} {path}"
        holders = [name for name, ops in documents.items() if (method, path) in ops]
        assert len(holders) == 1, f"{method} {path} is in {holders or 'no document'}"
    gateway_own = {("GET", "/v1/me")}
    for name, ops in documents.items():
        unknown = ops - set(mounted) - gateway_own
        assert not unknown, f"{name} documents routes nobody serves: {unknown}"
    combined = operations(await fetch(hub, "all"))
    assert combined == set().union(*documents.values())


async def test_documents_carry_the_limits_the_handlers_enforce(hub: Hub) -> None:
    """Page sizes and ids per call are described with the bounds the services apply."""
    c, a = await fetch(hub, "c"), await fetch(hub, "a")
    page_size_c = next(
        p for p in c["paths"]["/v1/collections"]["get"]["parameters"] if p["name"] == "pageSize"
    )
    assert page_size_c["schema"] == {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    listing_a = a["paths"]["/namespaces/{slug}/projects/{project}/collections"]["get"]
    page_size_a = next(p for p in listing_a["parameters"] if p["name"] == "pageSize")
    assert (page_size_a["schema"]["minimum"], page_size_a["schema"]["maximum"]) == (1, 200)
    assert page_size_a["schema"]["default"] == 50
    asset_ids = c["components"]["schemas"]["AssetIdsC"]["properties"]["assetIds"]
    assert (asset_ids["minItems"], asset_ids["maxItems"]) == (1, 49)


async def test_errors_are_described_in_each_dialects_own_body(hub: Hub) -> None:
    """A's 404 is `{statusCode, message, error}`, B's and C's `{"error"}`; B's schema failures are 422."""
    a, b, c = [await fetch(hub, name) for name in "abc"]
    a_404 = a["paths"]["/namespaces/{slug}/projects/{project}/collections/{name}"]["get"]["responses"]["404"]
    assert a_404["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBodyA")
    b_create = b["paths"]["/api/v2/collections"]["post"]["responses"]
    assert {"200", "400", "401", "422"} <= set(b_create)
    assert b_create["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    c_get = c["paths"]["/v1/collections/{collection_id}"]["get"]
    assert c_get["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert {"bearerKey": []} in c_get["security"]
    assert {"basicKey": []} in c_get["security"]
    assert set(c["components"]["securitySchemes"]) == {"jwtBearer", "apiKeyHeader", "bearerKey", "basicKey"}


async def test_combined_document_tags_every_operation_with_its_dialect(hub: Hub) -> None:
    """`/openapi.json` has one tag per document, and each operation carries exactly one of them."""
    combined = await fetch(hub, "all")
    tags = {tag["name"] for tag in combined["tags"]}
    assert len(tags) == 4
    for item in combined["paths"].values():
        for operation in item.values():
            assert len(operation["tags"]) == 1
            assert operation["tags"][0] in tags


async def test_documents_are_cached_with_an_etag(hub: Hub) -> None:
    """The same bytes and ETag on every call; a matching If-None-Match is a 304 with no body."""
    first = await hub.call("GET", "/openapi/c.json", headers={})
    second = await hub.call("GET", "/openapi/c.json", headers={})
    etag = first.headers["ETag"]
    assert etag == second.headers["ETag"]
    assert await first.read() == await second.read()
    revalidated = await hub.call("GET", "/openapi/c.json", headers={"If-None-Match": etag})
    assert revalidated.status == 304
    assert await revalidated.read() == b""
    changed = await hub.call("GET", "/openapi/c.json", headers={"If-None-Match": '"other"'})
    assert changed.status == 200
    assert (await hub.call("GET", "/openapi/b.json", headers={})).headers["ETag"] != etag


async def test_docs_page_and_its_assets_come_from_the_gateway_alone(hub: Hub) -> None:
    """`/docs` answers anyone; its scripts and styles are served here, and nothing points elsewhere."""
    page = await hub.call("GET", "/docs", headers={})
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert "Content-Security-Policy" in page.headers
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(asset.startswith("/docs/") for asset in assets)
    for asset in assets:
        response = await hub.call("GET", asset, headers={})
        assert response.status == 200, asset
    initializer = await (await hub.call("GET", "/docs/init.js", headers={})).text()
    for name in DIALECT_DOCUMENTS:
        assert f"/openapi/{name}.json" in initializer
    assert "validatorUrl: null" in initializer  # Swagger UI would otherwise call an outside validator


async def test_the_api_itself_still_needs_credentials(hub: Hub) -> None:
    """Opening the description opens nothing else: a route next to it still answers 401."""
    assert (await hub.call("GET", "/v1/collections", headers={})).status == 401
    unknown = await hub.call("GET", "/openapi/d.json", headers={})
    assert unknown.status == 404


def test_mounted_routes_see_every_dialect() -> None:
    """The route listing the comparison relies on finds routes of every service (it cannot pass empty)."""
    services = set(mounted_routes().values())
    assert services == {"catalog", "access", "history"}

"""What the shipped dashboard and alerts read is really exported, with help text, by the running services."""

from __future__ import annotations

import asyncio
import re

from collections_hub.stack import EmbeddedStack
from tests.deploy.test_monitoring import shipped_metric_names
from tests.support import Hub

_HELP = re.compile(r"^# HELP (\S+) (.+)$", re.M)


async def exported(hub: Hub, stack: EmbeddedStack) -> dict[str, str]:
    """Every metric family the gateway and the three services expose, with its help text."""
    families: dict[str, str] = {}
    for name, url in [("gateway", hub.url), *stack.service_urls.items()]:
        headers = hub.admin() if name == "gateway" else {}
        response = await hub.http.get(f"{url}/metrics", headers=headers)
        assert response.status == 200, name
        families.update(_HELP.findall(await response.text()))
    # The exposition names a counter family without `_total` in HELP; the samples carry it.
    return {**families, **{f"{name}_total": text for name, text in families.items()}}


async def test_every_metric_the_dashboard_and_alerts_use_is_exported_with_help(
    hub: Hub, stack: EmbeddedStack
) -> None:
    """Each metric deploy/monitoring names (but kube-state-metrics') is served by some /metrics, with help."""
    families = await exported(hub, stack)
    missing = sorted(shipped_metric_names() - families.keys())
    assert not missing, f"named in the dashboard or the rules, exported by no service: {missing}"
    assert all(families[name].strip() for name in shipped_metric_names())


async def test_the_outbox_and_the_consumer_report_their_state(hub: Hub, stack: EmbeddedStack) -> None:
    """After a write, catalog reports an empty outbox (pending 0, age 0) and history its consumer's lag."""
    assert (await hub.call("POST", "/v1/collections", json={"name": "observed"})).status in (200, 201)
    published = re.compile(r'^outbox_events_published_total\{service="catalog_service"\} [1-9]', re.M)
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        catalog = await (await hub.http.get(f"{stack.service_urls['catalog_service']}/metrics")).text()
        if published.search(catalog):
            break
        assert asyncio.get_running_loop().time() < deadline, "catalog's relay reported nothing published"
        await asyncio.sleep(0.1)
    assert 'outbox_oldest_pending_age_seconds{service="catalog_service"} 0.0' in catalog
    history = await (await hub.http.get(f"{stack.service_urls['history_service']}/metrics")).text()
    assert re.search(r"^history_consumer_pending_messages \d", history, re.M)

"""`/docs` in a real browser: Debian's headless Chromium, driven by Playwright (no browser download)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collections_hub.stack import EmbeddedStack
from tests.support import Hub

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary here (`make test` installs Debian's `chromium`; this test installs nothing)",
)

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DIALECT_C = "C: v1"


async def test_a_reader_picks_dialect_c_authorizes_and_tries_a_call(
    hub: Hub, stack: EmbeddedStack, tmp_path: Path
) -> None:
    """Dialect C lists every operation of `/openapi/c.json`; with a pasted key, "Try it out" answers 200."""
    from playwright.async_api import async_playwright  # noqa: PLC0415 - only where Chromium exists

    _, key = await hub.user_with_key()
    made = await hub.call("POST", "/v1/collections", key=key, json={"name": "seen from the docs page"})
    assert made.status == 200
    document = await (await hub.call("GET", "/openapi/c.json", headers={})).json()
    expected = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    requests_elsewhere: list[str] = []

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.on(
                "request",
                lambda request: (
                    None
                    if request.url.startswith(stack.gateway_url)
                    else requests_elsewhere.append(request.url)
                ),
            )
            await page.goto(f"{stack.gateway_url}/docs")
            await page.wait_for_selector(".opblock")
            await page.select_option("select#select", label=DIALECT_C)
            await page.wait_for_selector(
                ".opblock-summary-path[data-path='/v1/collections/{collection_id}/models']"
            )

            listed = set()
            for block in await page.locator(".opblock").all():
                method = (await block.locator(".opblock-summary-method").inner_text()).strip()
                path = await block.locator(".opblock-summary-path").get_attribute("data-path")
                listed.add((method.upper(), path))
            assert listed == expected

            await page.click("button.authorize")
            scheme = page.locator(".auth-container").filter(has_text="bearerKey")
            await scheme.locator("input").fill(key)
            await scheme.locator("button.authorize").click()
            await page.click("button.btn-done")

            operation = page.locator(".opblock-get").filter(
                has=page.locator(".opblock-summary-path[data-path='/v1/collections']")
            )
            await operation.locator(".opblock-summary").first.click()
            await operation.locator("button.try-out__btn").click()
            await operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tbody .response-col_status").first
            await status.wait_for()
            assert (await status.inner_text()).strip() == "200"
            body = await operation.locator(
                ".live-responses-table tbody .response-col_description"
            ).first.inner_text()
            assert "seen from the docs page" in body
            await page.screenshot(path=str(tmp_path / "docs-dialect-c.png"), full_page=True)
        finally:
            await context.close()
    assert (tmp_path / "docs-dialect-c.png").stat().st_size > 0
    assert requests_elsewhere == []

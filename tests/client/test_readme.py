"""The README's Python snippet works as pasted, against a fresh stack."""

from __future__ import annotations

import re
from pathlib import Path

from collections_hub.client import Hub
from collections_hub.stack import EmbeddedStack

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_snippet() -> str:
    """The README's fenced Python block that uses the client."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    [snippet] = [b for b in blocks if "from collections_hub.client import" in b]
    return str(snippet)


def test_the_readme_snippet_runs_against_the_stack(stack: EmbeddedStack) -> None:
    """Run as written (only the URL and KEY put in): the collection is made and holds the asset it added."""
    snippet = readme_snippet()
    assert "http://127.0.0.1:8080" in snippet
    scope: dict[str, object] = {"KEY": stack.admin_api_key}
    exec(snippet.replace("http://127.0.0.1:8080", stack.gateway_url), scope)  # noqa: S102 - our own README

    box = scope["box"]
    assert "holiday" in scope["names"]  # type: ignore[operator]
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as hub:
        held = [item.id for item in hub.collections.assets.list(box.id)]  # type: ignore[attr-defined]
        assert held
        assert hub.collections.retrieve(box.id).assetCount == len(held)  # type: ignore[attr-defined]

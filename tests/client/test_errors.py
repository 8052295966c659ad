"""Every error the client raises is a HubError: refused input before sending, 404s that name what is
missing, answers it cannot read; and the CLI still turns them into one line and an exit code."""

from __future__ import annotations

import uuid

import httpx
import pytest

from collections_hub.client import AsyncHub, Hub, HubError, InvalidInput, NotFound, UnexpectedAnswer
from collections_hub.console import EXIT_USAGE, friendly_errors
from collections_hub.stack import EmbeddedStack

NOWHERE = "http://127.0.0.1:9"  # refused input never leaves the client, so no server is needed


def test_sync_client_refuses_invalid_input_as_a_hub_error() -> None:
    """An empty collection name is `InvalidInput` (a HubError and a ValueError) naming the field."""
    with Hub(NOWHERE, api_key="k") as hub, pytest.raises(InvalidInput) as caught:
        hub.collections.create("")
    assert isinstance(caught.value, HubError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.message.startswith("invalid input: name: ")
    assert [e["loc"] for e in caught.value.errors()] == [("name",)]
    assert caught.value.status is None


def test_sync_client_names_every_refused_field() -> None:
    """A registry entry with a bad name and url lists both fields in one message."""
    with Hub(NOWHERE, api_key="k") as hub, pytest.raises(InvalidInput) as caught:
        hub.assets.create("", url=7)  # type: ignore[arg-type]
    assert {e["loc"][0] for e in caught.value.errors()} == {"name", "url"}
    assert "name: " in caught.value.message
    assert "url: " in caught.value.message


async def test_async_client_refuses_invalid_input_as_a_hub_error() -> None:
    """The async client raises the same `InvalidInput` when the call is awaited."""
    async with AsyncHub(NOWHERE, api_key="k") as hub:
        with pytest.raises(InvalidInput, match=r"^invalid input: name: "):
            await hub.collections.create("")
        with pytest.raises(InvalidInput, match=r"assetIds"):
            await hub.collections.assets.add("c1", [""])


def test_sync_not_found_names_the_missing_collection_and_item(stack: EmbeddedStack) -> None:
    """A 404 on a call about one thing says which: `collection <id> not found`, `asset <id> not found`."""
    missing = f"nope-{uuid.uuid4().hex[:8]}"
    with Hub(stack.gateway_url, api_key=stack.admin_api_key) as hub:
        with pytest.raises(NotFound, match=f"^404: collection {missing} not found$") as caught:
            hub.collections.retrieve(missing)
        assert caught.value.status == 404
        with pytest.raises(NotFound, match=f"^404: collection {missing} not found$"):
            hub.collections.details(missing)
        with pytest.raises(NotFound, match=f"^404: collection {missing} not found$"):
            list(hub.history.list(missing))
        with pytest.raises(NotFound, match=f"^404: asset {missing} not found$"):
            hub.assets.retrieve(missing)
        with pytest.raises(NotFound, match=f"^404: model {missing} not found$"):
            hub.models.delete(missing)


async def test_async_not_found_names_the_missing_collection(stack: EmbeddedStack) -> None:
    """The async client's 404s name the collection and the item too."""
    missing = f"nope-{uuid.uuid4().hex[:8]}"
    async with AsyncHub(stack.gateway_url, api_key=stack.admin_api_key) as hub:
        with pytest.raises(NotFound, match=f"^404: collection {missing} not found$"):
            await hub.collections.update(missing, name="x")
        with pytest.raises(NotFound, match=f"^404: collection {missing} not found$"):
            await hub.collections.delete(missing)
        with pytest.raises(NotFound, match=f"^404: asset {missing} not found$"):
            await hub.assets.retrieve(missing)


def test_an_answer_the_client_cannot_read_is_a_hub_error() -> None:
    """A 200 whose body is not a collection is `UnexpectedAnswer`, never pydantic's or a KeyError."""
    answer = httpx.MockTransport(lambda _request: httpx.Response(200, json={"unexpected": True}))
    http = httpx.Client(base_url="http://hub.test", transport=answer)
    with Hub("http://hub.test", api_key="k", http=http) as hub, pytest.raises(UnexpectedAnswer) as caught:
        hub.collections.retrieve("c1")
    assert isinstance(caught.value, HubError)
    assert caught.value.status == 200
    assert caught.value.body == {"unexpected": True}


def test_the_cli_turns_invalid_input_into_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """`friendly_errors` still catches refused input: one `invalid input: name: ...` line, exit code 2."""
    with pytest.raises(SystemExit) as exited, friendly_errors(NOWHERE), Hub(NOWHERE, api_key="k") as hub:
        hub.collections.create("")
    assert exited.value.code == EXIT_USAGE
    assert "error: invalid input: name: " in capsys.readouterr().err

"""The CLI's error paths: one line on stderr, a distinct exit code, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collections_hub.cli import main
from collections_hub.processes import free_port
from collections_hub.stack import EmbeddedStack
from tests.support import unique_email


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    script = str(Path(sys.executable).parent / "collections-hub")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with no admin key and an empty data dir, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return {**env, "HUB_DATA_DIR": str(tmp_path), **extra}


def test_refused_connection_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """Nothing listening: `cannot reach`, exit code 3, no traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    result = run(
        "admin",
        "create-user",
        "--email",
        unique_email(),
        "--url",
        url,
        env=clean_env(tmp_path, HUB_ADMIN_API_KEY="k"),
    )
    assert result.returncode == 3
    assert result.stderr.strip().startswith(f"error: cannot reach {url}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_wrong_key_is_401_in_one_line_and_exit_1(stack: EmbeddedStack, tmp_path: Path) -> None:
    """A refused key: the server's 401 and a hint, exit code 1."""
    result = run("export", "--url", stack.gateway_url, "--api-key", "not-a-key", env=clean_env(tmp_path))
    assert result.returncode == 1
    assert "401" in result.stderr
    assert "check the API key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_project_is_404_in_one_line_and_exit_1(stack: EmbeddedStack, tmp_path: Path) -> None:
    """Exporting a project that does not exist: the 404 in one line, exit code 1."""
    out = tmp_path / "out.jsonl"
    result = run(
        "export", "--project", "nope/nothing", "-o", str(out), "--url", stack.gateway_url,
        env=clean_env(tmp_path, HUB_ADMIN_API_KEY=stack.admin_api_key),
    )  # fmt: skip
    assert result.returncode == 1
    assert "404" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_key_anywhere_is_a_usage_error(tmp_path: Path) -> None:
    """No --api-key, no HUB_ADMIN_API_KEY, no secrets.json: exit code 2 and how to fix it."""
    result = run("admin", "create-user", "--email", unique_email(), env=clean_env(tmp_path))
    assert result.returncode == 2
    assert "HUB_ADMIN_API_KEY" in result.stderr


def test_admin_key_is_read_from_secrets_json(stack: EmbeddedStack, tmp_path: Path) -> None:
    """After `make run`, `admin create-user` works without HUB_ADMIN_API_KEY: the key is in secrets.json."""
    (tmp_path / "secrets.json").write_text(json.dumps({"admin_api_key": stack.admin_api_key}))
    email = unique_email()
    result = run(
        "admin", "create-user", "--email", email, "--url", stack.gateway_url, env=clean_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["email"] == email


def test_url_defaults_to_hub_port(stack: EmbeddedStack, tmp_path: Path) -> None:
    """Without --url the CLI talks to http://127.0.0.1:$HUB_PORT."""
    port = stack.gateway_url.rsplit(":", 1)[1]
    env = clean_env(tmp_path, HUB_PORT=port, HUB_ADMIN_API_KEY=stack.admin_api_key)
    result = run("admin", "create-key", "--user-id", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["user_id"] == 1


def test_unknown_option_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A typo in an option is click's usage error, exit code 2."""
    assert main(["export", "--projekt", "x/y"]) == 2
    assert "No such option" in capsys.readouterr().err

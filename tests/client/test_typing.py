"""PEP 561: the installed package says it is typed, and a user's mypy sees the client's types, not `Any`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# collections_hub.client returns the services' own models, so their packages carry the marker too.
TYPED = ("collections_hub", "shared", "catalog_service", "access_service", "history_service")
USER_SCRIPT = """\
from collections_hub.client import Hub, HubError

with Hub("http://127.0.0.1:8080", api_key="key") as hub:
    try:
        reveal_type(hub.collections.create("holiday"))
    except HubError as exc:
        reveal_type(exc.status)
"""


@pytest.mark.parametrize("package", TYPED)
def test_the_installed_package_ships_py_typed(package: str) -> None:
    """`py.typed` is a resource of the installed package, so mypy reads its annotations."""
    assert files(package).joinpath("py.typed").is_file()


def test_a_users_mypy_sees_the_clients_types_in_what_setuptools_installs(tmp_path: Path) -> None:
    """setuptools' build (what a wheel holds) keeps `py.typed`: mypy --strict on a user script passes
    with no import error and reveals the real answer type."""
    src, site = tmp_path / "src", tmp_path / "site"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in (*TYPED, "gateway"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    build = [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py"]
    subprocess.run([*build, "--build-lib", str(site)], cwd=src, env=env, check=True, capture_output=True)
    assert {p.parent.name for p in site.glob("*/py.typed")} == set(TYPED)

    (tmp_path / "app.py").write_text(USER_SCRIPT)
    mypy = Path(sys.executable).parent / "mypy"
    result = subprocess.run(
        [str(mypy), "--strict", "--no-incremental", "app.py"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    assert 'Revealed type is "catalog_service.schemas.CollectionPublicC"' in result.stdout
    assert 'Revealed type is "int | None"' in result.stdout

"""The image recipe, the compose file and the small kustomize renderer keep deploy/'s promises."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, ROOT, SERVICES, load_render


def packages() -> list[str]:
    """The top-level packages the distribution installs, from pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        includes: list[str] = tomllib.load(handle)["tool"]["setuptools"]["packages"]["find"]["include"]
    return [pattern.rstrip("*") for pattern in includes]


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), one list per stage."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    stages: list[list[str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(stripped)
    return stages


def compose() -> dict[str, Any]:
    """deploy/docker-compose.yml, with its YAML anchors merged."""
    with (DEPLOY / "docker-compose.yml").open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


# --- Dockerfile --------------------------------------------------------------------------------


def test_image_is_multi_stage_from_one_pinned_slim_base() -> None:
    """Every stage descends from one python slim base pinned to a full version tag, never `latest`."""
    stages = dockerfile_stages()
    assert len(stages) >= 3  # the pinned base, build, runtime
    external = [s[0].split()[1] for s in stages if ":" in s[0].split()[1]]
    assert len(external) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", external[0])


def test_runtime_stage_runs_unprivileged_without_build_tools() -> None:
    """The final stage installs nothing, runs as a numeric non-root user and defaults to the gateway."""
    runtime = dockerfile_stages()[-1]
    text = "\n".join(runtime)
    assert not re.search(r"apt-get|apk |gcc|build-essential|pip install", text)
    (user,) = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert int(user.split(":")[0]) > 10000
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    assert "PYTHONUNBUFFERED=1" in text
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert runtime[-1] == 'CMD ["python", "-m", "gateway"]'
    assert any(line.startswith("HEALTHCHECK ") for line in runtime)


def test_build_stage_and_dockerignore_carry_every_package() -> None:
    """Each package pyproject.toml installs is copied into the build and let through the dockerignore."""
    build = "\n".join(dockerfile_stages()[1])
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", "an allow-list: whatever is not let through stays out"
    for package in packages():
        assert f"COPY {package}/ {package}/" in build
        assert f"!{package}/" in ignore
    assert "!.venv" not in ignore
    assert "!.git" not in ignore


# --- docker-compose ----------------------------------------------------------------------------


def test_compose_runs_every_service_on_a_replica_set_and_jetstream() -> None:
    """Compose starts MongoDB (replica set), NATS and the four services, each with a health check."""
    services = compose()["services"]
    assert set(services) == {"mongo", "nats", *SERVICES}
    for name, service in services.items():
        assert "healthcheck" in service, name
    for name, module in SERVICES.items():
        service = services[name]
        assert service["command"] == ["python", "-m", module]
        assert service["read_only"] is True
        assert service["environment"]["HUB_HOST"] == "0.0.0.0"  # noqa: S104 - a setting, not a bind
        assert "replicaSet=rs0" in service["environment"]["HUB_MONGODB_URL"]
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert "--replSet" in services["mongo"]["command"]
    assert "rs.initiate" in " ".join(services["mongo"]["healthcheck"]["test"])
    assert [p for name, s in services.items() for p in s.get("ports", [])] == ["127.0.0.1:8080:8080"]
    assert all(
        condition == {"condition": "service_healthy"}
        for condition in services["gateway"]["depends_on"].values()
    )


def test_compose_nats_config_syncs_every_write() -> None:
    """The NATS config compose mounts enables JetStream with `sync_interval: always`."""
    nats = compose()["services"]["nats"]
    (config_mount,) = [v for v in nats["volumes"] if v.endswith(":/etc/nats/nats.conf:ro")]
    config = (DEPLOY / config_mount.split(":")[0]).read_text(encoding="utf-8")
    assert re.search(r"jetstream \{[^}]*^\s*sync_interval: always$", config, re.MULTILINE)


def test_compose_stores_data_on_named_volumes() -> None:
    """MongoDB and NATS data live on named volumes, each declared and each used."""
    document = compose()
    used = {
        volume.split(":")[0]
        for service in document["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith(".")
    }
    assert used == set(document["volumes"]) == {"mongo-data", "mongo-config", "nats-data"}


# --- deploy/render.py --------------------------------------------------------------------------


def test_strategic_merge_follows_kustomize() -> None:
    """Keyed lists merge by key with the patch's items first, `null` deletes, other lists are replaced."""
    merge = load_render().merge
    target = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["x"], "keep": 1}
    patch = {"env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}], "args": ["y"], "keep": None}
    assert merge(target, patch) == {
        "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}, {"name": "A", "value": "1"}],
        "args": ["y"],
    }


def test_renderer_rejects_kustomize_features_it_does_not_implement(tmp_path: Path) -> None:
    """An unsupported kustomization key is an error, never a silently different rendering."""
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n", encoding="utf-8")
    with pytest.raises(ValueError, match="namePrefix"):
        load_render().render(tmp_path)

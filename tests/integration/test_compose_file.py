"""compose.yaml as Docker Compose reads it: the app on PostgreSQL with the host's Docker.

A smoke start of the stack needs the ``postgres`` and Python base images from a registry, which
this project's CI has not (no registry; base images are built locally): the file is checked
by Compose itself, and what the app reads from it by the app's own settings.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from services.settings import Settings
from tests.conftest import REPO_ROOT, skip_or_fail


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    skip_or_fail("Docker Compose is not installed (scripts/install-docker.sh installs it)")


def _config(env: dict[str, str]) -> dict:
    result = subprocess.run([*_compose_command(), "-f", str(REPO_ROOT / "compose.yaml"),
                             "config"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture
def compose_env(tmp_path, monkeypatch):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "POSTGRES"))}
    env.update(WORKBENCH_HOME=str(tmp_path / "home"), POSTGRES_PASSWORD="s3cret-pw",
               WORKBENCH_PORT="6123")
    return env


def test_compose_starts_the_app_on_postgresql_with_the_hosts_docker(compose_env, monkeypatch):
    # Act
    config = _config(compose_env)

    # Assert
    services = config["services"]
    assert set(services) == {"postgres", "workbench"}
    app = services["workbench"]
    environment = app["environment"]
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert environment["DATABASE_URL"] == \
        "postgresql+psycopg://workbench:s3cret-pw@postgres/workbench"
    home = compose_env["WORKBENCH_HOME"]
    mounts = {(m["source"], m["target"]) if isinstance(m, dict) else tuple(m.split(":")[:2])
              for m in app["volumes"]}
    # The state folder at the same path inside as outside: containers the app starts through
    # the host's socket mount its folders by host path.
    assert (home, home) in mounts and environment["WORKBENCH_STATE_DIR"] == home
    assert ("/var/run/docker.sock", "/var/run/docker.sock") in mounts
    ports = [(str(p["published"]), int(p["target"])) if isinstance(p, dict)
             else tuple(p.split(":")) for p in app["ports"]]
    assert ports in ([("6123", 5006)], [("6123", "5006")])
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret-pw"

    # What the app makes of that environment: PostgreSQL through psycopg, state in the home
    for name, value in environment.items():
        monkeypatch.setenv(name, str(value))
    settings = Settings.resolve()
    assert settings.database_url.startswith("postgresql+psycopg://workbench:")
    assert str(settings.state_dir) == home


def test_the_app_image_serves_on_all_interfaces_and_checks_its_health():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()

    command = json.loads(next(line for line in dockerfile.splitlines()
                              if line.startswith("CMD "))[4:])

    assert command[:2] == ["nautilus-workbench", "serve"]
    assert command[command.index("--address") + 1] == "0.0.0.0"
    assert "/api/v1/health/live" in dockerfile and "constraints.txt" in dockerfile

"""compose.yaml: as Docker Compose reads it, and started for real on the images that
scripts/build-compose-images.sh builds offline (the app from a host wheelhouse, PostgreSQL
from Debian's packages): an admin signs in and the app reaches the host's Docker.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml

from services.settings import Settings
from tests.conftest import REPO_ROOT, skip_or_fail

APP_IMAGE = "nautilus-workbench:latest"
POSTGRES_IMAGE = os.environ.get("WORKBENCH_TEST_POSTGRES_IMAGE", "local/postgres:workbench")


@pytest.fixture(autouse=True)
def database_url():
    """The stack brings its own PostgreSQL: these tests run once, not on the suite's two
    databases (this overrides the integration suite's database fixture)."""
    return None


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
def compose_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKBENCH_", "POSTGRES", "DATABASE_URL"))}
    env.update(WORKBENCH_HOME=str(tmp_path / "home"), POSTGRES_PASSWORD="s3cret-pw",
               WORKBENCH_PORT="6123", DOCKER_GID="0")
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
    # Browsers come in by the published port, so the server answers to that name.
    allowed = environment["WORKBENCH_ALLOWED_HOSTS"].split(",")
    assert {"localhost:6123", "127.0.0.1:6123"} <= set(allowed)
    assert [str(g) for g in app["group_add"]] == ["0"]

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


def test_compose_refuses_to_start_without_the_docker_socket_s_group(compose_env):
    del compose_env["DOCKER_GID"]

    result = subprocess.run([*_compose_command(), "-f", str(REPO_ROOT / "compose.yaml"),
                             "config"], capture_output=True, text=True, env=compose_env,
                            timeout=60)

    assert result.returncode != 0
    assert "DOCKER_GID=$(stat -c %g /var/run/docker.sock)" in result.stderr


def _image_present(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _request(url: str, data: dict | None = None, headers: dict | None = None):
    """(status, headers, body) of one request, redirects not followed."""
    opener = urllib.request.build_opener(_NoRedirect)
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=body, headers=headers or {}),
                         timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


@pytest.fixture
def started_stack(compose_env):
    """The stack up on a free port (images built, not pulled), torn down with its volume."""
    if shutil.which("docker") is None or not _image_present(APP_IMAGE) \
            or not _image_present(POSTGRES_IMAGE):
        skip_or_fail(f"the images {APP_IMAGE} and {POSTGRES_IMAGE} are not built "
                     "(scripts/build-compose-images.sh BASE_IMAGE builds them; .ci/run does)")
    home = compose_env["WORKBENCH_HOME"]
    os.makedirs(home)
    os.chmod(home, 0o777)  # the app's uid 10001 writes its state there
    socket_gid = os.stat("/var/run/docker.sock").st_gid
    compose_env.update(WORKBENCH_PORT=str(_free_port()), POSTGRES_IMAGE=POSTGRES_IMAGE,
                       DOCKER_GID=str(socket_gid),
                       COMPOSE_PROJECT_NAME=f"wbsmoke{uuid.uuid4().hex[:8]}")
    compose = [*_compose_command(), "-f", str(REPO_ROOT / "compose.yaml")]

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([*compose, *args], capture_output=True, text=True,
                              env=compose_env, timeout=timeout)

    try:
        up = run("up", "-d", "--no-build", timeout=300)
        assert up.returncode == 0, up.stderr
        yield run, f"http://127.0.0.1:{compose_env['WORKBENCH_PORT']}"
    finally:
        run("down", "-v", "--timeout", "5", timeout=120)


def test_the_stack_starts_signs_the_admin_in_and_reaches_docker(started_stack):
    run, base = started_stack
    deadline = time.monotonic() + 180
    while True:  # until the server answers at all: then it must answer 200 to its own name
        try:
            status, _, body = _request(f"{base}/api/v1/health/live")
            break
        except OSError:
            assert time.monotonic() < deadline, run("logs", "workbench").stdout[-3000:]
            time.sleep(1)
    assert status == 200, (status, body)

    # The first start printed the admin's password once.
    logs = run("logs", "--no-color", "workbench")
    found = re.search(r"password: (\S+)", logs.stdout + logs.stderr)
    assert found, logs.stdout[-3000:]
    password = found.group(1)

    # Signing in through the published port: a session cookie and the app's first page.
    status, headers, _ = _request(f"{base}/login",
                                  {"username": "admin", "password": password, "next": "/"})
    assert status == 303, (status, headers)
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("workbench_session=")
    status, _, page = _request(f"{base}/", headers={"Cookie": cookie})
    assert status == 200 and "Nautilus Workbench" in page
    assert _request(f"{base}/login", {"username": "admin", "password": "wrong"})[0] == 401

    # The account is in the stack's PostgreSQL, not in a SQLite file of the home folder.
    users = run("exec", "-T", "postgres", "psql", "-U", "workbench", "-d", "workbench", "-tAc",
                "SELECT username FROM users")
    assert users.stdout.split() == ["admin"], users.stderr

    # The app, as its own user, starts engines through the host's Docker socket.
    token = run("exec", "-T", "workbench", "nautilus-workbench", "tokens", "create", "admin",
                "--json")
    assert token.returncode == 0, token.stderr
    secret = json.loads(token.stdout)["token"]
    status, _, body = _request(f"{base}/api/v1/nautilus/engine/health",
                               headers={"Authorization": f"Bearer {secret}"})
    assert status == 200 and json.loads(body)["docker"] == "reachable", body

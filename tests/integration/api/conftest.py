"""A served app (``python -m app``) in a subprocess with its own state folder, one user per
role and a token for each: the API tests talk to it over real HTTP, through the same access
gate as a browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from services.identity.roles import ROLES
from tests.conftest import REPO_ROOT

SERVER_START_TIMEOUT_S = 90
ENGINE_ROOT = "/api/v1/nautilus/engine"
ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "password-of-a-test-user"
# The stopped paper engine and the failed run the state folder holds before the server starts.
SEEDED_SESSION = "5eed0000beef"
SEEDED_RUN = "seeded-failed-run"
RUN_OWNER = "role-researcher"


@dataclass
class Served:
    """A served app: its base URL, state folder, log and one token per role."""

    url: str
    state_dir: Path
    process: subprocess.Popen
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token of user role-<role>
    database_url: str | None = None  # None: SQLite in the state folder

    def request(self, method: str, path: str, role: str | None = None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def workbench(self):
        from services.workbench import Workbench

        return Workbench.open(state_dir=self.state_dir, database_url=self.database_url)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def readable_catalog():
    """The sample catalog in a folder the engine container's unprivileged user can read
    (pytest's temporary folders are private to their owner)."""
    from services.catalog.sample import generate_sample_catalog

    folder = Path(tempfile.mkdtemp(prefix="workbench-api-catalog-"))
    folder.chmod(0o755)
    generate_sample_catalog(folder / "catalog")
    yield folder / "catalog"
    shutil.rmtree(folder, ignore_errors=True)


def _seed(state_dir: Path, catalog: Path, database_url: str | None) -> dict[str, str]:
    """Users role-<role> with one role each, their tokens, a stopped paper engine session and
    a failed run owned by role-researcher; returns role -> token."""
    from services.db import BacktestRunRow, EngineSessionRow
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=state_dir, catalog=str(catalog), database_url=database_url)
    tokens = {}
    try:
        for role in ROLES:
            wb.users.add(f"role-{role}", [role], PASSWORD)
            tokens[role] = wb.tokens.create("tests", username=f"role-{role}")[1]
        now = datetime.now(UTC)
        folder = wb.settings.runs_dir / SEEDED_RUN
        folder.mkdir(parents=True)
        with wb.database.session() as session:
            if wb.catalog.instruments():  # a paper engine replays the catalog's data
                config = wb.engines.validate("paper_trading", {"replay_speed": 600},
                                             "seeded-paper", SEEDED_SESSION)
                session.add(EngineSessionRow(
                    session_id=SEEDED_SESSION, name="seeded-paper", template="paper_trading",
                    mode="paper", config=config.to_record(), state="Stopped", container_id=None,
                    container_name=f"nautilus-engine-{SEEDED_SESSION}", image="none",
                    actor="role-trader", created_at=now, final_state="Stopped"))
            session.add(BacktestRunRow(
                run_id=SEEDED_RUN, status="Failed", strategy="ema_cross",
                instrument_id="AAPL.XNAS", bar_type="AAPL.XNAS-1-MINUTE-LAST-EXTERNAL",
                start=now, end=now, spec={}, run_folder=str(folder), actor=RUN_OWNER,
                created_at=now, error="seeded for the API tests", currency="USD"))
    finally:
        wb.database.dispose()
    return tokens


def _seed_admin(state_dir: Path, catalog: Path, database_url: str | None) -> None:
    """The admin the server would make on a first start (other users exist already)."""
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=state_dir, catalog=str(catalog), database_url=database_url)
    try:
        wb.users.add("admin", ["admin", "researcher", "trader", "approver"], ADMIN_PASSWORD)
    finally:
        wb.database.dispose()


def serve(home: Path, catalog: Path, environment: dict | None = None,
          arguments: list[str] | None = None, database_url: str | None = None) -> Served:
    """Seed a state folder (and ``database_url``, if given) and serve it; returns once the API
    answers."""
    port = free_port()
    state_dir, log = home / "state", home / "server.log"
    tokens = _seed(state_dir, catalog, database_url)
    _seed_admin(state_dir, catalog, database_url)
    password_file = home / "admin-password"
    password_file.write_text(ADMIN_PASSWORD)
    env = {**os.environ, **(environment or {})}
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(port), "--state-dir", str(state_dir),
             "--catalog", str(catalog), "--admin-password-file", str(password_file),
             *(arguments or [])],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env)
    served = Served(f"http://127.0.0.1:{port}", state_dir, process, log, tokens, database_url)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            if requests.get(f"{served.url}/api/v1/health/live", timeout=5).status_code == 200:
                return served
        # Refused before the port is bound; a timeout while the app, bound early, starts up.
        except (requests.ConnectionError, requests.Timeout):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            shutdown(served)
            pytest.fail(f"the app did not serve {served.url} within {SERVER_START_TIMEOUT_S} s;"
                        f" its output:\n{served.log_tail()}")
        time.sleep(0.25)


def shutdown(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait(timeout=5)


@pytest.fixture(scope="module")
def api_without_docker(tmp_path_factory, readable_catalog, new_database_url) -> Served:
    """A served app whose Docker daemon is unreachable: no action can start a container, so
    every route can be called by every role without side effects beyond the database."""
    served = serve(tmp_path_factory.mktemp("api-no-docker"), readable_catalog,
                   {"DOCKER_HOST": "unix:///nonexistent/docker.sock",
                    "WORKBENCH_API_CONTROL_RATE": "1000/minute"},
                   database_url=new_database_url())
    yield served
    shutdown(served)

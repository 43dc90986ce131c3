"""The REST API over real HTTP, served by the product's own server (``python -m app``).

The server runs in a subprocess with its own state folder, so requests pass through the same
Bokeh/Tornado server as the pages (no auth or origin check may swallow them). Refusals that need
no Docker (malformed input, unknown sessions, invalid configurations, missing confirmation or
role) run everywhere; the engine life cycle needs a Docker daemon and the engine image (marked
``docker``: skipped on a machine without them, failing under CI). A second server whose
DOCKER_HOST points nowhere shows the 503 answers. Every container started is killed and removed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.api import ENGINE_ROOT, ROUTES
from tests.conftest import REPO_ROOT, skip_or_fail

FAST = {"replay_speed": 600, "fast_ema_period": 5, "slow_ema_period": 12}
SERVER_START_TIMEOUT_S = 60
ENGINE_TIMEOUT_S = 90


@dataclass
class Api:
    """A served app: its base URL, state folder and log."""

    url: str
    state_dir: Path
    process: subprocess.Popen
    log: Path

    def engine(self, path: str) -> str:
        return f"{self.url}{ENGINE_ROOT}/{path}"

    def post(self, path: str, body=None, actor: str | None = None, raw: str | None = None):
        headers = {"X-Workbench-Actor": actor} if actor else {}
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return requests.post(self.engine(path), data=data, headers=headers, timeout=120)

    def get(self, path: str, **params):
        return requests.get(self.engine(path), params=params, timeout=60)

    def state(self, session_id: str) -> str:
        return self.get("status", session_id=session_id).json()["engine"]["state"]

    def wait_state(self, session_id: str, states: tuple[str, ...]) -> dict:
        deadline = time.monotonic() + ENGINE_TIMEOUT_S
        while time.monotonic() < deadline:
            engine = self.get("status", session_id=session_id).json()["engine"]
            if engine["state"] in states:
                return engine
            time.sleep(0.5)
        raise AssertionError(f"engine {session_id} not in {states} after {ENGINE_TIMEOUT_S} s; "
                             f"it is {engine['state']}: {engine['error']}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def readable_catalog():
    """The sample catalog in a folder the engine container's unprivileged user can read
    (pytest's temporary folders are private to their owner)."""
    from services.catalog.sample import generate_sample_catalog

    folder = Path(tempfile.mkdtemp(prefix="workbench-api-catalog-"))
    folder.chmod(0o755)
    generate_sample_catalog(folder / "catalog")
    yield folder / "catalog"
    shutil.rmtree(folder, ignore_errors=True)


def _serve(home: Path, catalog: Path, environment: dict | None = None) -> Api:
    port = _free_port()
    state_dir, log = home / "state", home / "server.log"
    env = {**os.environ, **(environment or {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(port), "--state-dir", str(state_dir),
             "--catalog", str(catalog)],
            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env)
    api = Api(f"http://127.0.0.1:{port}", state_dir, process, log)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            if requests.get(f"{api.url}/api/v1/openapi.json", timeout=5).status_code == 200:
                return api
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _shutdown(api)
            pytest.fail(f"the app did not serve {api.url} within {SERVER_START_TIMEOUT_S} s; "
                        f"its output:\n{api.log_tail()}")
        time.sleep(0.25)


def _shutdown(api: Api) -> None:
    api.process.terminate()
    try:
        api.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        api.process.kill()
        api.process.wait(timeout=5)


def _remove_engines(state_dir: Path) -> None:
    """Kill and remove every engine container this state folder's workbench started."""
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=state_dir)
    try:
        if wb.engines.docker.ping()[0]:
            wb.engines.emergency_stop_all()
            wb.engines.cleanup()
    finally:
        wb.database.dispose()


@pytest.fixture(scope="module")
def api(tmp_path_factory, readable_catalog) -> Api:
    served = _serve(tmp_path_factory.mktemp("api-server"), readable_catalog)
    yield served
    try:
        _remove_engines(served.state_dir)
    finally:
        _shutdown(served)


@pytest.fixture(scope="module")
def docker_ready(api) -> Api:
    health = api.get("health").json()
    if health["docker"] != "reachable":
        skip_or_fail(f"Docker is not available: {health['detail']}")
    if not health["image_present"]:
        skip_or_fail(f"the engine image {health['image']} is not built "
                     "(nautilus-workbench engine build-image)")
    return api


# -- the document ------------------------------------------------------------------------------
def test_openapi_document_describes_every_endpoint(api):
    # Act
    response = requests.get(f"{api.url}/api/v1/openapi.json", timeout=30)

    # Assert
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = response.json()
    assert document["openapi"].startswith("3.")
    expected = {f"{ENGINE_ROOT}/{path}" for path in ROUTES} | {"/api/v1/openapi.json"}
    assert set(document["paths"]) == expected
    methods = {path.removeprefix(ENGINE_ROOT + "/"): set(ops)
               for path, ops in document["paths"].items()}
    assert methods["start"] == methods["stop"] == methods["restart"] == {"post"}
    assert methods["emergency-stop"] == {"post"}
    assert methods["status"] == methods["health"] == methods["logs"] == {"get"}
    assert methods["containers"] == {"get"}
    assert methods["config"] == {"put"} and methods["containers/cleanup"] == {"delete"}
    start = document["paths"][f"{ENGINE_ROOT}/start"]["post"]
    assert {"201", "400", "403", "409", "422", "503"} <= set(start["responses"])
    assert start["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "template"]


def test_health_reports_docker_and_the_monitor(api):
    response = api.get("health")

    assert response.status_code == 200
    health = response.json()
    assert health["docker"] in ("reachable", "unreachable")
    assert health["image"].startswith("nautilus-workbench-engine")
    assert set(health["monitor"]) >= {"docker_reachable", "failures", "next_poll_in"}


def test_status_of_all_engines_is_a_list(api):
    response = api.get("status")

    assert response.status_code == 200
    assert isinstance(response.json()["engines"], list)


# -- 400, 404, 405 ----------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "raw", "fragment"), [
    ("start", "{", "not valid JSON"),
    ("start", "[1, 2]", "must be a JSON object"),
    ("start", "", "needs a JSON object body"),
    ("start", "{}", "Missing field 'template'"),
    ("start", '{"template": "paper_trading", "parameters": [1]}', "'parameters' must be a JSON"),
    ("start", '{"template": 7}', "'template' must be a string"),
    ("stop", "{}", "Missing field 'session_id'"),
    ("restart", '{"session_id": 12}', "'session_id' must be a string"),
    ("emergency-stop", "{}", "Give 'session_id'"),
    ("emergency-stop", '{"all": "yes"}', "'all' must be a boolean"),
])
def test_malformed_requests_are_400_with_a_message(api, path, raw, fragment):
    response = api.post(path, raw=raw)

    assert response.status_code == 400
    assert fragment in response.json()["error"]


def test_malformed_config_and_log_queries_are_400(api):
    put = requests.put(api.engine("config"), data='{"session_id": "x"}', timeout=30)
    assert put.status_code == 400 and "'parameters'" in put.json()["error"]

    missing = api.get("logs")
    assert missing.status_code == 400 and "'session_id'" in missing.json()["error"]

    bad_tail = api.get("logs", session_id="x", tail="many")
    assert bad_tail.status_code == 400 and "'tail'" in bad_tail.json()["error"]


def test_unknown_sessions_are_404(api):
    unknown = "000000000000"
    answers = [
        api.get("status", session_id=unknown),
        api.get("logs", session_id=unknown),
        api.post("stop", {"session_id": unknown}),
        api.post("restart", {"session_id": unknown}),
        api.post("emergency-stop", {"session_id": unknown}),
        requests.put(api.engine("config"), json={"session_id": unknown, "parameters": {}},
                     timeout=30),
    ]

    for response in answers:
        assert response.status_code == 404, response.url
        assert f"no engine session '{unknown}'" in response.json()["error"]


def test_unknown_paths_and_wrong_methods_answer_json(api):
    missing = requests.get(f"{api.url}/api/v1/nautilus/engine/nope", timeout=30)
    assert missing.status_code == 404 and "openapi.json" in missing.json()["error"]

    wrong = requests.get(api.engine("start"), timeout=30)
    assert wrong.status_code == 405 and "GET is not allowed" in wrong.json()["error"]


# -- 403, 422 (checked by the service before Docker is asked) ---------------------------------
def test_invalid_configuration_is_422_with_every_problem(api):
    response = api.post("start", {"template": "paper_trading", "parameters": {
        "fast_ema_period": 30, "slow_ema_period": 20, "memory_limit_mb": 10, "bogus": 1}})

    assert response.status_code == 422
    body = response.json()
    fields = {p.split(":")[0] for p in body["problems"]}
    assert {"fast_ema_period", "memory_limit_mb", "bogus"} <= fields
    assert "Invalid configuration" in body["error"]


def test_unknown_template_is_422(api):
    response = api.post("start", {"template": "no_such_template"})

    assert response.status_code == 422
    assert "Unknown engine template 'no_such_template'" in response.json()["error"]


def test_live_start_without_the_typed_name_is_403_and_audited(api):
    # Act
    response = api.post("start", {"template": "live_engine", "name": "live-api-test",
                                  "confirm": "something else"})

    # Assert
    assert response.status_code == 403
    assert "Type the engine's name to confirm" in response.json()["error"]
    from services.workbench import Workbench

    wb = Workbench.open(state_dir=api.state_dir)
    try:
        entry = wb.engines.audit_log(target="live-api-test")[0]
    finally:
        wb.database.dispose()
    assert (entry["action"], entry["outcome"], entry["actor"]) == (
        "engine.start", "refused", "local")


def test_actor_without_the_role_is_403(api):
    response = api.post("start", {"template": "paper_trading", "parameters": FAST},
                        actor="visitor")

    assert response.status_code == 403
    assert "'visitor' may not start paper engines" in response.json()["error"]


# -- the life cycle, with Docker ----------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.integration
def test_engine_life_cycle_through_the_api(docker_ready):
    api = docker_ready

    # Start: 201 in state Starting, then Running with fills
    started = api.post("start", {"template": "paper_trading", "parameters": FAST,
                                 "name": "api-paper"})
    assert started.status_code == 201, started.text
    engine = started.json()["engine"]
    session_id = engine["session_id"]
    assert (engine["state"], engine["name"], engine["actor"]) == ("Starting", "api-paper",
                                                                  "local")
    running = api.wait_state(session_id, ("Running", "Error"))
    assert running["state"] == "Running", running["error"]

    # Double start: 409
    again = api.post("start", {"template": "paper_trading", "parameters": FAST,
                               "name": "api-paper"})
    assert again.status_code == 409 and "already" in again.json()["error"]

    # Logs, with search; containers
    deadline = time.monotonic() + ENGINE_TIMEOUT_S
    while not (lines := api.get("logs", session_id=session_id, tail=5,
                                search="bar(").json()["lines"]):
        assert time.monotonic() < deadline, "no bar in the engine's log"
        time.sleep(0.5)
    assert 0 < len(lines) <= 5 and all("bar(" in line.lower() for line in lines)
    containers = api.get("containers").json()["containers"]
    assert [c["status"] for c in containers if c["session_id"] == session_id] == ["running"]

    # Config of a running engine: 409
    config = requests.put(api.engine("config"), json={"session_id": session_id,
                                                      "parameters": {"slow_ema_period": 30}},
                          timeout=30)
    assert config.status_code == 409

    # Graceful stop: 202 Stopping, then Stopped; stopping again: 409
    stopped = api.post("stop", {"session_id": session_id})
    assert stopped.status_code == 202 and stopped.json()["engine"]["state"] in (
        "Stopping", "Stopped")
    assert api.wait_state(session_id, ("Stopped", "Error"))["state"] == "Stopped"
    twice = api.post("stop", {"session_id": session_id})
    assert twice.status_code == 409 and "nothing to stop" in twice.json()["error"]

    # Config of the stopped engine: 422 when invalid, 200 when valid
    invalid = requests.put(api.engine("config"), json={
        "session_id": session_id, "parameters": {"slow_ema_period": 3}}, timeout=30)
    assert invalid.status_code == 422 and invalid.json()["problems"]
    valid = requests.put(api.engine("config"), json={
        "session_id": session_id, "parameters": {"slow_ema_period": 15}}, timeout=30)
    assert valid.status_code == 200, valid.text
    assert valid.json()["engine"]["parameters"]["slow_ema_period"] == 15

    # Restart: a new session with the new configuration
    restarted = api.post("restart", {"session_id": session_id})
    assert restarted.status_code == 202, restarted.text
    new = restarted.json()["engine"]
    assert new["session_id"] != session_id and new["parameters"]["slow_ema_period"] == 15
    assert api.wait_state(new["session_id"], ("Running", "Error"))["state"] == "Running"

    # Emergency stop of one engine, then of all (nothing left to kill)
    killed = api.post("emergency-stop", {"session_id": new["session_id"]})
    assert killed.status_code == 200
    assert (killed.json()["engine"]["state"], killed.json()["engine"]["final_state"]) == (
        "Stopped", "Killed")
    everything = api.post("emergency-stop", {"all": True})
    assert everything.status_code == 200 and everything.json()["engines"] == []

    # Cleanup removes both exited containers
    removed = requests.delete(api.engine("containers/cleanup"), timeout=60)
    assert removed.status_code == 200
    assert {f"nautilus-engine-{session_id}", f"nautilus-engine-{new['session_id']}"} <= set(
        removed.json()["removed"])
    left = {c["session_id"] for c in api.get("containers").json()["containers"]}
    assert not left & {session_id, new["session_id"]}


@pytest.mark.docker
@pytest.mark.integration
def test_emergency_stop_all_kills_every_running_engine(docker_ready):
    api = docker_ready
    ids = []
    for name in ("api-kill-a", "api-kill-b"):
        response = api.post("start", {"template": "paper_trading", "parameters": FAST,
                                      "name": name})
        assert response.status_code == 201, response.text
        ids.append(response.json()["engine"]["session_id"])

    response = api.post("emergency-stop", {"all": True})

    assert response.status_code == 200
    killed = {e["session_id"]: e for e in response.json()["engines"]}
    assert set(ids) <= set(killed)
    assert all(killed[i]["state"] == "Stopped" for i in ids)
    assert all(api.state(i) == "Stopped" for i in ids)


# -- Docker unreachable: 503 ------------------------------------------------------------------
@pytest.fixture(scope="module")
def api_without_docker(tmp_path_factory, readable_catalog) -> Api:
    served = _serve(tmp_path_factory.mktemp("api-no-docker"), readable_catalog,
                    {"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    yield served
    _shutdown(served)


def test_docker_unreachable_is_503_and_health_says_why(api_without_docker):
    api = api_without_docker

    health = api.get("health")
    assert health.status_code == 200
    assert health.json()["docker"] == "unreachable"
    assert "Docker daemon is not reachable" in health.json()["detail"]

    start = api.post("start", {"template": "paper_trading", "parameters": FAST})
    assert start.status_code == 503
    assert "Start Docker" in start.json()["error"]

    for response in (api.get("containers"),
                     requests.delete(api.engine("containers/cleanup"), timeout=30)):
        assert response.status_code == 503
        assert "not reachable" in response.json()["error"]

"""The engine life cycle through the API with a real Docker daemon and the engine image (marked
``docker``: skipped on a machine without them, failing under CI), and the 503 answers of a
server whose Docker daemon is unreachable. Every container started is killed and removed."""

from __future__ import annotations

import time

import pytest

from tests.conftest import docker_with_engine_image
from tests.integration.api.conftest import ENGINE_ROOT, serve, shutdown

FAST = {"replay_speed": 600, "fast_ema_period": 5, "slow_ema_period": 12}
ENGINE_TIMEOUT_S = 90


def _remove_engines(served) -> None:
    wb = served.workbench()
    try:
        wb.engines.emergency_stop_all()
        wb.engines.cleanup()
    finally:
        wb.database.dispose()


@pytest.fixture(scope="module")
def docker_api(tmp_path_factory, readable_catalog, new_database_url):
    docker_with_engine_image()
    served = serve(tmp_path_factory.mktemp("api-docker"), readable_catalog,
                   database_url=new_database_url())
    yield served
    try:
        _remove_engines(served)
    finally:
        shutdown(served)


def _engine(served, session_id: str) -> dict:
    return served.request("get", f"{ENGINE_ROOT}/status", "viewer",
                          params={"session_id": session_id}).json()["engine"]


def _wait(served, session_id: str, states: tuple[str, ...]) -> dict:
    deadline = time.monotonic() + ENGINE_TIMEOUT_S
    while time.monotonic() < deadline:
        engine = _engine(served, session_id)
        if engine["state"] in states:
            return engine
        time.sleep(0.5)
    raise AssertionError(f"engine {session_id} not in {states} after {ENGINE_TIMEOUT_S} s; it "
                         f"is {engine['state']}: {engine['error']}")


@pytest.mark.docker
@pytest.mark.integration
def test_engine_life_cycle_through_the_api(docker_api):
    api = docker_api

    def post(path: str, body: dict, role: str = "trader"):
        return api.request("post", f"{ENGINE_ROOT}/{path}", role, json=body)

    # Start: 201 in state Starting, audited as the token's user, then Running
    started = post("start", {"template": "paper_trading", "parameters": FAST,
                             "name": "api-paper"})
    assert started.status_code == 201, started.text
    engine = started.json()["engine"]
    session_id = engine["session_id"]
    assert (engine["state"], engine["name"], engine["actor"]) == ("Starting", "api-paper",
                                                                  "role-trader")
    assert _wait(api, session_id, ("Running", "Error"))["state"] == "Running"

    # Double start: 409
    again = post("start", {"template": "paper_trading", "parameters": FAST, "name": "api-paper"})
    assert again.status_code == 409 and "already" in again.json()["error"]

    # Logs with search; containers
    deadline = time.monotonic() + ENGINE_TIMEOUT_S
    while not (lines := api.request("get", f"{ENGINE_ROOT}/logs", "viewer", params={
            "session_id": session_id, "tail": 5, "search": "bar("}).json()["lines"]):
        assert time.monotonic() < deadline, "no bar in the engine's log"
        time.sleep(0.5)
    assert 0 < len(lines) <= 5 and all("bar(" in line.lower() for line in lines)
    containers = api.request("get", f"{ENGINE_ROOT}/containers", "viewer").json()["containers"]
    assert [c["status"] for c in containers if c["session_id"] == session_id] == ["running"]

    # Config of a running engine: 409
    config = api.request("put", f"{ENGINE_ROOT}/config", "trader", json={
        "session_id": session_id, "parameters": {"slow_ema_period": 30}})
    assert config.status_code == 409

    # Graceful stop: 202, then Stopped; stopping again: 409
    stopped = post("stop", {"session_id": session_id})
    assert stopped.status_code == 202
    assert _wait(api, session_id, ("Stopped", "Error"))["state"] == "Stopped"
    twice = post("stop", {"session_id": session_id})
    assert twice.status_code == 409 and "nothing to stop" in twice.json()["error"]

    # Config of the stopped engine: 422 when invalid, 200 when valid
    invalid = api.request("put", f"{ENGINE_ROOT}/config", "trader", json={
        "session_id": session_id, "parameters": {"slow_ema_period": 3}})
    assert invalid.status_code == 422 and invalid.json()["problems"]
    valid = api.request("put", f"{ENGINE_ROOT}/config", "trader", json={
        "session_id": session_id, "parameters": {"slow_ema_period": 15}})
    assert valid.status_code == 200, valid.text
    assert valid.json()["engine"]["parameters"]["slow_ema_period"] == 15

    # Restart: a new session with the new configuration
    restarted = post("restart", {"session_id": session_id})
    assert restarted.status_code == 202, restarted.text
    new = restarted.json()["engine"]
    assert new["session_id"] != session_id and new["parameters"]["slow_ema_period"] == 15
    assert _wait(api, new["session_id"], ("Running", "Error"))["state"] == "Running"

    # Emergency stop of one engine, then of all (nothing left)
    killed = post("emergency-stop", {"session_id": new["session_id"]})
    assert killed.status_code == 200
    assert (killed.json()["engine"]["state"], killed.json()["engine"]["final_state"]) == (
        "Stopped", "Killed")
    everything = post("emergency-stop", {"all": True})
    assert everything.status_code == 200 and everything.json()["engines"] == []

    # Cleanup (an admin's job) removes both exited containers
    refused = api.request("delete", f"{ENGINE_ROOT}/containers/cleanup", "trader")
    assert refused.status_code == 403
    removed = api.request("delete", f"{ENGINE_ROOT}/containers/cleanup", "admin")
    assert removed.status_code == 200
    assert {f"nautilus-engine-{session_id}", f"nautilus-engine-{new['session_id']}"} <= set(
        removed.json()["removed"])


@pytest.mark.docker
@pytest.mark.integration
def test_live_start_needs_the_live_role_and_the_typed_name(docker_api):
    api = docker_api
    body = {"template": "live_engine", "name": "live-api-test", "confirm": "something else"}

    as_trader = api.request("post", f"{ENGINE_ROOT}/start", "trader", json=body)
    as_live = api.request("post", f"{ENGINE_ROOT}/start", "live_trader", json=body)

    assert as_trader.status_code == 403 and "live_trader role" in as_trader.json()["error"]
    assert as_live.status_code == 403
    assert "Type the engine's name to confirm" in as_live.json()["error"]
    wb = api.workbench()
    try:
        entries = wb.engines.audit_log(target="live-api-test")
    finally:
        wb.database.dispose()
    assert {(e["actor"], e["outcome"]) for e in entries} == {("role-trader", "refused"),
                                                            ("role-live_trader", "refused")}


def test_docker_unreachable_is_503_and_health_says_why(api_without_docker):
    api = api_without_docker

    health = api.request("get", f"{ENGINE_ROOT}/health", "viewer")
    start = api.request("post", f"{ENGINE_ROOT}/start", "trader",
                        json={"template": "paper_trading", "parameters": FAST})
    containers = api.request("get", f"{ENGINE_ROOT}/containers", "viewer")
    cleanup = api.request("delete", f"{ENGINE_ROOT}/containers/cleanup", "admin")

    assert health.status_code == 200 and health.json()["docker"] == "unreachable"
    assert "Docker daemon is not reachable" in health.json()["detail"]
    assert start.status_code == 503 and "Start Docker" in start.json()["error"]
    for response in (containers, cleanup):
        assert response.status_code == 503 and "not reachable" in response.json()["error"]

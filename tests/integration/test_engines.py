"""Paper engines in real Docker containers: start, trade on replayed data, watch, stop, kill.

Needs a Docker daemon and the engine image (`.ci/run` installs and builds both); skips on a
machine without them, fails under CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from services.engine.docker_api import DockerGateway
from services.engine.monitor import EngineMonitor
from services.engine.service import ERROR, RUNNING, STOPPED, EngineService
from services.errors import EngineError, PermissionDenied, ValidationError
from services.identity.principal import Principal
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, docker_with_engine_image

pytestmark = [pytest.mark.integration, pytest.mark.docker]

FAST = {"replay_speed": 600, "fast_ema_period": 5, "slow_ema_period": 12}


@pytest.fixture(scope="module")
def docker_ready():
    return docker_with_engine_image()


@pytest.fixture(scope="module")
def engine_catalog(sample_catalog_path):
    """The sample catalog in a folder the container's unprivileged user can read
    (pytest's own temporary folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-engine-catalog-"))
    folder.chmod(0o755)
    target = folder / "catalog"
    shutil.copytree(sample_catalog_path, target)
    yield target
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def engine_wb(docker_ready, engine_catalog, tmp_path):
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(engine_catalog))
    yield wb
    for info in wb.engines.list_sessions():
        if info.is_active:
            wb.engines.emergency_stop(info.session_id)
    wb.engines.cleanup()
    wb.database.dispose()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _start_running(wb: Workbench, **extra) -> str:
    info = wb.engines.start("paper_trading", {**FAST, **extra.pop("params", {})}, **extra)
    info = wb.engines.wait_for(info.session_id, (RUNNING, ERROR, STOPPED), timeout=90)
    assert info.state == RUNNING, info.error
    return info.session_id


def test_paper_engine_trades_records_metrics_and_stops_gracefully(engine_wb, docker_ready):
    engines = engine_wb.engines
    session_id = _start_running(engine_wb, name="paper-btc")
    info = _wait(lambda: (i := engines.get(session_id)).status.get("fills", 0) >= 2 and i,
                 timeout=60, what="fills on replayed data")
    assert info.status["trader_state"] == "RUNNING"
    assert info.status["strategies"] == {"EMACross-000": "RUNNING"}
    assert any(k.endswith(":USDT") for k in info.status["balances"])

    # The container is hardened as promised.
    attrs = docker_ready.client().containers.get(info.container_id).attrs
    host, config = attrs["HostConfig"], attrs["Config"]
    assert info.container_name == f"nautilus-engine-{session_id}"
    assert config["User"] == "10001"
    assert host["CapDrop"] == ["ALL"]
    assert host["ReadonlyRootfs"] is True
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] == 1024 * 2**20 and host["NanoCpus"] == 10**9
    assert host["NetworkMode"] == "none"
    assert host["LogConfig"]["Config"]["max-size"] == "20m"
    assert config["Labels"]["nautilus-workbench.session"] == session_id

    # The monitor records resource and engine metrics under the agreed names.
    monitor = EngineMonitor(engines)
    _wait(lambda: monitor.poll_once().docker_reachable and engines.metrics(session_id)
          and any(m["name"] == "nautilus.engine.cpu_usage" for m in engines.metrics(session_id)),
          timeout=20, what="resource metrics")
    names = {m["name"] for m in engines.metrics(session_id)}
    assert {"nautilus.engine.cpu_usage", "nautilus.engine.memory_usage",
            "nautilus.engine.network_rx_bytes", "nautilus.engine.block_read_bytes",
            "nautilus.engine.fills"} <= names
    memory = [m["value"] for m in engines.metrics(session_id)
              if m["name"] == "nautilus.engine.memory_usage"]
    assert 10 * 2**20 < max(memory) < 1024 * 2**20

    # A second engine under the same name is refused while the first runs.
    with pytest.raises(EngineError, match="already Running"):
        engines.start("paper_trading", FAST, name="paper-btc")

    engines.stop(session_id)
    stopped = engines.wait_for(session_id, (STOPPED, ERROR), timeout=60)
    assert stopped.state == STOPPED and stopped.final_state == STOPPED
    assert stopped.exit_code == 0
    with pytest.raises(EngineError, match="nothing to stop"):
        engines.stop(session_id)

    assert any("OrderFilled" in line for line in engines.logs(session_id, tail=0))
    assert engines.logs(session_id, search="OrderFilled")
    audit = [(a["action"], a["from_state"], a["to_state"], a["outcome"])
             for a in reversed(engines.audit_log(session_id))]
    assert ("engine.start", "Stopped", "Starting", "accepted") in audit
    assert ("engine.stop", "Running", "Stopping", "accepted") in audit
    assert ("engine.stop", "Stopped", "Stopped", "refused") in audit
    refused = [a for a in engines.audit_log("paper-btc")
               if a["action"] == "engine.start" and a["outcome"] == "refused"]
    assert refused and "already Running" in refused[0]["detail"]


def test_emergency_stop_kills_the_container_at_once(engine_wb, docker_ready):
    session_id = _start_running(engine_wb)
    info = engine_wb.engines.emergency_stop(session_id)
    assert info.state == STOPPED and info.final_state == "Killed"
    container = docker_ready.client().containers.get(info.container_id)
    assert container.status == "exited"
    entry = engine_wb.engines.audit_log(session_id)[0]
    assert (entry["action"], entry["actor"], entry["outcome"]) == (
        "engine.emergency_stop", Principal.local().name, "killed")
    # From a final state it is a recorded no-op, never an error.
    again = engine_wb.engines.emergency_stop(session_id)
    assert again.state == STOPPED
    assert engine_wb.engines.audit_log(session_id)[0]["outcome"] == "noop"


def test_container_killed_from_outside_becomes_error_and_is_audited(engine_wb, docker_ready):
    session_id = _start_running(engine_wb)
    info = engine_wb.engines.get(session_id)
    docker_ready.client().containers.get(info.container_id).kill()
    failed = engine_wb.engines.wait_for(session_id, (ERROR,), timeout=30)
    assert failed.state == ERROR
    assert "killed from outside the workbench" in failed.error
    assert failed.exit_code == 137
    entry = engine_wb.engines.audit_log(session_id)[0]
    assert (entry["actor"], entry["action"], entry["to_state"]) == ("system:monitor",
                                                                    "engine.exited", ERROR)


def _cli_start(wb: Workbench, name: str) -> str:
    """Start an engine from another process (the CLI), which exits once the engine runs."""
    args = [sys.executable, "-m", "app.cli", "engine", "start", "paper_trading", "--json",
            "--name", name, "--state-dir", str(wb.settings.state_dir),
            "--catalog", wb.catalog.location]
    for key, value in FAST.items():
        args += ["--param", f"{key}={value}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["state"] == RUNNING
    return payload["session_id"]


def test_server_restart_reattaches_and_reconciles(engine_wb, docker_ready):
    # Engines started by a process that has exited since: this process follows nothing yet.
    session_id = _cli_start(engine_wb, "survivor")
    gone_id = _cli_start(engine_wb, "soon-gone")
    # While no server was running, one container was removed behind the workbench's back.
    docker_ready.client().containers.get(engine_wb.engines.get(gone_id).container_id).remove(
        force=True)

    engines = engine_wb.engines  # the "restarted server"
    assert engines.followed_sessions == []
    EngineMonitor(engines).poll_once()
    assert session_id in engines.followed_sessions
    lost = engines.get(gone_id)
    assert lost.state == ERROR and "container is gone" in lost.error
    assert engines.audit_log(gone_id)[0]["action"] == "engine.reconcile"

    before = engines.get(session_id).status.get("fills", 0)
    _wait(lambda: engines.get(session_id).status.get("fills", 0) > before, timeout=60,
          what="new fills seen by the reattached service")
    engines.stop(session_id)
    assert engines.wait_for(session_id, (STOPPED, ERROR), timeout=60).state == STOPPED


def test_engine_crashing_at_start_ends_in_error_with_its_log(docker_ready, engine_catalog,
                                                             tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "engine_templates", templates)
    paper = json.loads((templates / "paper_trading.json").read_text())
    paper["node"]["data_clients"]["REPLAY"]["config"]["catalog_path"] = "/no/such/catalog"
    (templates / "paper_trading.json").write_text(json.dumps(paper))
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(engine_catalog),
                        templates_dir=templates)
    try:
        info = wb.engines.start("paper_trading", FAST)
        info = wb.engines.wait_for(info.session_id, (RUNNING, ERROR), timeout=60)
        assert info.state == ERROR
        assert "instruments not in the catalog at /no/such/catalog" in info.error
        assert "Last log lines:" in info.error
    finally:
        for s in wb.engines.list_sessions():
            if s.is_active:
                wb.engines.emergency_stop(s.session_id)
            elif s.container_id:  # Error is reported before the container has exited
                docker_ready.wait_exited(s.container_id, timeout=30)
        wb.engines.cleanup()


def test_missing_image_and_limits_out_of_range_are_refused_before_anything_runs(engine_wb):
    engines = engine_wb.engines
    with pytest.raises(ValidationError) as excinfo:
        engines.start("paper_trading", {**FAST, "cpu_limit": 64.0})
    assert any(p.startswith("cpu_limit: must be at most") for p in excinfo.value.problems)
    missing = EngineService(engine_wb.database, engine_wb.templates, engine_wb.catalog,
                            engine_wb.settings.engines_dir, engines.instance,
                            engine_wb.authorizer, image="nautilus-workbench-engine:not-built")
    with pytest.raises(EngineError, match="engine build-image"):
        missing.start("paper_trading", FAST)
    assert engines.list_sessions() == []
    outcomes = [a["outcome"] for a in engines.audit_log()]
    assert outcomes.count("failed") == 2  # both attempts are audited


def test_secrets_reach_only_the_container(engine_wb, docker_ready, monkeypatch):
    key, secret = "test-api-key-7f3a9c", "test-api-secret-b81d44"
    monkeypatch.setenv("BINANCE_API_KEY", key)
    monkeypatch.setenv("BINANCE_API_SECRET", secret)
    engines = engine_wb.engines
    with pytest.raises(PermissionDenied, match="Type the engine's name"):
        engines.start("live_engine", {"venue": "BINANCE"}, name="live-btc")
    info = engines.start("live_engine", {"venue": "BINANCE"}, name="live-btc", confirm="live-btc")
    try:
        env = docker_ready.client().containers.get(info.container_id).attrs["Config"]["Env"]
        assert f"BINANCE_API_KEY={key}" in env  # delivered to the engine...
        time.sleep(2)
        with engine_wb.database.engine.connect() as connection:
            # Values, as the database holds them (JSON columns come back as dicts on
            # PostgreSQL): a Row's repr elides long strings.
            dump = " ".join(value if isinstance(value, str) else json.dumps(value, default=str)
                            for table in ("engine_sessions", "audit_log")
                            for row in connection.exec_driver_sql(f"SELECT * FROM {table}")
                            for value in row)
        shown = json.dumps(engines.get(info.session_id).to_json()) + "\n".join(
            engines.logs(info.session_id, tail=0))
        for text in (dump, shown):  # ...and nowhere else
            assert key not in text and secret not in text
        assert '"api_key": "${BINANCE_API_KEY}"' in dump
    finally:
        engines.emergency_stop(info.session_id)


def test_docker_daemon_unreachable_is_reported_and_retried(engine_wb):
    down = EngineService(engine_wb.database, engine_wb.templates, engine_wb.catalog,
                         engine_wb.settings.engines_dir, "down", engine_wb.authorizer,
                         gateway=DockerGateway(base_url="unix:///tmp/no-docker-here.sock"))
    with pytest.raises(EngineError, match="Docker daemon is not reachable"):
        down.start("paper_trading", FAST)
    assert down.health()["docker"] == "unreachable"
    monitor = EngineMonitor(down, interval=5)
    first, second = monitor.poll_once(), monitor.poll_once()
    assert first.docker_reachable is False and "not reachable" in first.detail
    assert (first.next_poll_in, second.next_poll_in) == (5, 10)  # backoff
    assert down.list_sessions() == []

"""EngineManager and EmergencyStop driven through their parameters, over the real EngineService.

Only Docker is faked (the service's one seam, ``EngineService.docker``): a container "runs" the
way the engine bootstrap does, printing a Running status line and ending when it is stopped or
killed. Templates, validation, roles, the typed live confirmation, the state machine and the audit
log are the real service's. No browser; no event loop, so the tests call ``refresh()``.
"""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import panel as pn
import pytest

from components import EmergencyStop, EngineManager
from services.engine.monitor import EngineMonitor
from services.engine_runtime.bootstrap import STATUS_PREFIX
from services.identity.principal import Principal

STATUS = {"trader_state": "RUNNING", "strategies": {"EMACross-000": "RUNNING"}, "open_orders": 1,
          "orders": 7, "fills": 6, "positions": [{"instrument_id": "BTCUSDT-PERP.BINANCE",
                                                  "side": "LONG", "quantity": 0.1,
                                                  "avg_px_open": 43000.0}],
          "balances": {"SIM-001:USDT": 1000123.5}, "realized_pnl": 123.5, "unrealized_pnl": -4.25}
DOCKER_DOWN = "The Docker daemon is not reachable (connection refused). Start Docker."


class FakeDocker:
    """Containers that behave like the engine's: Running at once, exit when stopped/killed."""

    def __init__(self) -> None:
        self.containers: dict[str, dict] = {}
        self.reachable = True
        self.created: list[str] = []
        self.environments: list[dict] = []

    def ping(self):
        return (True, "ok") if self.reachable else (False, DOCKER_DOWN)

    def image_present(self, image):
        return True

    def create_engine(self, image, name, config, labels, environment, catalog, session_id):
        if not self.reachable:
            from services.errors import EngineError
            raise EngineError(DOCKER_DOWN)
        container_id = f"c-{session_id}"
        self.containers[container_id] = {"exited": threading.Event(), "code": None,
                                         "labels": labels, "name": name}
        self.created.append(name)
        self.environments.append(dict(environment))
        return SimpleNamespace(id=container_id)

    def start(self, container):
        pass

    def _exit(self, container_id, code):
        container = self.containers[container_id]
        if container["code"] is None:
            container["code"] = code
            container["exited"].set()

    def stop(self, container_id, timeout):
        self._exit(container_id, 0)

    def kill(self, container_id):
        running = self.containers[container_id]["code"] is None
        self._exit(container_id, 137)
        return running

    def wait_exited(self, container_id, timeout):
        self.containers[container_id]["exited"].wait(timeout)

    def exit_info(self, container_id):
        code = self.containers[container_id]["code"]
        return (code, False, False) if code is not None else (0, False, True)

    def log_stream(self, container_id, since=None):
        yield "2026-01-01T00:00:00.000000000Z engine log line: node starting"
        yield (f"2026-01-01T00:00:01.000000000Z {STATUS_PREFIX}"
               + json.dumps({"state": "Running", **STATUS}))
        self.containers[container_id]["exited"].wait(30)

    def log_tail(self, container_id, lines):
        return []

    def stats_stream(self, container_id):
        yield {"cpu_usage": 12.5, "memory_usage": 300 * 2**20, "memory_limit": 1024 * 2**20}
        self.containers[container_id]["exited"].wait(30)

    def list_engines(self, instance):
        if not self.reachable:
            from services.errors import EngineError
            raise EngineError(DOCKER_DOWN)
        return [{"id": cid, "name": c["name"], "session_id": c["labels"][
            "nautilus-workbench.session"], "status": "running" if c["code"] is None else "exited"}
            for cid, c in self.containers.items()]

    def remove_exited(self, instance):
        return []


UNIT_TESTER = Principal.user("unit-test", {"trader", "live_trader"})


@pytest.fixture
def docker(workbench) -> FakeDocker:
    fake = FakeDocker()
    workbench.engines.docker = fake
    yield fake
    for container_id in list(fake.containers):
        fake.kill(container_id)


@pytest.fixture
def manager(workbench, docker) -> EngineManager:
    return EngineManager(workbench=workbench, principal=UNIT_TESTER)


def _fast(manager: EngineManager) -> None:
    manager.engine_settings.replay_speed = 600
    manager.strategy_settings.fast_ema_period = 5
    manager.strategy_settings.slow_ema_period = 12


def _texts(manager: EngineManager) -> str:
    """Everything the component shows as text (markdown, alerts, HTML)."""
    panes = manager.__panel__().select(lambda o: isinstance(o, (pn.pane.Markdown, pn.pane.HTML,
                                                                pn.pane.Alert)))
    return "\n".join(str(p.object) for p in panes if p.visible)


def _start_paper(manager: EngineManager, workbench) -> str:
    _fast(manager)
    manager.param.trigger("start")
    manager.param.trigger("confirm")
    session_id = manager.selected
    workbench.engines.wait_for(session_id, ("Running",), timeout=10)
    return session_id


# -- configuration panel -----------------------------------------------------------------------
def test_needs_a_workbench():
    with pytest.raises(ValueError, match="workbench"):
        EngineManager()


def test_configuration_panel_follows_the_template(manager):
    # Assert: paper by default, with every declared parameter as a setting
    assert manager.template == "paper_trading"
    assert set(manager.param.template.objects) == {"paper_trading", "sandbox_engine",
                                                   "live_engine"}
    assert "Mode: PAPER" in _texts(manager)
    assert manager.engine_settings.memory_limit_mb == 1024
    assert manager.engine_settings.risk_engine is True
    assert manager.strategy_settings.fast_ema_period == 10
    cards = {c.title for c in manager.__panel__().select(pn.Card)}
    assert {"Strategy and data", "Venue and account", "Risk engine", "Resources",
            "Cache and logging", "Strategy parameters: EMA cross"} <= cards

    # Act
    manager.template = "live_engine"

    # Assert: live shows its venue settings (names only) and its own defaults
    assert "Mode: LIVE" in _texts(manager)
    assert manager.engine_settings.venue == "BINANCE"
    assert "`BINANCE_API_KEY` (secret)" in _texts(manager)
    assert manager.engine_settings.memory_limit_mb == 2048


def test_choosing_another_strategy_shows_its_parameters(manager):
    manager.engine_settings.strategy = "bb_mean_reversion"

    assert manager.strategy_template.name == "bb_mean_reversion"
    assert "fast_ema_period" not in manager.values()
    assert manager.values()["strategy"] == "bb_mean_reversion"


# -- validation -------------------------------------------------------------------------------
def test_invalid_settings_are_listed_per_field_and_nothing_starts(manager, docker, workbench):
    # Arrange
    manager.engine_settings.memory_limit_mb = 100
    manager.strategy_settings.fast_ema_period = 30  # not shorter than the slow one (20)

    # Act
    manager.param.trigger("start")

    # Assert
    assert manager.pending is None
    fields = {p.split(":")[0] for p in manager.problems}
    assert {"memory_limit_mb", "fast_ema_period"} <= fields
    text = _texts(manager)
    assert "**memory_limit_mb**" in text and "**fast_ema_period**" in text
    assert manager.message_kind == "danger"
    assert docker.created == []
    assert workbench.engines.list_sessions() == []


def test_fixing_the_settings_clears_the_problems(manager):
    manager.engine_settings.memory_limit_mb = 100
    manager.param.trigger("start")
    assert manager.problems

    manager.engine_settings.memory_limit_mb = 512
    manager.param.trigger("start")

    assert manager.problems == []
    assert manager.pending == "start"


# -- confirmation flow ------------------------------------------------------------------------
def test_start_waits_for_the_confirmation(manager, docker, workbench):
    # Act
    _fast(manager)
    manager.param.trigger("start")

    # Assert: validated, asked, nothing started yet
    assert manager.pending == "start"
    assert "Confirm start" in [b.name for b in manager.__panel__().select(pn.widgets.Button)]
    assert "Start **paper** engine" in _texts(manager)
    assert docker.created == []

    # Act: confirm
    manager.param.trigger("confirm")

    # Assert
    assert len(docker.created) == 1, manager.message
    info = workbench.engines.wait_for(manager.selected, ("Running",), timeout=10)
    assert info.state == "Running"
    assert info.parameters["replay_speed"] == 600 and info.parameters["slow_ema_period"] == 12
    assert info.actor == "unit-test"
    assert manager.pending is None and manager.message_kind == "success"


def test_cancel_drops_the_pending_start(manager, docker):
    manager.param.trigger("start")
    manager.param.trigger("cancel")
    manager.param.trigger("confirm")  # a stray confirm afterwards does nothing

    assert manager.pending is None
    assert docker.created == []


def test_settings_changed_after_validation_are_not_started(manager, docker, workbench):
    # The confirmation is for what was validated: later edits need a new validation.
    manager.param.trigger("start")
    manager.engine_settings.memory_limit_mb = 100

    manager.param.trigger("confirm")

    assert workbench.engines.get(manager.selected).memory_limit_mb == 1024


def test_running_engine_shows_state_metrics_and_log(manager, workbench):
    # Arrange
    session_id = _start_paper(manager, workbench)
    workbench.engines.record_metrics()  # what the server's monitor does every 5 s

    # Act
    manager.refresh()

    # Assert
    text = _texts(manager)
    assert "Running" in text and "RUNNING" in text and "EMACross-000 (RUNNING)" in text
    assert "123.50" in text and "-4.25" in text
    assert list(manager._positions.object["side"]) == ["LONG"]
    assert list(manager._balances.object["account"]) == ["SIM-001:USDT"]
    assert manager._cpu_source.data["cpu"] == [12.5]
    assert manager._memory_source.data["memory"] == [300.0]
    assert manager._memory_source.data["limit"] == [1024.0]
    assert list(manager._balances.object["total"]) == ["1,000,123.50"]
    assert "node starting" in manager._log_view.object
    table = manager._table.value
    assert table["Session"].tolist() == [session_id] and "Running" in table["State"].iloc[0]


def test_log_search_filters_lines(manager, workbench):
    _start_paper(manager, workbench)

    manager.log_search = "no such text"
    assert "no matching log lines" in manager._log_view.object

    manager.log_search = "NODE STARTING"
    assert "node starting" in manager._log_view.object


def test_stop_and_emergency_stop_need_confirmation(manager, workbench):
    # Arrange
    session_id = _start_paper(manager, workbench)

    # Act: ask to stop, then cancel
    manager.param.trigger("stop")
    assert manager.pending == "stop"
    manager.param.trigger("cancel")

    # Assert: still running
    assert workbench.engines.get(session_id).state == "Running"

    # Act: emergency stop, confirmed
    manager.param.trigger("kill")
    assert manager.pending == "kill"
    manager.param.trigger("confirm")

    # Assert
    info = workbench.engines.get(session_id)
    assert (info.state, info.final_state) == ("Stopped", "Killed")
    assert "was killed" in manager.message
    manager.refresh()
    actions = manager._audit.value["Action"].tolist()
    assert actions[:2] == ["emergency_stop", "start"]


def test_graceful_stop_after_confirmation(manager, workbench):
    session_id = _start_paper(manager, workbench)

    manager.param.trigger("stop")
    manager.param.trigger("confirm")

    info = workbench.engines.wait_for(session_id, ("Stopped",), timeout=10)
    assert info.final_state == "Stopped"


def test_stopping_a_stopped_engine_is_refused_with_a_message(manager, workbench):
    session_id = _start_paper(manager, workbench)
    workbench.engines.emergency_stop(session_id, principal=UNIT_TESTER)

    manager.param.trigger("stop")
    manager.param.trigger("confirm")

    assert manager.message_kind == "danger"
    assert "nothing to stop" in manager.message


# -- live typed confirmation ------------------------------------------------------------------
@pytest.fixture
def binance_keys(monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "unit-test-key-123")
    monkeypatch.setenv("BINANCE_API_SECRET", "unit-test-secret-456")


def test_live_start_shows_the_risks_and_needs_the_typed_name(manager, docker, workbench,
                                                             binance_keys):
    # Arrange
    manager.template = "live_engine"
    manager.engine_name = "live-btc"

    # Act: validate
    manager.param.trigger("start")

    # Assert: a red warning, a field for the name
    assert manager.pending == "start"
    warnings = [a for a in manager.__panel__().select(pn.pane.Alert)
                if "live-warning" in a.css_classes]
    assert len(warnings) == 1 and warnings[0].alert_type == "danger"
    assert "real money" in warnings[0].object and "Type **live-btc**" in warnings[0].object
    assert any(w.name == "Type the engine's name to confirm"
               for w in manager.__panel__().select(pn.widgets.TextInput))

    # Act: confirm with a wrong name; the service refuses
    manager.confirm_text = "live-eth"
    manager.param.trigger("confirm")

    # Assert
    assert docker.created == []
    assert manager.message.startswith("Refused:") and "Type the engine's name" in manager.message
    refused = workbench.engines.audit_log()[0]
    assert (refused["action"], refused["outcome"]) == ("engine.start", "refused")

    # Act: again, with the right name
    manager.param.trigger("start")
    manager.confirm_text = "live-btc"
    manager.param.trigger("confirm")

    # Assert: started; the keys went only into the container's environment
    assert docker.created and docker.environments[0]["BINANCE_API_KEY"] == "unit-test-key-123"
    info = workbench.engines.get(manager.selected)
    assert (info.name, info.mode) == ("live-btc", "live")
    assert "unit-test-key-123" not in json.dumps(info.to_json())
    assert "unit-test-key-123" not in _texts(manager)


def test_live_without_role_is_refused(workbench, docker, binance_keys):
    manager = EngineManager(workbench=workbench, principal=Principal.user("bob", {"trader"}))
    manager.template = "live_engine"
    manager.engine_name = "live-btc"

    manager.param.trigger("start")
    manager.confirm_text = "live-btc"
    manager.param.trigger("confirm")

    assert docker.created == []
    assert "live_trader role" in manager.message


# -- Docker unreachable -----------------------------------------------------------------------
def test_docker_down_is_shown_with_the_monitors_retry(workbench, docker):
    # Arrange: the server's monitor polls once while the daemon is away
    docker.reachable = False
    monitor = EngineMonitor(workbench.engines)
    monitor.poll_once()

    # Act
    manager = EngineManager(workbench=workbench, monitor=monitor)

    # Assert
    alerts = [a for a in manager.__panel__().select(pn.pane.Alert)
              if "docker-status" in a.css_classes]
    assert alerts[0].visible and alerts[0].alert_type == "danger"
    assert "Docker is not reachable" in alerts[0].object
    assert "1 failed attempt(s), next in 5 s" in alerts[0].object
    assert "connection refused" in alerts[0].object

    # Act: a start attempt says why it failed, no traceback
    manager.param.trigger("start")
    manager.param.trigger("confirm")
    assert manager.message_kind == "danger" and "not reachable" in manager.message
    assert "Traceback" not in _texts(manager)

    # Act: Docker back
    docker.reachable = True
    monitor.poll_once()
    manager.refresh()
    assert not alerts[0].visible


def test_without_a_monitor_the_component_asks_the_service(workbench, docker):
    docker.reachable = False

    manager = EngineManager(workbench=workbench)

    assert "Docker is not reachable" in manager.docker_status


# -- emergency stop on every page -------------------------------------------------------------
def test_emergency_stop_kills_every_active_engine_after_confirmation(workbench, docker,
                                                                    manager):
    # Arrange: two engines running
    first = _start_paper(manager, workbench)
    manager.engine_name = "second"
    second = _start_paper(manager, workbench)
    button = EmergencyStop(workbench=workbench, principal=UNIT_TESTER)

    # Act: arm, then cancel
    button.param.trigger("arm")
    assert button.armed and "Kill 2 active engine(s)?" in button.message
    button.param.trigger("cancel")
    button.param.trigger("confirm")

    # Assert: nothing killed
    assert {workbench.engines.get(s).state for s in (first, second)} == {"Running"}

    # Act: arm and confirm
    button.param.trigger("arm")
    button.param.trigger("confirm")

    # Assert
    for session_id in (first, second):
        info = workbench.engines.get(session_id)
        assert (info.state, info.final_state) == ("Stopped", "Killed")
    assert button.message.startswith("Emergency stop: killed 2 engine(s)")
    assert first in button.message and second in button.message
    audit = [e for e in workbench.engines.audit_log() if e["action"] == "engine.emergency_stop"]
    assert {e["actor"] for e in audit} == {"unit-test"} and len(audit) == 2


def test_a_failed_emergency_stop_is_never_recorded_as_a_stop(manager, workbench, docker,
                                                              monkeypatch):
    # Arrange: a running engine, then Docker goes away.
    from services.errors import EngineError

    session_id = _start_paper(manager, workbench)
    container_id = workbench.engines.get(session_id).container_id

    def unreachable(container):
        raise EngineError(DOCKER_DOWN)

    monkeypatch.setattr(docker, "kill", unreachable)

    # Act: the emergency stop fails; later the container dies of something else (SIGKILL
    # from outside, exit 137) while the workbench watches.
    with pytest.raises(EngineError, match="not reachable"):
        workbench.engines.emergency_stop(session_id, principal=UNIT_TESTER)
    docker._exit(container_id, 137)
    info = workbench.engines.wait_for(session_id, ("Stopped", "Error"), timeout=10)

    # Assert: an Error from outside, not the "Killed" of a successful emergency stop; the
    # failed attempt is audited as failed.
    assert info.state == "Error" and info.final_state != "Killed"
    assert "killed from outside the workbench" in info.error
    outcomes = [e.outcome for e in workbench.audit.entries("engine.emergency_stop")]
    assert outcomes == ["failed"]

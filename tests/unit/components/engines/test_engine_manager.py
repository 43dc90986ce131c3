"""The Engines page's components driven through their parameters, over the real EngineService
with Docker stood in for (see conftest.py). No browser.

The start form: template settings, validation, the confirmation (typed for live engines). The
detail view: state, log, plots, stop and the emergency tiers. The manager: Docker's health and
the list, form and detail wired together. The header's emergency stop.
"""

from __future__ import annotations

import json

import panel as pn
import pytest

from components import ConfirmAction, EmergencyStop, EngineManager
from services.engine.monitor import EngineMonitor
from services.identity.principal import Principal

UNIT_TESTER = Principal.user("unit-test", {"trader", "live_trader"})
DOCKER_DOWN = "The Docker daemon is not reachable (connection refused). Start Docker."


@pytest.fixture
def manager(workbench, docker) -> EngineManager:
    return EngineManager(workbench=workbench, principal=UNIT_TESTER)


def _fast(manager: EngineManager) -> None:
    form = manager.start_form
    form.engine_fields.values.replay_speed = "600"
    form.strategy_fields.values.fast_ema_period = "5"
    form.strategy_fields.values.slow_ema_period = "12"


def _texts(component) -> str:
    """Everything a component shows as text (markdown, alerts, HTML)."""
    panes = component.__panel__().select(lambda o: isinstance(o, (pn.pane.Markdown, pn.pane.HTML,
                                                                  pn.pane.Alert)))
    return "\n".join(str(p.object) for p in panes if p.visible)


def _start_paper(manager: EngineManager, workbench, until) -> str:
    _fast(manager)
    manager.start_form.param.trigger("start")
    manager.start_form.confirmation.param.trigger("confirm")
    session_id = manager.selected
    workbench.engines.wait_for(session_id, ("Running",), timeout=10)
    until(lambda: manager.live.engines.get(session_id)
          and manager.live.engines[session_id].state == "Running", "the board to see Running")
    return session_id


# -- the confirmation widget -------------------------------------------------------------------
def test_confirm_action_runs_its_action_with_what_was_typed_once():
    # Arrange
    done = []
    confirm = ConfirmAction()
    confirm.ask("Do it?", lambda typed: done.append(typed), expected="live-btc",
                warning="Real money.")

    # Act
    confirm.typed = "live-btc"
    confirm.param.trigger("confirm")
    confirm.param.trigger("confirm")  # a second click after it ran does nothing

    # Assert
    assert done == ["live-btc"] and not confirm.pending


def test_confirm_action_cancel_drops_the_action():
    done = []
    confirm = ConfirmAction()
    confirm.ask("Do it?", lambda typed: done.append(typed))
    confirm.param.trigger("cancel")
    confirm.param.trigger("confirm")
    assert done == [] and not confirm.__panel__().visible


# -- the start form ---------------------------------------------------------------------------
def test_configuration_panel_follows_the_template(manager):
    form = manager.start_form

    # Assert: paper by default, with every declared parameter as a setting
    assert form.template == "paper_trading"
    assert set(form.param.template.objects) == {"paper_trading", "sandbox_engine", "live_engine"}
    assert "Mode: PAPER" in _texts(form)
    assert form.engine_fields.values.memory_limit_mb == "1024"
    assert form.engine_fields.values.risk_engine is True
    assert form.strategy_fields.values.fast_ema_period == "10"
    cards = {c.title for c in form.__panel__().select(pn.Card)}
    assert {"Strategy and data", "Venue and account", "Risk engine", "Resources",
            "Cache and logging", "Risk limits", "Strategy parameters: EMA cross"} <= cards
    # The strategy menu reads the strategies' titles, as on the Backtest page.
    menus = [w for w in form.__panel__().select(pn.widgets.Select) if w.name == "Strategy"]
    assert menus and menus[0].options["EMA cross (ema_cross)"] == "ema_cross"

    # Act
    form.template = "live_engine"

    # Assert: live shows its venue settings (names only) and its own defaults
    assert "Mode: LIVE" in _texts(form)
    assert form.engine_fields.values.venue == "BINANCE"
    assert "`BINANCE_API_KEY` (secret)" in _texts(form)
    assert form.engine_fields.values.memory_limit_mb == "2048"
    assert form.risk_settings.max_orders_per_minute == 120  # live's own default limit


def test_choosing_another_strategy_shows_its_parameters(manager):
    form = manager.start_form
    form.engine_fields.values.strategy = "bb_mean_reversion"

    assert form.strategy_template.name == "bb_mean_reversion"
    assert "fast_ema_period" not in form.values()
    assert form.values()["strategy"] == "bb_mean_reversion"


def test_risk_limits_set_in_the_form_reach_the_engines_configuration(manager, workbench, until):
    # Arrange
    form = manager.start_form
    form.risk_settings.max_daily_loss = 250
    form.risk_settings.max_daily_loss__action = "REDUCING"

    # Act
    session_id = _start_paper(manager, workbench, until)

    # Assert
    limit = workbench.engines.get(session_id).risk_limits["max_daily_loss"]
    assert (limit["value"], limit["action"]) == (250.0, "REDUCING")


def test_invalid_settings_are_listed_per_field_and_nothing_starts(manager, docker, workbench):
    form = manager.start_form
    form.engine_fields.values.memory_limit_mb = "100"  # below the template's 256 MiB

    # Assert: the field says so as it is typed, and Start refuses it
    assert form.engine_fields.problems["memory_limit_mb"] == (
        "Memory limit: must be >= 256, was '100'")
    form.param.trigger("start")
    assert not form.confirmation.pending
    assert form.problems == ["Memory limit: must be >= 256, was '100'"]
    assert "Memory limit: must be >= 256" in _texts(form)

    # Act: valid fields, but a rule across two of them (the service's check)
    form.engine_fields.values.memory_limit_mb = "512"
    form.strategy_fields.values.fast_ema_period = "30"  # not shorter than the slow one (20)
    form.param.trigger("start")

    # Assert
    assert not form.confirmation.pending
    assert {p.split(":")[0] for p in form.problems} == {"fast_ema_period"}
    assert "**fast_ema_period**" in _texts(form)
    assert form.outcome.message_kind == "danger"
    assert docker.created == [] and workbench.engines.list_sessions() == []


def test_a_strategy_field_is_checked_as_typed_and_a_bad_value_never_starts(manager, docker,
                                                                              workbench):
    form = manager.start_form

    # Act: a whole-number field given a fraction
    form.strategy_fields.values.fast_ema_period = "7.5"

    # Assert: the error is under the field at once, and Start refuses it instead of using 10
    assert "Fast EMA period" in form.strategy_fields.problems["fast_ema_period"]
    assert "7.5" in _texts(form.strategy_fields)
    form.param.trigger("start")
    assert not form.confirmation.pending
    assert any("Fast EMA period" in p for p in form.problems)
    assert docker.created == [] and workbench.engines.list_sessions() == []

    # Act: fixed
    form.strategy_fields.values.fast_ema_period = "8"

    # Assert
    assert form.strategy_fields.problems == {}
    assert form.values()["fast_ema_period"] == 8


def test_fixing_the_settings_clears_the_problems(manager):
    form = manager.start_form
    form.engine_fields.values.memory_limit_mb = "100"
    form.param.trigger("start")
    assert form.problems

    form.engine_fields.values.memory_limit_mb = "512"
    form.param.trigger("start")

    assert form.problems == [] and form.confirmation.pending


def test_start_waits_for_the_confirmation(manager, docker, workbench):
    form = manager.start_form
    _fast(manager)

    form.param.trigger("start")

    assert form.confirmation.pending
    assert "Confirm start" in [b.name for b in form.__panel__().select(pn.widgets.Button)]
    assert "Start **paper** engine" in _texts(form)
    assert docker.created == []

    form.confirmation.param.trigger("confirm")

    assert len(docker.created) == 1, form.outcome.message
    info = workbench.engines.wait_for(manager.selected, ("Running",), timeout=10)
    assert info.parameters["replay_speed"] == 600 and info.parameters["slow_ema_period"] == 12
    assert info.actor == "unit-test"
    assert not form.confirmation.pending and form.outcome.message_kind == "success"


def test_cancel_drops_the_pending_start(manager, docker):
    form = manager.start_form
    form.param.trigger("start")
    form.confirmation.param.trigger("cancel")
    form.confirmation.param.trigger("confirm")

    assert not form.confirmation.pending and docker.created == []


def test_settings_changed_after_validation_are_not_started(manager, workbench):
    # The confirmation is for what was validated: later edits need a new validation.
    form = manager.start_form
    form.param.trigger("start")
    form.engine_fields.values.memory_limit_mb = "100"

    form.confirmation.param.trigger("confirm")

    assert workbench.engines.get(manager.selected).memory_limit_mb == 1024


@pytest.fixture
def binance_keys(monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "unit-test-key-123")
    monkeypatch.setenv("BINANCE_API_SECRET", "unit-test-secret-456")


def test_live_start_shows_the_risks_and_needs_the_typed_name(manager, docker, workbench,
                                                             binance_keys):
    form = manager.start_form
    form.template = "live_engine"
    form.engine_name = "live-btc"

    # Act: validate
    form.param.trigger("start")

    # Assert: a red warning, a field for the name
    confirmation = form.confirmation
    assert confirmation.pending and confirmation.expected == "live-btc"
    warning = [a for a in form.__panel__().select(pn.pane.Alert)
               if "confirm-warning" in a.css_classes and a.visible]
    assert len(warning) == 1 and warning[0].alert_type == "danger"
    assert "real money" in warning[0].object and "Type **live-btc**" in warning[0].object

    # Act: confirm with a wrong name; the service refuses and audits it
    confirmation.typed = "live-eth"
    confirmation.param.trigger("confirm")

    # Assert
    assert docker.created == []
    assert form.outcome.message.startswith("Refused:")
    assert "Type the engine's name" in form.outcome.message
    refused = workbench.engines.audit_log()[0]
    assert (refused["action"], refused["outcome"]) == ("engine.start", "refused")

    # Act: again, with the right name
    form.param.trigger("start")
    confirmation.typed = "live-btc"
    confirmation.param.trigger("confirm")

    # Assert: started; the keys went only into the container's environment
    assert docker.created and docker.environments[0]["BINANCE_API_KEY"] == "unit-test-key-123"
    info = workbench.engines.get(manager.selected)
    assert (info.name, info.mode) == ("live-btc", "live")
    assert "unit-test-key-123" not in json.dumps(info.to_json())
    assert "unit-test-key-123" not in _texts(manager)


def test_live_without_role_is_refused(workbench, docker, binance_keys):
    manager = EngineManager(workbench=workbench, principal=Principal.user("bob", {"trader"}))
    form = manager.start_form
    form.template = "live_engine"
    form.engine_name = "live-btc"

    form.param.trigger("start")
    form.confirmation.typed = "live-btc"
    form.confirmation.param.trigger("confirm")

    assert docker.created == []
    assert "live_trader role" in form.outcome.message


# -- the detail view --------------------------------------------------------------------------
def test_running_engine_shows_state_feed_risk_positions_plots_and_log(manager, workbench,
                                                                      until):
    # Arrange
    session_id = _start_paper(manager, workbench, until)
    detail = manager.detail

    # Assert: what the board got from the status line and the stats stream
    text = _texts(detail)
    assert "Running" in text and "EMACross-000 (RUNNING)" in text and "ACTIVE" in text
    assert "123.50" in text and "-4.25" in text
    # A gain in the gain colour, a loss in the loss colour (components/theme.py).
    assert '<span style="color:#2e9d4f">123.50</span>' in detail._state.object
    assert '<span style="color:#d62728">-4.25</span>' in detail._state.object
    until(lambda: detail._cpu.data["cpu"] == [12.5], "the resource sample in the plot")
    assert detail._memory.data["memory"] == [300.0] and detail._memory.data["limit"] == [1024.0]
    assert "node starting" in detail._log.object
    feed = detail.feed._table.value
    assert feed["Instrument"].tolist() == ["BTCUSDT-PERP.BINANCE"]
    assert feed["Worst (ms)"].tolist() == [9.0]
    risk = detail.risk._table.value.set_index("Limit")
    assert risk.loc["max_daily_loss", "Now"] == "12" and risk.loc["max_daily_loss", "State"] == "ok"
    positions = detail.blotter._positions.value
    assert positions["Unrealized PnL"].tolist() == ["10"]
    table = manager.engine_list._table.value
    assert table["Session"].tolist() == [session_id] and "Running" in table["State"].iloc[0]


def test_log_search_filters_lines(manager, workbench, until):
    _start_paper(manager, workbench, until)
    detail = manager.detail

    detail.log_search = "no such text"
    assert "no matching log lines" in detail._log.object

    detail.log_search = "NODE STARTING"
    assert "node starting" in detail._log.object


def test_stop_and_kill_need_confirmation(manager, workbench, until):
    session_id = _start_paper(manager, workbench, until)
    detail = manager.detail

    # Act: ask to stop, then cancel
    detail.param.trigger("stop")
    assert detail.confirmation.pending
    detail.confirmation.param.trigger("cancel")
    assert workbench.engines.get(session_id).state == "Running"

    # Act: kill, confirmed
    detail.param.trigger("kill")
    assert "SIGKILL" in detail.confirmation.summary
    detail.confirmation.param.trigger("confirm")

    # Assert
    info = workbench.engines.get(session_id)
    assert (info.state, info.final_state) == ("Stopped", "Killed")
    assert detail.outcome.message == "Killed."
    actions = detail._audit.value["Action"].tolist()
    assert actions[:2] == ["emergency_stop", "start"]


def test_opening_the_audit_trail_reads_what_another_process_recorded(manager, workbench, until):
    # Arrange: a running engine; another process (the CLI) records an action on it, which
    # changes nothing this process follows.
    _start_paper(manager, workbench, until)
    detail = manager.detail
    target = detail._audit.value["Engine"].iloc[0]
    workbench.audit.record(Principal.user("cli-user", {"trader"}), "engine.set_trading", target,
                           "accepted", "HALTED", "Running", "Running")
    assert "set_trading" not in detail._audit.value["Action"].tolist()

    # Act: the user opens the Audit trail tab
    tabs = detail.__panel__().select(pn.Tabs)[0]
    tabs.active = [title for title, _ in zip(tabs._names, tabs, strict=True)].index("Audit trail")

    # Assert
    first = detail._audit.value.iloc[0]
    assert (first["Action"], first["Actor"], first["Detail"]) == ("set_trading", "cli-user",
                                                                   "HALTED")


def test_graceful_stop_after_confirmation(manager, workbench, until):
    session_id = _start_paper(manager, workbench, until)

    manager.detail.param.trigger("stop")
    manager.detail.confirmation.param.trigger("confirm")

    assert workbench.engines.wait_for(session_id, ("Stopped",), timeout=10).final_state == "Stopped"


def test_stopping_a_stopped_engine_is_refused_with_a_message(manager, workbench, until):
    session_id = _start_paper(manager, workbench, until)
    workbench.engines.emergency_stop(session_id, principal=UNIT_TESTER)

    manager.detail.param.trigger("stop")
    manager.detail.confirmation.param.trigger("confirm")

    assert manager.detail.outcome.message_kind == "danger"
    assert "nothing to stop" in manager.detail.outcome.message


def test_with_no_engine_selected_no_action_looks_active(manager, workbench, until):
    buttons = manager.detail._buttons

    # Nothing selected yet: every action is disabled and says why.
    assert manager.detail.session_id is None
    assert all(b.disabled for b in buttons.values())
    assert buttons["kill"].description == "Select an engine in the list first."

    # Selecting a running engine enables what applies to it.
    _start_paper(manager, workbench, until)
    assert not buttons["stop"].disabled and not buttons["kill"].disabled


def test_a_stopped_engine_offers_restart_and_kill_but_not_stop(manager, workbench, until):
    session_id = _start_paper(manager, workbench, until)
    buttons = manager.detail._buttons
    assert not buttons["stop"].disabled
    assert "Last reported while the engine ran" not in manager.detail._state.object

    workbench.engines.emergency_stop(session_id, principal=UNIT_TESTER)
    until(lambda: manager.live.engines[session_id].state == "Stopped", "the engine Stopped")

    assert buttons["stop"].disabled and buttons["halt"].disabled
    assert not buttons["restart"].disabled and not buttons["kill"].disabled
    # Its node's last status (RUNNING, ACTIVE) is said to be from before it stopped.
    until(lambda: "Last reported while the engine ran" in manager.detail._state.object,
          "the stopped engine's status marked as its last")


def test_the_emergency_tiers_send_halt_cancel_and_flatten_after_confirmation(manager, workbench,
                                                                              docker, until):
    _start_paper(manager, workbench, until)
    detail = manager.detail

    for event in ("halt", "cancel_all", "flatten"):
        detail.param.trigger(event)
        detail.confirmation.param.trigger("confirm")

    sent = [c for c, _ in docker.engine.requests if c not in ("orders", "fills", "positions")]
    assert sent == ["set_trading_state", "cancel_all", "flatten"]
    assert docker.engine.requests[[c for c, _ in docker.engine.requests].index(
        "set_trading_state")][1] == {"state": "HALTED"}
    actions = [e["action"] for e in workbench.engines.audit_log()]
    assert {"engine.trading_state", "engine.cancel_all", "engine.flatten"} <= set(actions)


def test_pause_and_trading_state_act_on_the_chosen_strategy_and_state(manager, workbench,
                                                                       docker, until):
    _start_paper(manager, workbench, until)
    detail = manager.detail
    assert detail.param.strategy.objects == ["EMACross-000"]

    detail.param.trigger("pause")
    detail.confirmation.param.trigger("confirm")
    detail.trading_state = "REDUCING"
    detail.param.trigger("set_trading")
    detail.confirmation.param.trigger("confirm")

    assert ("strategy", {"action": "pause", "strategy_id": "EMACross-000"}) in \
        docker.engine.requests
    assert ("set_trading_state", {"state": "REDUCING"}) in docker.engine.requests


def test_a_breach_shows_the_red_risk_banner(manager, workbench, until):
    from services import events

    session_id = _start_paper(manager, workbench, until)
    status = dict(manager.live.engines[session_id].status)
    status["risk"] = {**status["risk"], "breached": [{
        "limit": "max_daily_loss", "message": "loss today 120.00 USDT is above max_daily_loss "
                                              "100.00 USDT: trading HALTED"}]}
    status["trading_state"] = "HALTED"

    # Act: the next status line says so
    workbench.hub.publish(events.ENGINE_STATUS, session_id, {"session_id": session_id,
                                                             "status": status})

    # Assert
    banner = manager.detail._banner
    until(lambda: banner.visible, "the banner")
    assert banner.alert_type == "danger" and "risk-banner" in banner.css_classes
    assert "RISK LIMIT BREACHED" in banner.object and "max_daily_loss" in banner.object


# -- Docker's health ----------------------------------------------------------------------------
def test_docker_down_is_shown_with_the_monitors_retry(workbench, docker):
    docker.reachable = False
    monitor = EngineMonitor(workbench.engines)
    monitor.poll_once()

    manager = EngineManager(workbench=workbench, monitor=monitor)

    alert = [a for a in manager.__panel__().select(pn.pane.Alert)
             if "docker-status" in a.css_classes][0]
    assert alert.visible and alert.alert_type == "danger"
    assert "Docker is not reachable" in alert.object
    assert "1 failed attempt(s), next in 5 s" in alert.object
    assert "connection refused" in alert.object

    # A start attempt says why it failed, no traceback
    manager.start_form.param.trigger("start")
    manager.start_form.confirmation.param.trigger("confirm")
    assert manager.start_form.outcome.message_kind == "danger"
    assert "not reachable" in manager.start_form.outcome.message
    assert "Traceback" not in _texts(manager)

    # Docker back
    docker.reachable = True
    monitor.poll_once()
    manager.refresh_docker()
    assert not alert.visible


def test_without_a_monitor_the_component_asks_the_service(workbench, docker):
    docker.reachable = False
    assert "Docker is not reachable" in EngineManager(workbench=workbench).docker_status


# -- the emergency stop on every page ----------------------------------------------------------
def test_emergency_stop_kills_every_active_engine_after_confirmation(workbench, docker, manager,
                                                                    until):
    first = _start_paper(manager, workbench, until)
    manager.start_form.engine_name = "second"
    second = _start_paper(manager, workbench, until)
    button = EmergencyStop(workbench=workbench, principal=UNIT_TESTER)

    # Act: arm, then cancel
    button.param.trigger("arm")
    assert button.armed and "Kill 2 active engine(s)?" in button.message
    button.param.trigger("cancel")
    button.param.trigger("confirm")
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


def test_in_a_server_arming_counts_the_engines_of_the_live_state_without_the_database(
        workbench, docker, manager, until, monkeypatch):
    first = _start_paper(manager, workbench, until)
    workbench.live.start(thread=False)
    assert first in workbench.live.engines
    button = EmergencyStop(workbench=workbench, principal=UNIT_TESTER)

    def no_database(*_args, **_kwargs):
        raise AssertionError("arming read the database")

    monkeypatch.setattr(workbench.engines, "list_sessions", no_database)
    button.param.trigger("arm")

    assert button.armed and "Kill 1 active engine(s)?" in button.message
    workbench.live.stop()


def test_the_stopped_state_of_a_kill_arrives_with_its_audit_record(manager, workbench, docker,
                                                                   until):
    # Arrange: note, as each state is published, what the audit trail already holds (the
    # engine detail reads it when the state changes, and not again).
    from services import events

    session_id = _start_paper(manager, workbench, until)
    seen = []

    def on_status():
        for event in subscription.drain():
            if "engine" in event.data and event.data["engine"]["state"] == "Stopped":
                seen.append([e["action"] for e in workbench.engines.audit_log(session_id)])

    subscription = workbench.hub.subscribe([events.ENGINE_STATUS], session_id, notify=on_status)
    # Let the log follower see the exit first, as it may when the kill lands.
    docker_kill = docker.kill

    def kill_and_let_the_follower_run(container_id):
        running = docker_kill(container_id)
        until(lambda: session_id not in workbench.engines._watches, "the follower to see the exit")
        return running

    docker.kill = kill_and_let_the_follower_run

    # Act
    workbench.engines.emergency_stop(session_id, principal=UNIT_TESTER)

    # Assert: Stopped was published once, with the kill already on record
    assert len(seen) == 1 and "engine.emergency_stop" in seen[0]
    assert workbench.engines.get(session_id).final_state == "Killed"
    assert not workbench.engines.is_being_killed(session_id)


def test_a_failed_emergency_stop_is_never_recorded_as_a_stop(manager, workbench, docker, until,
                                                              monkeypatch):
    # Arrange: a running engine, then Docker goes away.
    from services.errors import EngineError

    session_id = _start_paper(manager, workbench, until)
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


def test_a_viewer_sees_start_and_emergency_stop_disabled_with_the_reason(workbench, docker):
    viewer = Principal.user("vera", {"viewer"})

    form = EngineManager(workbench=workbench, principal=viewer).start_form
    stop = EmergencyStop(workbench=workbench, principal=viewer)

    assert form._start.disabled and "start engines" in form._start.description
    assert "start engines" in _texts(form)
    assert stop._arm.disabled and "emergency-stop engines" in stop._arm.description


def test_a_paper_trader_may_start_paper_but_not_live_engines(workbench, docker):
    form = EngineManager(workbench=workbench,
                         principal=Principal.user("tom", {"trader"})).start_form

    paper_allowed = not form._start.disabled
    form.template = "live_engine"

    assert paper_allowed
    assert form._start.disabled and "live" in form._start.description

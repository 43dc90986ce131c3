"""EngineCommands over a real SQLite database, with Docker's exec stream stood in for (the
command channel's one seam): authorisation, state checks, audit, answers mapped to errors."""

from __future__ import annotations

import json
import queue
from datetime import UTC, datetime

import pytest

from services.audit import AuditLog
from services.db import Database, EngineSessionRow
from services.engine.commands import EngineCommands
from services.engine.service import EngineService
from services.errors import (
    CommandRefused,
    EngineStateConflict,
    PermissionDenied,
    ValidationError,
)
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.templates import TemplateService
from tests.conftest import REPO_ROOT

CONTAINER = "c" * 64


class Session:
    def __init__(self, engine):
        self.engine = engine
        self.out: queue.Queue = queue.Queue()

    def write(self, data):
        for line in data.splitlines():
            request = json.loads(line)
            answer = self.engine(request["command"], request["args"])
            self.out.put((1, json.dumps({"id": request["id"], **answer}).encode() + b"\n"))

    def frames(self):
        while (item := self.out.get()) is not None:
            yield item

    def close(self):
        self.out.put(None)


class Gateway:
    """Only what the command channel uses; ``requests`` records what reached the engine."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.answers: dict[str, dict] = {}

    def engine(self, command, args):
        self.requests.append((command, args))
        return self.answers.get(command, {"ok": True, "result": {}})

    def open_exec(self, container_id, command):
        return Session(self.engine)


@pytest.fixture
def setup(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'wb.db'}")
    db.upgrade()
    audit = AuditLog(db)
    gateway = Gateway()
    engines = EngineService(db, TemplateService(REPO_ROOT / "engine_templates"), lambda: None,
                            tmp_path / "engines", "test", Authorizer(audit, Principal.local()),
                            gateway=gateway)
    yield engines, EngineCommands(engines), gateway
    db.dispose()


def _session(engines, state="Running", mode="paper", risk=None, name="paper-btc"):
    session_id = f"s{len(engines.list_sessions())}"
    with engines.database.session() as session:
        session.add(EngineSessionRow(
            session_id=session_id, name=name, template="paper_trading", mode=mode,
            config={"parameters": {}, "strategy_parameters": {}, "risk": risk or {}},
            state=state, container_id=CONTAINER, container_name=f"nautilus-engine-{session_id}",
            image="img", actor="local", created_at=datetime.now(UTC)))
    return session_id


def _last_audit(engines):
    return engines.audit.entries("engine.")[0]


def test_an_order_reaches_the_engine_and_is_audited_with_its_outcome(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)
    gateway.answers["submit_order"] = {"ok": True, "result": {
        "answer": "OrderAccepted", "order": {"client_order_id": "O-1", "status": "ACCEPTED"}}}

    # Act
    result = commands.submit_order(session_id, "BTC.X", "buy", "0.5", order_type="LIMIT",
                                   price="100.5", tif="IOC")

    # Assert
    assert gateway.requests == [("submit_order", {
        "instrument_id": "BTC.X", "side": "buy", "quantity": "0.5", "type": "LIMIT",
        "price": "100.5", "tif": "IOC", "reduce_only": False})]
    assert result.result["order"]["client_order_id"] == "O-1"
    entry = _last_audit(engines)
    assert (entry.action, entry.outcome) == ("engine.order", "ok")
    assert entry.detail == "BUY 0.5 BTC.X LIMIT @ 100.5 IOC: O-1 ACCEPTED"


def test_a_denied_order_raises_with_the_risk_engines_reason_and_is_audited_denied(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)
    gateway.answers["submit_order"] = {"ok": True, "result": {
        "answer": "OrderDenied", "reason": "TradingState.HALTED",
        "order": {"client_order_id": "O-2", "status": "DENIED"}}}

    with pytest.raises(CommandRefused) as excinfo:
        commands.submit_order(session_id, "BTC.X", "BUY", "1")

    assert str(excinfo.value) == ("BUY 1 BTC.X MARKET GTC was denied by the engine's risk "
                                  "engine: TradingState.HALTED")
    assert _last_audit(engines).outcome == "denied"


def test_live_orders_carry_the_confirmation_threshold_and_whether_the_name_was_typed(setup):
    engines, commands, gateway = setup
    session_id = _session(engines, mode="live", name="live-btc")

    commands.submit_order(session_id, "BTC.X", "BUY", "1", confirm="live-btc")
    commands.submit_order(session_id, "BTC.X", "BUY", "1", confirm="wrong")

    sent = [args for command, args in gateway.requests if command == "submit_order"]
    assert [(a["confirm_above"], a["confirmed"]) for a in sent] == [
        (commands.live_confirm_notional, True), (commands.live_confirm_notional, False)]


@pytest.mark.parametrize("state", ["Stopped", "Starting", "Error"])
def test_commands_go_only_to_a_running_engine_and_refusals_are_audited(setup, state):
    engines, commands, gateway = setup
    session_id = _session(engines, state=state)

    with pytest.raises(EngineStateConflict, match=f"is {state}: commands go only to a running"):
        commands.cancel_all(session_id)

    assert gateway.requests == []
    assert (_last_audit(engines).action, _last_audit(engines).outcome) == ("engine.cancel_all",
                                                                           "refused")


def test_a_command_during_an_emergency_stop_is_not_sent(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)
    engines._expected_exit[session_id] = "kill"

    with pytest.raises(EngineStateConflict, match="is being emergency-stopped"):
        commands.flatten(session_id)
    assert gateway.requests == []


def test_live_engines_need_the_live_trader_role(setup):
    engines, commands, gateway = setup
    session_id = _session(engines, mode="live")
    trader = Principal.user("tom", {"trader"})

    with pytest.raises(PermissionDenied, match="the live_trader role is needed"):
        commands.set_trading_state(session_id, "HALTED", principal=trader)
    assert gateway.requests == []


def test_a_bad_trading_state_is_refused_before_anything_is_sent(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)
    with pytest.raises(ValidationError, match="must be ACTIVE, REDUCING or HALTED, was 'PAUSED'"):
        commands.set_trading_state(session_id, "PAUSED")
    assert gateway.requests == []


def test_risk_limits_of_a_stopped_engine_are_kept_for_its_next_start(setup):
    engines, commands, gateway = setup
    session_id = _session(engines, state="Stopped")

    result = commands.update_risk_limits(session_id, {"max_daily_loss": "250",
                                                      "max_daily_loss.action": "REDUCING"})

    assert result["running"] is False and gateway.requests == []
    stored = engines.get(session_id).risk_limits["max_daily_loss"]
    assert (stored["value"], stored["action"]) == (250.0, "REDUCING")
    assert (_last_audit(engines).action, _last_audit(engines).outcome) == ("engine.risk_limits",
                                                                           "stored")


def test_risk_limits_of_a_running_engine_are_sent_and_stored(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)
    gateway.answers["set_risk_limits"] = {"ok": True, "result": {
        "limits": {"max_position": {"value": 2.0, "action": "REDUCING", "cancel_orders": False}},
        "required_state": "ACTIVE", "trading_state": "ACTIVE"}}

    commands.update_risk_limits(session_id, {"max_position": 2})

    assert gateway.requests == [("set_risk_limits", {"settings": {"max_position": "2"}})]
    assert engines.get(session_id).risk_limits["max_position"]["value"] == 2.0


def test_bad_risk_limits_are_refused_with_every_problem_and_audited(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)

    with pytest.raises(ValidationError) as excinfo:
        commands.update_risk_limits(session_id, {"max_daily_loss": "lots", "max_foo": "1"})

    assert excinfo.value.problems == [
        "risk.max_daily_loss: must be a number (0 or off: no limit), was 'lots'",
        "risk.max_foo: unknown risk limit (known: max_position, max_gross_exposure, "
        "max_daily_loss, max_drawdown, max_orders_per_minute)"]
    assert gateway.requests == [] and _last_audit(engines).outcome == "invalid"


def test_an_engine_refusal_names_the_engine_and_the_command(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)
    gateway.answers["strategy"] = {"ok": False, "error": "strategy X-1 is STOPPED; only a "
                                                         "RUNNING strategy can be paused"}
    with pytest.raises(CommandRefused, match="^Engine 'paper-btc' refused pause X-1: strategy "
                                             "X-1 is STOPPED"):
        commands.strategy(session_id, "pause", "X-1")
    assert _last_audit(engines).outcome == "refused"


def test_the_emergency_tiers_send_their_commands(setup):
    engines, commands, gateway = setup
    session_id = _session(engines)

    for tier in ("halt", "cancel", "flatten"):
        commands.emergency(session_id, tier)

    assert [c for c, _ in gateway.requests] == ["set_trading_state", "cancel_all", "flatten"]
    assert gateway.requests[0][1] == {"state": "HALTED"}
    with pytest.raises(ValidationError, match="must be one of halt, cancel, flatten, kill"):
        commands.emergency(session_id, "nuke")

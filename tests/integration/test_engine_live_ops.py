"""Live operations inside a real paper engine in Docker: orders, fills, positions and PnL,
modify and cancel, flatten, trading state, pause/resume, hung and vanished engines.

Needs a Docker daemon and the engine image (`.ci/run` installs and builds both); skips on a
machine without them, fails under CI. One engine is shared by the order tests of this module
(starting one takes ~10 s); each test first puts it back to ACTIVE with no open order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from services import events
from services.engine.service import ERROR, RUNNING, STOPPED
from services.errors import (
    CommandRefused,
    EngineStateConflict,
    EngineUnresponsive,
    PermissionDenied,
)
from services.identity.principal import Principal
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, docker_with_engine_image

pytestmark = [pytest.mark.integration, pytest.mark.docker]

FAST = {"replay_speed": 600, "fast_ema_period": 5, "slow_ema_period": 12}
BTC = "BTCUSDT-PERP.BINANCE"
MANUAL = "Workbench-MANUAL"
EMA = "EMACross-000"


@pytest.fixture(scope="module")
def docker_ready():
    return docker_with_engine_image()


@pytest.fixture(scope="module")
def engine_catalog(sample_catalog_path):
    """The sample catalog in a folder the container's unprivileged user can read."""
    folder = Path(tempfile.mkdtemp(prefix="workbench-liveops-catalog-"))
    folder.chmod(0o755)
    target = folder / "catalog"
    shutil.copytree(sample_catalog_path, target)
    yield target
    shutil.rmtree(folder, ignore_errors=True)


def _cleanup(wb: Workbench) -> None:
    """Kill what the test started, remove its containers, close the workbench."""
    for info in wb.engines.list_sessions():
        if info.is_active:
            wb.engines.emergency_stop(info.session_id)
    wb.engines.cleanup()
    wb.close()


@pytest.fixture(scope="module")
def shared(docker_ready, engine_catalog, tmp_path_factory, new_database_url):
    """A workbench with one running paper engine and its live state."""
    wb = Workbench.open(state_dir=tmp_path_factory.mktemp("liveops") / "state",
                        catalog=str(engine_catalog), database_url=new_database_url())
    board = wb.live.start()
    info = wb.engines.start("paper_trading", FAST, name="live-ops")
    info = wb.engines.wait_for(info.session_id, (RUNNING, ERROR, STOPPED), timeout=90)
    assert info.state == RUNNING, info.error
    yield wb, board, info.session_id
    board.stop()
    _cleanup(wb)


@pytest.fixture
def engine(shared):
    """The shared engine, ACTIVE, its strategy running, no open order and no position."""
    wb, board, session_id = shared
    commands = wb.commands
    state = commands.status(session_id)
    if state["trading_state"] != "ACTIVE":
        commands.set_trading_state(session_id, "ACTIVE")
    if state["strategies"].get(EMA) == "DEGRADED":
        commands.strategy(session_id, "resume", EMA)
    return wb, board, session_id


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _cli(wb: Workbench, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--state-dir", str(wb.settings.state_dir),
         "--catalog", wb.catalog.location, "--database-url", wb.settings.database_url],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env={**os.environ})


def _audit(wb: Workbench, session_id: str, action: str) -> list:
    return [e for e in wb.engines.audit_log(session_id) if e["action"] == action]


def test_market_order_fills_and_opens_a_position_with_its_pnl_in_the_board_and_the_cli(engine):
    wb, board, session_id = engine

    # Act
    result = wb.commands.submit_order(session_id, BTC, "BUY", "0.01")

    # Assert: the engine's answer
    order = result.result["order"]
    assert result.result["answer"] in ("OrderAccepted", "OrderFilled")
    assert (order["strategy_id"], order["side"], order["type"], order["quantity"]) == (
        MANUAL, "BUY", "MARKET", 0.01)
    assert result.took_ms < 2000
    coid = order["client_order_id"]

    # ... the fill and the position arrive in the live state through the log stream
    _wait(lambda: board.orders.get(session_id, {}).get(coid, {}).get("status") == "FILLED",
          10, "the FILLED order in the board")
    fill = _wait(lambda: next((f for f in board.fills.get(session_id, [])
                               if f["client_order_id"] == coid), None), 10, "the fill")
    position_id = f"{BTC}-{MANUAL}"
    position = _wait(lambda: (p := board.positions.get(session_id, {}).get(position_id))
                     and p["is_open"] and p["last_px"] and p, 10, "the open position")
    assert fill["last_qty"] == 0.01 and fill["side"] == "BUY" and fill["commission"] > 0
    assert position["side"] == "LONG" and position["quantity"] == pytest.approx(0.01)
    # PnL by hand: opening costs the commission; unrealized = (mark - entry) x quantity.
    assert position["realized_pnl"] == pytest.approx(-fill["commission"])
    assert position["unrealized_pnl"] == pytest.approx(
        (position["last_px"] - position["avg_px_open"]) * 0.01, abs=1e-6)
    assert position["avg_px_open"] == pytest.approx(fill["last_px"])

    # ... and in the CLI (another process, which asks the engine itself)
    done = _cli(wb, "engine", "positions", session_id, "--open", "--json")
    assert done.returncode == 0, done.stderr
    shown = {p["position_id"]: p for p in json.loads(done.stdout)["positions"]}
    assert shown[position_id]["quantity"] >= 0.01
    orders = json.loads(_cli(wb, "engine", "orders", session_id, "--json").stdout)
    assert {o["client_order_id"]: o["status"] for o in orders}[coid] == "FILLED"
    audit = _audit(wb, session_id, "engine.order")[0]
    assert audit["outcome"] == "ok" and coid in audit["detail"]


def test_limit_order_is_modified_then_canceled(engine):
    wb, board, session_id = engine
    commands = wb.commands

    # Act
    placed = commands.submit_order(session_id, BTC, "BUY", "0.01", order_type="LIMIT",
                                   price="1000.0")
    coid = placed.result["order"]["client_order_id"]
    modified = commands.modify_order(session_id, coid, quantity="0.02", price="1001.5")
    canceled = commands.cancel_order(session_id, coid)

    # Assert
    assert (placed.result["answer"], placed.result["order"]["status"]) == ("OrderAccepted",
                                                                          "ACCEPTED")
    assert modified.result["answer"] == "OrderUpdated"
    assert (modified.result["order"]["price"], modified.result["order"]["quantity"]) == (
        1001.5, 0.02)
    assert canceled.result["answer"] == "OrderCanceled"
    assert canceled.result["order"]["status"] == "CANCELED"
    _wait(lambda: board.orders.get(session_id, {}).get(coid, {}).get("status") == "CANCELED",
          10, "the canceled order in the board")
    assert coid not in {o["client_order_id"] for o in commands.orders(session_id, open_only=True)}


@pytest.mark.parametrize("kwargs, message", [
    ({"instrument_id": "ETHUSDT.BINANCE", "quantity": "1"},
     "instrument ETHUSDT.BINANCE is not traded by this engine (it trades BTCUSDT-PERP.BINANCE)"),
    ({"quantity": "0.0005"},
     "quantity 0.0005 is not a multiple of BTCUSDT-PERP.BINANCE's size increment 0.001"),
    ({"quantity": "0.01", "order_type": "LIMIT", "price": "1000.05"},
     "price 1000.05 is off BTCUSDT-PERP.BINANCE's tick: use a multiple of 0.1"),
    ({"quantity": "0.01", "price": "1000.0"}, "a MARKET order takes no price"),
])
def test_bad_orders_get_one_line_within_two_seconds_and_are_audited(engine, kwargs, message):
    wb, _, session_id = engine
    args = {"instrument_id": BTC, "side": "BUY", **kwargs}
    started = time.monotonic()

    # Act
    with pytest.raises(CommandRefused) as excinfo:
        wb.commands.submit_order(session_id, **args)

    # Assert
    assert time.monotonic() - started < 2.0
    assert message in str(excinfo.value) and "\n" not in str(excinfo.value)
    entry = _audit(wb, session_id, "engine.order")[0]
    assert entry["outcome"] == "refused" and message in entry["detail"]


def test_a_market_order_while_halted_is_denied_by_the_risk_engine(engine):
    wb, _, session_id = engine
    wb.commands.set_trading_state(session_id, "HALTED")

    # Act
    with pytest.raises(CommandRefused) as excinfo:
        wb.commands.submit_order(session_id, BTC, "BUY", "0.01")

    # Assert
    assert str(excinfo.value) == ("BUY 0.01 BTCUSDT-PERP.BINANCE MARKET GTC was denied by the "
                                  "engine's risk engine: TradingState.HALTED")
    assert _audit(wb, session_id, "engine.order")[0]["outcome"] == "denied"
    assert wb.commands.status(session_id)["trading_state"] == "HALTED"


def test_flatten_when_halted_leaves_no_position_and_no_open_order(engine):
    wb, board, session_id = engine
    commands = wb.commands
    commands.submit_order(session_id, BTC, "SELL", "0.03")
    commands.submit_order(session_id, BTC, "BUY", "0.01", order_type="LIMIT", price="1000.0")
    commands.set_trading_state(session_id, "HALTED")  # the strategy cannot reopen anything

    # Act
    result = commands.flatten(session_id)

    # Assert
    assert result.result["positions_still_open"] == [] and result.result["orders_still_open"] == []
    assert result.result["trading_state"] == "HALTED"
    assert commands.positions(session_id, open_only=True)["positions"] == []
    assert commands.orders(session_id, open_only=True) == []
    assert commands.positions(session_id)["net"][BTC] == 0.0
    assert commands.status(session_id)["trading_state"] == "HALTED"


def test_pause_stops_a_strategy_trading_and_resume_brings_it_back(engine):
    wb, _, session_id = engine
    commands = wb.commands

    def strategy_orders() -> int:
        return sum(1 for o in commands.orders(session_id) if o["strategy_id"] == EMA)

    _wait(lambda: strategy_orders() > 0, 30, "the strategy's first orders")

    # Act
    paused = commands.strategy(session_id, "pause", EMA)
    count = strategy_orders()
    time.sleep(6)  # at 600x replay the EMA 5/12 cross trades every few seconds
    during = strategy_orders()
    resumed = commands.strategy(session_id, "resume", EMA)

    # Assert
    assert (paused.result["was"], paused.result["state"]) == ("RUNNING", "DEGRADED")
    assert commands.status(session_id)["strategies"][EMA] == "RUNNING"
    assert during == count
    assert resumed.result["state"] == "RUNNING"
    _wait(lambda: strategy_orders() > during, 30, "new orders after resume")
    with pytest.raises(CommandRefused, match="only a paused strategy can be resumed"):
        commands.strategy(session_id, "resume", EMA)
    with pytest.raises(CommandRefused, match="Workbench-MANUAL carries the manual orders"):
        commands.strategy(session_id, "pause", MANUAL)


def test_commands_need_the_command_role_and_risk_limits_an_approver(engine):
    wb, _, session_id = engine
    viewer = Principal.user("vera", {"viewer"})
    trader = Principal.user("tom", {"trader"})

    # Act / Assert
    with pytest.raises(PermissionDenied, match="vera may not send orders"):
        wb.commands.submit_order(session_id, BTC, "BUY", "0.01", principal=viewer)
    with pytest.raises(PermissionDenied, match="the approver role is needed"):
        wb.commands.update_risk_limits(session_id, {"max_position": "1"}, principal=trader)
    refusals = [e for e in wb.audit.entries("engine.") if e.outcome == "refused"]
    assert {(e.actor, e.action) for e in refusals} >= {("vera", "engine.command"),
                                                       ("tom", "engine.risk_limits")}


def test_the_event_hub_carries_status_and_order_events(engine):
    wb, _, session_id = engine
    subscription = wb.hub.subscribe([events.ENGINE_STATUS, events.ORDER_EVENTS,
                                     events.POSITION_EVENTS], source=session_id)
    try:
        # Act
        coid = wb.commands.submit_order(session_id, BTC, "BUY", "0.01").result["order"][
            "client_order_id"]
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
                {"OrderFilled"} <= {e.data.get("type") for e in seen}
                and any(e.type == events.ENGINE_STATUS for e in seen)):
            event = subscription.get(timeout=0.5)
            if event is not None:
                seen.append(event)
    finally:
        subscription.close()

    # Assert
    mine = [e for e in seen if e.type == events.ORDER_EVENTS
            and e.data.get("client_order_id") == coid]
    assert [e.data["type"] for e in mine][-1] == "OrderFilled"
    assert {"OrderSubmitted", "OrderFilled"} <= {e.data["type"] for e in mine}
    status = [e for e in seen if e.type == events.ENGINE_STATUS]
    assert status and status[-1].data["status"]["trader_state"] == "RUNNING"


def test_a_hung_engine_answers_with_a_timeout_and_can_still_be_killed(docker_ready,
                                                                     engine_catalog, tmp_path):
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(engine_catalog))
    try:
        info = wb.engines.start("paper_trading", FAST, name="hung")
        info = wb.engines.wait_for(info.session_id, (RUNNING, ERROR), timeout=90)
        assert info.state == RUNNING, info.error
        wb.commands.status(info.session_id)  # the channel is open
        docker_ready.client().containers.get(info.container_id).pause()  # the loop stops

        # Act
        started = time.monotonic()
        with pytest.raises(EngineUnresponsive, match="did not answer submit_order within 2 s"):
            wb.commands.submit_order(info.session_id, BTC, "BUY", "0.01")
        took = time.monotonic() - started
        killed = wb.commands.emergency(info.session_id, "kill")

        # Assert
        assert took < 2.5
        assert _audit(wb, info.session_id, "engine.order")[0]["outcome"] == "timeout"
        assert killed.state == STOPPED and killed.final_state == "Killed"
        with pytest.raises(EngineStateConflict, match="is Stopped: commands go only to a "
                                                      "running engine"):
            wb.commands.flatten(info.session_id)
    finally:
        _cleanup(wb)


def test_a_vanished_engine_gets_one_line(docker_ready, engine_catalog, tmp_path):
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(engine_catalog))
    try:
        info = wb.engines.start("paper_trading", FAST, name="vanishing")
        info = wb.engines.wait_for(info.session_id, (RUNNING, ERROR), timeout=90)
        assert info.state == RUNNING, info.error
        docker_ready.client().containers.get(info.container_id).remove(force=True)

        # Act
        started = time.monotonic()
        with pytest.raises(EngineStateConflict) as excinfo:
            wb.commands.cancel_all(info.session_id)

        # Assert
        assert time.monotonic() - started < 2.5
        assert "\n" not in str(excinfo.value)
        assert "Engine 'vanishing' is Error" in str(excinfo.value)
        assert _audit(wb, info.session_id, "engine.cancel_all")[0]["outcome"] in ("failed",
                                                                                 "refused")
    finally:
        _cleanup(wb)


class WebhookReceiver:
    """A real HTTP server that collects the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: list[dict] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_a_daily_loss_breach_halts_the_engine_and_raises_an_alert_at_the_webhook(
        docker_ready, engine_catalog, tmp_path):
    from services.alerts import AlertService
    from services.alerts.channels import Webhook

    receiver = WebhookReceiver()
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(engine_catalog))
    alerts = AlertService(wb.database, wb.hub, wb.authorizer, wb.engines,
                          channels=[Webhook(receiver.url)]).start()
    try:
        # Arrange: a limit the first fill's commission alone breaks
        info = wb.engines.start("paper_trading", {**FAST, "risk.max_daily_loss": "0.01"},
                                name="loss-limit")
        info = wb.engines.wait_for(info.session_id, (RUNNING, ERROR), timeout=90)
        assert info.state == RUNNING, info.error
        assert info.risk_limits["max_daily_loss"]["value"] == 0.01

        # Act: the strategy trades; the engine's guard measures and acts on its own
        wb.commands.submit_order(info.session_id, BTC, "BUY", "0.01")
        # (Other rules may alert too: a loaded machine can push the engine past the CPU rule.)
        body = _wait(lambda: next((b for b in receiver.bodies
                                   if b["alert"]["rule"] == "risk_breach"), None), 30,
                     "the webhook's risk alert")

        # Assert: the engine halted itself ...
        risk = wb.commands.risk(info.session_id)
        assert risk["trading_state"] == "HALTED"
        assert [b["limit"] for b in risk["breached"]] == ["max_daily_loss"]
        assert risk["values"]["max_daily_loss"] > 0.01
        # ... the alert reached the webhook, the alerts table and the audit log
        assert "max_daily_loss" in body["text"] and "trading HALTED" in body["text"]

        def risk_alerts():
            return [a for a in wb.alerts.list(session_id=info.session_id)
                    if a.rule == "risk_breach"]

        assert risk_alerts()
        assert _wait(lambda: list(risk_alerts()[0].deliveries.values()) == ["sent"], 5,
                     "the delivery record")
        breach = _audit(wb, info.session_id, "engine.risk_breach")[0]
        assert (breach["actor"], breach["outcome"], breach["to_state"]) == (
            "system:engine-risk", "breached", "HALTED")
        # ... and trading stays HALTED until an approver raises the limit
        with pytest.raises(CommandRefused, match="trading stays HALTED until an approver "
                                                 "raises max_daily_loss"):
            wb.commands.set_trading_state(info.session_id, "ACTIVE")
        wb.commands.update_risk_limits(info.session_id, {"max_daily_loss": "1000000"})
        assert wb.commands.set_trading_state(info.session_id, "ACTIVE").result[
            "trading_state"] == "ACTIVE"
        assert wb.engines.get(info.session_id).risk_limits["max_daily_loss"]["value"] == 1e6
    finally:
        alerts.stop()
        receiver.close()
        _cleanup(wb)


def test_tiered_emergency_stop_halts_cancels_flattens_then_kills(docker_ready, engine_catalog,
                                                                 tmp_path):
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(engine_catalog))
    try:
        info = wb.engines.start("paper_trading", FAST, name="tiers")
        session_id = wb.engines.wait_for(info.session_id, (RUNNING, ERROR), timeout=90).session_id
        commands = wb.commands
        commands.submit_order(session_id, BTC, "BUY", "0.02")
        commands.submit_order(session_id, BTC, "BUY", "0.01", order_type="LIMIT", price="1000.0")

        # Act / Assert, tier by tier
        halted = commands.emergency(session_id, "halt")
        assert halted.result["trading_state"] == "HALTED"
        with pytest.raises(CommandRefused, match="TradingState.HALTED"):
            commands.submit_order(session_id, BTC, "BUY", "0.01")

        canceled = commands.emergency(session_id, "cancel")
        assert canceled.result["still_open"] == []
        assert commands.orders(session_id, open_only=True) == []

        flattened = commands.emergency(session_id, "flatten")
        assert flattened.result["positions_still_open"] == []
        assert commands.positions(session_id, open_only=True)["positions"] == []

        done = _cli(wb, "engine", "emergency-stop", session_id, "--tier", "kill", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)[0]["final_state"] == "Killed"
        actions = [e["action"] for e in wb.engines.audit_log(session_id)]
        assert {"engine.trading_state", "engine.cancel_all", "engine.flatten",
                "engine.emergency_stop"} <= set(actions)
    finally:
        _cleanup(wb)


def test_a_command_racing_an_emergency_stop_gets_one_line(docker_ready, engine_catalog,
                                                          tmp_path):
    import threading

    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(engine_catalog))
    try:
        info = wb.engines.start("paper_trading", FAST, name="race")
        session_id = wb.engines.wait_for(info.session_id, (RUNNING, ERROR), timeout=90).session_id
        wb.commands.status(session_id)
        outcomes = []
        kill_returned = threading.Event()

        def orders():
            # Orders back to back from before the kill until one attempt after it returned (a
            # fixed count could all go through before the kill began on a fast machine).
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                after_kill = kill_returned.is_set()
                try:
                    wb.commands.submit_order(session_id, BTC, "BUY", "0.001",
                                             order_type="LIMIT", price="1000.0")
                    outcomes.append("ok")
                except Exception as e:  # noqa: BLE001 - what the racing caller sees
                    outcomes.append(e)
                if after_kill:
                    return

        sender = threading.Thread(target=orders)

        # Act
        sender.start()
        while not outcomes and sender.is_alive():  # the kill starts once orders are flowing
            time.sleep(0.01)
        killed = wb.commands.emergency(session_id, "kill")
        kill_returned.set()
        sender.join(timeout=60)

        # Assert: orders went through before the kill, none after it, and every refusal is
        # one line naming the stop.
        assert killed.final_state == "Killed"
        assert not sender.is_alive()
        assert outcomes[0] == "ok"
        assert outcomes[-1] != "ok", "an order went through after the engine was killed"
        errors = [o for o in outcomes if o != "ok"]
        assert outcomes == ["ok"] * (len(outcomes) - len(errors)) + errors, (
            "an order went through after one was refused")
        for error in errors:
            assert isinstance(error, EngineStateConflict), repr(error)
            assert "\n" not in str(error)
            assert ("being emergency-stopped" in str(error) or "was killed" in str(error)
                    or "is Stopped" in str(error))
    finally:
        _cleanup(wb)

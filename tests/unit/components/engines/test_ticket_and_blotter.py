"""The order ticket, the blotter and the risk panel over a live state fed by hand (no board
thread) and the real EngineCommands, with the engine's exec channel stood in for."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from components import Blotter, OrderTicket, RiskPanel
from services import events
from services.db import EngineSessionRow
from services.identity.principal import Principal
from services.live import LiveState

TRADER = Principal.user("tom", {"trader", "live_trader"})
BTC = "BTCUSDT-PERP.BINANCE"


@pytest.fixture
def engine(workbench, docker, engine_status):
    """A running engine session as the service stores it, and a board that knows it."""
    def make(mode="paper", name="paper-btc", status=None):
        session_id = f"{mode}1"
        with workbench.database.session() as session:
            session.add(EngineSessionRow(
                session_id=session_id, name=name, template="paper_trading", mode=mode,
                config={"parameters": {}, "strategy_parameters": {}, "risk": {}},
                state="Running", container_id=f"c-{session_id}",
                container_name=f"nautilus-engine-{session_id}", image="img", actor="local",
                created_at=datetime.now(UTC), status=status or engine_status))
        docker.containers[f"c-{session_id}"] = {"code": None, "exited": threading.Event()}
        board = LiveState(workbench.hub, workbench.engines)
        board.engines = {session_id: workbench.engines.get(session_id)}
        return SimpleNamespace(session_id=session_id, live=board)

    return make


def _order_event(seq, order, fill=None):
    data = {"type": "OrderAccepted", "order": order, **({"fill": fill} if fill else {})}
    return events.Event(seq, events.ORDER_EVENTS, "paper1", 0.0, data)


def test_the_ticket_confirms_with_notional_and_positions_then_sends(workbench, docker, engine):
    e = engine()
    ticket = OrderTicket(workbench=workbench, live=e.live, principal=TRADER,
                         session_id=e.session_id)
    assert ticket.param.instrument.objects == [BTC]

    # Act: review a 0.5 BUY at market
    ticket.quantity = "0.5"
    ticket.param.trigger("submit")

    # Assert: notional at the ask (43100.1 x 0.5), position 0.1 -> 0.6, nothing sent yet
    summary = ticket.confirmation.summary
    assert "**BUY 0.5 BTCUSDT-PERP.BINANCE** MARKET GTC" in summary
    assert "Notional ≈ **21,550.05 USDT**" in summary
    assert "position now **0.1**, after a full fill **0.6**" in summary
    assert not ticket.confirmation.expected  # paper: no typed confirmation
    assert docker.engine.requests == []

    # Act: confirm
    ticket.confirmation.param.trigger("confirm")

    # Assert
    assert docker.engine.requests[0] == ("submit_order", {
        "instrument_id": BTC, "side": "BUY", "quantity": "0.5", "type": "MARKET", "price": None,
        "tif": "GTC", "reduce_only": False})
    assert ticket.last_order == "O-1"
    assert ticket.outcome.message.startswith("Order `O-1` ACCEPTED")


def test_a_limit_order_is_priced_at_its_limit_and_bad_input_is_refused_before_asking(
        workbench, engine):
    e = engine()
    ticket = OrderTicket(workbench=workbench, live=e.live, session_id=e.session_id)

    ticket.quantity = "abc"
    ticket.param.trigger("submit")
    assert not ticket.confirmation.pending
    assert ticket.outcome.message == "Quantity must be a positive number, was 'abc'."

    ticket.param.update(quantity="2", order_type="LIMIT", price="")
    ticket.param.trigger("submit")
    assert ticket.outcome.message == "A LIMIT order needs a price, was ''."

    ticket.param.update(price="40000.0", side="SELL", tif="IOC")
    ticket.param.trigger("submit")
    assert "Notional ≈ **80,000.00 USDT**" in ticket.confirmation.summary
    assert "after a full fill **-1.9**" in ticket.confirmation.summary


def test_a_live_order_above_the_threshold_needs_the_engines_name(workbench, docker, engine):
    e = engine(mode="live", name="live-btc")
    ticket = OrderTicket(workbench=workbench, live=e.live, principal=TRADER,
                         session_id=e.session_id)
    workbench.commands.live_confirm_notional = 10_000

    ticket.quantity = "1"  # ~43,100 USDT
    ticket.param.trigger("submit")

    assert ticket.confirmation.expected == "live-btc"
    assert "real venue with real money" in ticket.confirmation.warning
    ticket.confirmation.typed = "live-btc"
    ticket.confirmation.param.trigger("confirm")
    sent = docker.engine.requests[-1][1]
    assert (sent["confirm_above"], sent["confirmed"]) == (10_000, True)

    ticket.quantity = "0.1"  # ~4,310 USDT: a warning, no typing
    ticket.param.trigger("submit")
    assert ticket.confirmation.expected == "" and ticket.confirmation.warning


def test_the_blotter_follows_events_and_cancels_from_a_row(workbench, docker, engine):
    e = engine()
    blotter = Blotter(workbench=workbench, live=e.live, principal=TRADER,
                      session_id=e.session_id)
    resting = {"client_order_id": "O-7", "strategy_id": "Workbench-MANUAL", "instrument_id": BTC,
               "side": "BUY", "type": "LIMIT", "quantity": 0.01, "filled_qty": 0.0,
               "price": 1000.0, "avg_px": None, "tif": "GTC", "status": "ACCEPTED",
               "ts_init": 2}
    filled = {**resting, "client_order_id": "O-6", "type": "MARKET", "price": None,
              "status": "FILLED", "filled_qty": 0.01, "avg_px": 43100.1, "ts_init": 1}
    fill = {"trade_id": "T-1", "client_order_id": "O-6", "instrument_id": BTC, "side": "BUY",
            "last_qty": 0.01, "last_px": 43100.1, "commission": 0.17, "currency": "USDT",
            "liquidity": "TAKER"}

    # Act
    e.live.apply([_order_event(1, filled, fill), _order_event(2, resting)])

    # Assert: newest first, every column a trader reads
    orders = blotter._orders.value
    assert orders["Order"].tolist() == ["O-7", "O-6"]
    assert orders["Status"].tolist() == ["ACCEPTED", "FILLED"]
    assert blotter._fills.value["Commission"].tolist() == ["0.17 USDT"]

    # Act: the Cancel button of the resting order's row, then confirm
    blotter._on_order_click(SimpleNamespace(column="cancel", row=0))
    assert "Cancel order `O-7`" in blotter.confirmation.summary
    blotter.confirmation.param.trigger("confirm")
    assert docker.engine.requests[-1] == ("cancel_order", {"client_order_id": "O-7"})

    # A filled order cannot be canceled: said, nothing sent
    blotter._on_order_click(SimpleNamespace(column="cancel", row=1))
    assert "is not open (FILLED)" in blotter.outcome.message
    assert docker.engine.requests[-1] == ("cancel_order", {"client_order_id": "O-7"})


def test_modify_from_a_row_sends_the_new_price(workbench, docker, engine):
    e = engine()
    blotter = Blotter(workbench=workbench, live=e.live, principal=TRADER,
                      session_id=e.session_id)
    e.live.apply([_order_event(1, {
        "client_order_id": "O-8", "strategy_id": "Workbench-MANUAL", "instrument_id": BTC,
        "side": "SELL", "type": "LIMIT", "quantity": 0.02, "filled_qty": 0.0, "price": 50000.0,
        "avg_px": None, "tif": "GTC", "status": "ACCEPTED", "ts_init": 1})])

    blotter._on_order_click(SimpleNamespace(column="edit", row=0))
    assert (blotter.new_quantity, blotter.new_price) == ("0.02", "50000.0")
    blotter.new_price = "49000.5"
    blotter.param.trigger("modify")
    blotter.confirmation.param.trigger("confirm")

    assert docker.engine.requests[-1] == ("modify_order", {
        "client_order_id": "O-8", "quantity": "0.02", "price": "49000.5"})


def test_risk_panel_shows_limits_against_values_and_only_approvers_change_them(
        workbench, docker, engine, engine_status):
    STATUS = engine_status
    breached = {**STATUS, "trading_state": "HALTED", "risk": {**STATUS["risk"], "breached": [
        {"limit": "max_daily_loss", "message": "loss today 120.00 USDT is above "
                                               "max_daily_loss 100.00 USDT: trading HALTED"}],
        "values": {"max_daily_loss": 120.0}}}
    e = engine(status=breached)

    trader_view = RiskPanel(workbench=workbench, live=e.live, principal=TRADER,
                            session_id=e.session_id)
    approver_view = RiskPanel(workbench=workbench, live=e.live,
                              principal=Principal.user("ann", {"approver"}),
                              session_id=e.session_id)

    # Assert: the banner and the table
    assert trader_view.banner.startswith("**RISK LIMIT BREACHED:** loss today 120.00 USDT")
    row = trader_view._table.value.set_index("Limit").loc["max_daily_loss"]
    assert (row["Limit value"], row["Now"], row["State"]) == ("100 USDT", "120", "BREACHED")
    assert trader_view._apply.disabled and not approver_view._apply.disabled
    assert "approver role is needed" in trader_view._who.object

    # Act: the approver raises the limit
    approver_view.param.update(limit="max_daily_loss", value="500")
    approver_view.param.trigger("apply")
    approver_view.confirmation.param.trigger("confirm")

    # Assert
    assert docker.engine.requests[-1] == ("set_risk_limits", {"settings": {
        "max_daily_loss": "500", "max_daily_loss.action": "HALTED",
        "max_daily_loss.cancel_orders": "true"}})

    # A clean engine has no banner
    e.live.engines = {e.session_id: replace(e.live.engines[e.session_id], status=STATUS)}
    assert trader_view.banner == ""


def test_a_viewer_sees_the_ticket_and_the_controls_disabled_with_the_reason(workbench, engine):
    from components import EngineDetail

    e = engine(mode="live", name="live-btc")
    trader = Principal.user("tom", {"trader"})  # may trade paper, not live
    ticket = OrderTicket(workbench=workbench, live=e.live, principal=trader,
                         session_id=e.session_id)
    detail = EngineDetail(workbench=workbench, live=e.live, principal=trader,
                          session_id=e.session_id)

    assert ticket._submit.disabled
    assert "the live_trader role is needed" in ticket._note.object and ticket._note.visible
    assert detail._buttons["flatten"].disabled and detail._buttons["kill"].disabled
    assert "live_trader" in detail._buttons["kill"].description
    assert detail._note.visible

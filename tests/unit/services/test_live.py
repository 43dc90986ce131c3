"""The live state: hub events become the parameters the UI watches, one change per batch."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from services import events
from services.engine.service import EngineInfo
from services.live import LiveState


def _info(session_id="s1", state="Running", status=None) -> EngineInfo:
    return EngineInfo(session_id, "paper-btc", "paper_trading", "paper", state,
                      f"nautilus-engine-{session_id}", "c" * 64, "img", "local",
                      datetime(2026, 12, 1, tzinfo=UTC), None, None, None, None, None,
                      status or {}, None, {}, 1024, 1.0)


class Engines:
    def __init__(self, *infos):
        self.infos = {i.session_id: i for i in infos}

    def list_sessions(self):
        return list(self.infos.values())

    def get(self, session_id):
        return self.infos[session_id]


def _event(seq, type_, data, source="s1"):
    return events.Event(seq, type_, source, 1000.0 + seq, data)


def _order(coid, status):
    return {"client_order_id": coid, "status": status}


@pytest.fixture
def board():
    return LiveState(events.EventHub(), Engines(_info()))


def test_an_order_fill_and_position_land_in_their_engines_blotter(board):
    # Act
    board.apply([
        _event(1, events.ORDER_EVENTS, {"type": "OrderAccepted", "order": _order("O-1",
                                                                                   "ACCEPTED")}),
        _event(2, events.ORDER_EVENTS, {"type": "OrderFilled", "order": _order("O-1", "FILLED"),
                                        "fill": {"trade_id": "T-1", "last_qty": 1.0}}),
        _event(3, events.POSITION_EVENTS, {"type": "PositionOpened", "position": {
            "position_id": "P-1", "quantity": 1.0, "is_open": True}}),
    ])

    # Assert
    assert board.orders == {"s1": {"O-1": _order("O-1", "FILLED")}}
    assert board.fills == {"s1": [{"trade_id": "T-1", "last_qty": 1.0}]}
    assert board.positions["s1"]["P-1"]["quantity"] == 1.0


def test_each_batch_changes_each_parameter_once(board):
    calls = []
    board.param.watch(lambda *e: calls.append([x.name for x in e]), ["orders", "fills"])

    board.apply([_event(i, events.ORDER_EVENTS, {"order": _order(f"O-{i}", "FILLED"),
                                                 "fill": {"trade_id": f"T-{i}"}})
                 for i in range(50)])

    assert calls == [["orders", "fills"]]
    assert len(board.orders["s1"]) == 50 and board.updates == 1


def test_a_status_snapshot_updates_the_engine_and_its_positions_pnl(board):
    board.engines = {"s1": _info()}
    snapshot = {"trader_state": "RUNNING", "positions": [
        {"position_id": "P-1", "unrealized_pnl": 12.5, "is_open": True}]}

    board.apply([_event(1, events.ENGINE_STATUS, {"status": snapshot})])

    assert board.engines["s1"].status["trader_state"] == "RUNNING"
    assert board.positions["s1"]["P-1"]["unrealized_pnl"] == 12.5


def test_a_state_change_replaces_the_engine_from_its_json(board):
    changed = _info(state="Error").to_json()
    board.apply([_event(1, events.ENGINE_STATUS, {"engine": changed})])
    assert board.engines["s1"].state == "Error"
    assert board.engines["s1"].created_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_risk_events_resources_and_alerts_are_kept_newest_last_or_first(board):
    board.apply([
        _event(1, events.RISK_EVENTS, {"type": "RiskLimitBreached", "message": "m"}),
        _event(2, events.RESOURCE_METRICS, {"cpu_usage": 3.0}),
        _event(3, events.ALERT_EVENTS, {"id": 1}),
        _event(4, events.ALERT_EVENTS, {"id": 2}),
    ])
    assert board.risk_events["s1"][0]["message"] == "m"
    assert board.resources["s1"]["cpu_usage"] == 3.0
    assert [a["id"] for a in board.alerts] == [2, 1]


def test_seeding_from_the_engines_cache_keeps_what_events_already_said(board):
    board.apply([_event(1, events.ORDER_EVENTS, {"order": _order("O-1", "FILLED"),
                                                 "fill": {"trade_id": "T-1"}})])

    board.seed("s1", orders=[_order("O-0", "CANCELED"), _order("O-1", "ACCEPTED")],
               fills=[{"trade_id": "T-0"}, {"trade_id": "T-1"}], positions=[])

    assert board.orders["s1"] == {"O-0": _order("O-0", "CANCELED"),
                                  "O-1": _order("O-1", "FILLED")}
    assert [f["trade_id"] for f in board.fills["s1"]] == ["T-0", "T-1"]


def test_started_it_loads_the_engines_and_follows_the_hub():
    hub = events.EventHub()
    board = LiveState(hub, Engines(_info())).start()
    try:
        assert list(board.engines) == ["s1"]
        hub.publish(events.ORDER_EVENTS, "s1", {"order": _order("O-9", "ACCEPTED")})
        deadline = time.monotonic() + 5
        while "O-9" not in board.orders.get("s1", {}) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert board.orders["s1"]["O-9"]["status"] == "ACCEPTED"
    finally:
        board.stop()

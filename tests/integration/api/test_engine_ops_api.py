"""Live operations through the REST API and the /ws/messagebus websocket, against a served app
with a real Docker daemon and a paper engine (marked ``docker``: skipped on a machine without
them, failing under CI). Every container started is killed and removed."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from tests.conftest import docker_with_engine_image
from tests.integration.api.conftest import ENGINE_ROOT, serve, shutdown

pytestmark = [pytest.mark.integration, pytest.mark.docker]

FAST = {"replay_speed": 600, "fast_ema_period": 5, "slow_ema_period": 12}
BTC = "BTCUSDT-PERP.BINANCE"


@pytest.fixture(scope="module")
def running(tmp_path_factory, readable_catalog, new_database_url):
    """A served app and one running paper engine started through the API."""
    docker_with_engine_image()
    served = serve(tmp_path_factory.mktemp("api-live-ops"), readable_catalog,
                   {"WORKBENCH_API_CONTROL_RATE": "1000/minute"},
                   database_url=new_database_url())
    try:
        started = served.request("post", f"{ENGINE_ROOT}/start", "trader",
                                 json={"template": "paper_trading", "parameters": FAST,
                                       "name": "api-ops"})
        assert started.status_code == 201, started.text
        session_id = started.json()["engine"]["session_id"]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            engine = served.request("get", f"{ENGINE_ROOT}/status", "viewer",
                                    params={"session_id": session_id}).json()["engine"]
            if engine["state"] in ("Running", "Error"):
                break
            time.sleep(0.5)
        assert engine["state"] == "Running", engine["error"]
        yield served, session_id
    finally:
        wb = served.workbench()
        try:
            wb.engines.emergency_stop_all()
            wb.engines.cleanup()
        finally:
            wb.database.dispose()
            shutdown(served)


def _ws_url(served) -> str:
    return served.url.replace("http://", "ws://") + "/ws/messagebus"


def test_an_order_through_the_api_is_seen_on_the_websocket(running):
    served, session_id = running

    async def scenario():
        async with websockets.connect(_ws_url(served) + f"?session_id={session_id}") as socket:
            await socket.send(json.dumps({"token": served.tokens["viewer"]}))
            hello = json.loads(await socket.recv())
            placed = await asyncio.to_thread(
                served.request, "post", f"{ENGINE_ROOT}/order", "trader",
                json={"session_id": session_id, "instrument_id": BTC, "side": "BUY",
                      "quantity": "0.01"})
            assert placed.status_code == 200, placed.text
            coid = placed.json()["result"]["order"]["client_order_id"]
            seen, deadline = [], time.monotonic() + 20
            while time.monotonic() < deadline and not (
                    any(e["type"] == "nautilus_engine_status" for e in seen)
                    and any(e["type"] == "order_events" and e["data"].get("client_order_id") == coid
                            and e["data"]["type"] == "OrderFilled" for e in seen)):
                seen.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
            return hello, placed, coid, seen

    # Act
    hello, placed, coid, seen = asyncio.run(scenario())

    # Assert
    assert hello == {"type": "hello", "user": "role-viewer", "types": [
        "nautilus_engine_status", "resource_metrics", "error_events", "order_events",
        "position_events", "risk_events", "alert_events"]}
    assert placed.status_code == 200, placed.text
    assert placed.json()["result"]["order"]["status"] in ("ACCEPTED", "FILLED")
    mine = [e["data"]["type"] for e in seen if e["type"] == "order_events"
            and e["data"].get("client_order_id") == coid]
    assert "OrderFilled" in mine
    assert all(e["source"] == session_id for e in seen)
    orders = served.request("get", f"{ENGINE_ROOT}/orders", "viewer",
                            params={"session_id": session_id}).json()["orders"]
    assert {o["client_order_id"]: o["status"] for o in orders}[coid] == "FILLED"
    positions = served.request("get", f"{ENGINE_ROOT}/positions", "viewer",
                               params={"session_id": session_id, "open_only": True}).json()
    assert positions["net"][BTC] != 0 or positions["positions"] == []


def test_the_websocket_refuses_a_bad_token_and_unknown_types(running):
    served, _ = running

    async def refused(url: str, first: dict | None):
        async with websockets.connect(url) as socket:
            if first is not None:
                await socket.send(json.dumps(first))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            return closed.value.rcvd.code, closed.value.rcvd.reason

    bad_token = asyncio.run(refused(_ws_url(served), {"token": "nwb_not-a-token"}))
    unknown = asyncio.run(refused(_ws_url(served) + "?types=orders", None))

    assert bad_token[0] == 4401
    assert unknown == (4422, unknown[1]) and "unknown event types ['orders']" in unknown[1]


def test_bad_orders_risk_limits_and_tiers_answer_as_documented(running):
    served, session_id = running

    def call(method, path, role, **kwargs):
        return served.request(method, f"{ENGINE_ROOT}/{path}", role, **kwargs)

    # A quantity off the size increment: 422 with the engine's one line
    bad = call("post", "order", "trader", json={"session_id": session_id, "instrument_id": BTC,
                                                "side": "BUY", "quantity": "0.0005"})
    assert bad.status_code == 422
    assert "is not a multiple of BTCUSDT-PERP.BINANCE's size increment 0.001" in \
        bad.json()["error"]

    # Risk limits: approvers change them, traders may not; the report shows them against values
    refused = call("put", "risk", "trader", json={"session_id": session_id,
                                                  "settings": {"max_position": "5"}})
    assert refused.status_code == 403
    changed = call("put", "risk", "approver", json={"session_id": session_id,
                                                    "settings": {"max_position": "5"}})
    assert changed.status_code == 200, changed.text
    report = changed.json()
    assert report["running"] and report["limits"]["max_position"]["value"] == 5.0
    assert "max_position" in report["values"]

    # Tier 1 then 3 of the emergency stop; HALTED denies a new order (422 with the reason)
    halted = served.request("post", f"{ENGINE_ROOT}/emergency-stop", "trader",
                            json={"session_id": session_id, "tier": "halt"})
    assert halted.status_code == 200, halted.text
    assert halted.json()["results"][0]["result"]["trading_state"] == "HALTED"
    denied = call("post", "order", "trader", json={"session_id": session_id,
                                                   "instrument_id": BTC, "side": "BUY",
                                                   "quantity": "0.01"})
    assert denied.status_code == 422 and "TradingState.HALTED" in denied.json()["error"]
    flat = served.request("post", f"{ENGINE_ROOT}/emergency-stop", "trader",
                          json={"session_id": session_id, "tier": "flatten"})
    assert flat.json()["results"][0]["result"]["positions_still_open"] == []
    feed = call("get", "feed", "viewer", params={"session_id": session_id}).json()
    assert feed["clients"] == {"REPLAY": True} and BTC in feed["instruments"]


def test_metrics_are_recorded_and_read_back_with_the_engines_own(running):
    served, session_id = running

    recorded = served.request("post", "/api/v1/metrics", "trader", json={
        "timestamp": "2026-12-01T12:00:00Z", "metric_name": "desk.pnl", "value": 12.5,
        "source": "risk-desk"})
    refused = served.request("post", "/api/v1/metrics", "viewer", json={
        "metric_name": "desk.pnl", "value": 1, "source": "x"})
    read = served.request("get", "/api/v1/metrics", "viewer", params={"name": "desk.pnl"})

    assert recorded.status_code == 201 and refused.status_code == 403
    assert read.json()["metrics"] == [{"timestamp": "2026-12-01T12:00:00Z",
                                       "metric_name": "desk.pnl", "value": 12.5,
                                       "source": "risk-desk"}]

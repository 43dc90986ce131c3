"""Engine component tests over the real EngineService with Docker stood in for (the service's
one seam, ``EngineService.docker``): a container "runs" the way the engine bootstrap does,
printing a Running status line, answering commands on its exec channel, and ending when it is
stopped or killed. Templates, validation, roles, typed confirmations, the state machine, the
event hub, the live state and the audit log are the real ones.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from types import SimpleNamespace

import pytest

from services.engine_runtime.protocol import STATUS_PREFIX

STATUS = {"trader_state": "RUNNING", "trading_state": "ACTIVE",
          "strategies": {"EMACross-000": "RUNNING"}, "open_orders": 1, "orders": 7, "fills": 6,
          "positions": [{"position_id": "BTCUSDT-PERP.BINANCE-EMACross-000",
                         "instrument_id": "BTCUSDT-PERP.BINANCE", "strategy_id": "EMACross-000",
                         "side": "LONG", "quantity": 0.1, "signed_qty": 0.1,
                         "avg_px_open": 43000.0, "last_px": 43100.0, "realized_pnl": -1.5,
                         "unrealized_pnl": 10.0, "currency": "USDT", "is_open": True,
                         "ts_opened": 1}],
          "prices": {"BTCUSDT-PERP.BINANCE": {"bid": 43099.9, "ask": 43100.1, "last": None,
                                              "price_increment": "0.1",
                                              "size_increment": "0.001", "multiplier": 1.0,
                                              "currency": "USDT"}},
          "balances": {"SIM-001:USDT": 1000123.5}, "realized_pnl": 123.5,
          "unrealized_pnl": -4.25,
          "risk": {"currency": "USDT", "limits": {
              "max_daily_loss": {"value": 100.0, "action": "HALTED", "cancel_orders": True}},
              "values": {"max_daily_loss": 12.0}, "breached": [], "drawdown_pct": 0.1},
          "feed": {"instruments": {"BTCUSDT-PERP.BINANCE": {
              "age_s": 0.4, "latency_ms": 1.5, "latency_max_ms": 9.0, "updates": 1200,
              "gaps": 0}}, "clients": {"REPLAY": True}, "disconnections": 0, "gap_seconds": 10}}
DOCKER_DOWN = "The Docker daemon is not reachable (connection refused). Start Docker."


class FakeEngine:
    """What the engine's control socket answers; ``requests`` records every command."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        self.orders = 0

    def answer(self, command: str, args: dict) -> dict:
        self.requests.append((command, args))
        if command == "submit_order":
            self.orders += 1
            return {"ok": True, "result": {"answer": "OrderAccepted", "order": {
                "client_order_id": f"O-{self.orders}", "status": "ACCEPTED", "avg_px": None,
                "side": args["side"], "quantity": float(args["quantity"])}}}
        if command in ("orders", "fills"):
            return {"ok": True, "result": {command: []}}
        if command == "positions":
            return {"ok": True, "result": {"positions": [], "net": {}}}
        if command == "set_trading_state":
            return {"ok": True, "result": {"trading_state": args["state"], "was": "ACTIVE"}}
        if command == "set_risk_limits":
            return {"ok": True, "result": {"limits": {}, "trading_state": "ACTIVE"}}
        if command == "status":
            return {"ok": True, "result": STATUS}
        return {"ok": True, "result": {}}


class _Session:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.out: queue.Queue = queue.Queue()

    def write(self, data: bytes) -> None:
        for line in data.splitlines():
            request = json.loads(line)
            answer = self.engine.answer(request["command"], request["args"])
            self.out.put((1, json.dumps({"id": request["id"], **answer}).encode() + b"\n"))

    def frames(self):
        while (item := self.out.get()) is not None:
            yield item

    def close(self) -> None:
        self.out.put(None)


class FakeDocker:
    """Containers that behave like the engine's: Running at once, exit when stopped/killed."""

    def __init__(self) -> None:
        self.containers: dict[str, dict] = {}
        self.reachable = True
        self.created: list[str] = []
        self.environments: list[dict] = []
        self.engine = FakeEngine()

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

    def open_exec(self, container_id, command):
        return _Session(self.engine)


@pytest.fixture
def docker(workbench) -> FakeDocker:
    """The stand-in Docker; the workbench's live state runs without its thread, so that
    ``until`` applies what the engine watchers published in the test's own thread."""
    fake = FakeDocker()
    workbench.engines.docker = fake
    workbench.live.start(thread=False)
    yield fake
    workbench.live.stop()
    for container_id in list(fake.containers):
        fake.kill(container_id)


@pytest.fixture
def engine_status() -> dict:
    """A copy of the status snapshot the stand-in engine reports."""
    return copy.deepcopy(STATUS)


@pytest.fixture
def until(workbench):
    """``until(predicate, what)``: wait for what the engine watchers publish next, applying it
    to the live state in this thread; fails after 10 s."""
    def wait(predicate, what: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            workbench.live.pump()
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    return wait

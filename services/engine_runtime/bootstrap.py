"""Entry point of an engine container: build a TradingNode from JSON, run it, report its state.

    python -m services.engine_runtime.bootstrap [NODE_CONFIG.json]

The node config (TradingNodeConfig JSON) comes from the environment variable WORKBENCH_NODE_CONFIG,
or from the file named on the command line.

The workbench learns an engine's state only from what this prints: one line per event, starting
with STATUS_PREFIX and followed by JSON ({"state": ..., ...}). States: Starting, Running,
Stopping, Stopped, Error. While running, a snapshot (trader state, trading state, strategies,
orders, positions with PnL, balances, risk limits against their values, feed health) follows
every ``WORKBENCH_STATUS_INTERVAL`` seconds (default 1), and every order, fill, position and
risk event is one ``{"event": ...}`` line as it happens (services.engine_runtime.protocol).

Besides the configured strategies every node gets the workbench's parts: the manual-order
strategy, the risk guard (limits from WORKBENCH_RISK, a JSON risk section), the event relay,
feed health and the control socket that commands arrive on (services.engine_runtime.control).

Values written as "${NAME}" (or "${NAME:int}") in the config are replaced by the container's
environment variable NAME here, inside the container, so secrets never pass through the workbench's database or logs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

from services.engine_runtime.protocol import MANUAL_STRATEGY_ID, SOCKET_PATH, STATUS_PREFIX

_ENV_REF = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)(:int)?\}$")


HEARTBEAT = Path(os.environ.get("WORKBENCH_HEARTBEAT", "/tmp/heartbeat"))


def emit(state: str | None = None, **fields) -> None:
    """Print one status line (flushed at once: the workbench follows the log stream)."""
    payload = {"ts": time.time(), **({"state": state} if state else {}), **fields}
    sys.stdout.write(STATUS_PREFIX + json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()
    try:
        HEARTBEAT.touch()
    except OSError:
        pass  # the healthcheck then reports the engine unhealthy, which is the truth


def resolve_env_refs(value, missing: list[str]):
    """Replace "${NAME}" strings anywhere in ``value`` by os.environ[NAME]."""
    if isinstance(value, dict):
        return {k: resolve_env_refs(v, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_refs(v, missing) for v in value]
    if isinstance(value, str) and (match := _ENV_REF.match(value)):
        name = match.group(1)
        if name not in os.environ:
            missing.append(name)
            return None
        return int(os.environ[name]) if match.group(2) else os.environ[name]
    return value


def _money(m) -> float:
    return float(m.as_double()) if m is not None else 0.0


def build_reporter(node, interval: float, parts: dict):
    """An Actor that emits Running once the trader has started, then a snapshot every interval.

    ``parts`` holds the workbench's engine parts (risk book, feed health), filled in by
    :func:`add_workbench_parts` before the node runs."""
    from nautilus_trader.common.actor import Actor
    from nautilus_trader.common.config import ActorConfig
    from nautilus_trader.model.enums import PriceType

    from services.engine_runtime.events import position_json

    trader, kernel = node.trader, node.kernel

    class EngineStatusReporter(Actor):
        def __init__(self) -> None:
            super().__init__(ActorConfig(component_id="WorkbenchStatus"))
            self.started = False

        def on_start(self) -> None:
            self.started = True
            emit("Running", **self.snapshot())
            self.clock.set_timer("workbench-status", timedelta(seconds=interval),
                                 callback=lambda _event: emit(**self.snapshot()))

        def feed(self) -> dict:
            health = parts["feed"]
            for client in kernel.data_engine._clients.values():  # readonly in the .pxd
                health.on_client_state(str(client.id), bool(client.is_connected))
            return health.snapshot(time.time())

        def snapshot(self) -> dict:
            cache, portfolio = self.cache, self.portfolio
            venues = sorted({str(a.id.get_issuer()) for a in cache.accounts()})
            balances, realized, unrealized = {}, 0.0, 0.0
            for account in cache.accounts():
                for currency, money in account.balances_total().items():
                    balances[f"{account.id}:{currency}"] = _money(money)
            from nautilus_trader.model.identifiers import Venue
            for venue in venues:
                realized += sum(_money(m) for m in (portfolio.realized_pnls(Venue(venue)) or {}).values())
                unrealized += sum(_money(m) for m in (portfolio.unrealized_pnls(Venue(venue)) or {}).values())
            positions = [position_json(p, cache) for p in cache.positions_open()]
            prices = {}
            for instrument in cache.instruments():
                quote = cache.quote_tick(instrument.id)
                last = cache.price(instrument.id, PriceType.LAST)
                prices[str(instrument.id)] = {
                    "bid": float(quote.bid_price) if quote is not None else None,
                    "ask": float(quote.ask_price) if quote is not None else None,
                    "last": float(last) if last is not None else None,
                    "price_increment": str(instrument.price_increment),
                    "size_increment": str(instrument.size_increment),
                    "multiplier": float(instrument.multiplier),
                    "currency": str(getattr(instrument, "settlement_currency", None)
                                    or instrument.quote_currency)}
            strategies = {str(k): str(v) for k, v in trader.strategy_states().items()
                          if str(k) != MANUAL_STRATEGY_ID}
            return {
                "trader_state": trader.state.name if hasattr(trader.state, "name") else str(trader.state),
                "trading_state": kernel.risk_engine.trading_state.name,
                "strategies": strategies,
                "open_orders": len(cache.orders_open()),
                "orders": len(cache.orders()),
                "fills": sum(len(o.trade_ids) for o in cache.orders()),
                "positions": positions,
                "prices": prices,
                "balances": balances,
                "realized_pnl": realized,
                "unrealized_pnl": unrealized,
                "risk": parts["book"].snapshot(),
                "feed": self.feed(),
                "control": parts.get("control", False),
            }

    return EngineStatusReporter()


def add_workbench_parts(node, reporter, parts: dict, risk_section: dict | None) -> None:
    """Add the manual-order strategy, the risk guard, the event relay, feed health and the
    control socket to ``node`` (before it is built)."""
    from services.engine_runtime.control import (
        ControlServer,
        EngineController,
        ManualOrders,
        cancel_every_order,
    )
    from services.engine_runtime.events import EventRelay
    from services.engine_runtime.feed import FeedHealth
    from services.engine_runtime.guard import RiskGuard
    from services.engine_runtime.risk import RiskBook, parse_section

    limits, problems = parse_section(risk_section)
    if problems:
        raise ValueError("invalid risk limits: " + "; ".join(problems))
    kernel = node.kernel
    book, feed = RiskBook(limits), FeedHealth()
    parts.update(book=book, feed=feed)
    manual = ManualOrders()
    node.trader.add_strategy(manual)
    guard = RiskGuard(book, kernel.risk_engine, emit,
                      lambda: len(cancel_every_order(node.trader, kernel.cache)))
    node.trader.add_actor(guard)
    EventRelay(kernel.msgbus, kernel.cache, emit)

    def on_data(data) -> None:
        instrument_id = getattr(data, "instrument_id", None) or data.bar_type.instrument_id
        feed.on_update(str(instrument_id), data.ts_event, data.ts_init, time.time())

    for topic in ("data.quotes.*", "data.trades.*", "data.bars.*"):
        kernel.msgbus.subscribe(topic, on_data)
    controller = EngineController(node, manual, guard, reporter.feed, reporter.snapshot)
    server = ControlServer(controller, SOCKET_PATH, kernel.logger)

    async def open_socket() -> None:
        try:
            await server.start()
            parts["control"] = True
        except OSError as e:  # commands are lost, trading goes on: say so in the status
            kernel.logger.error(f"Workbench control socket not opened: {e}")

    kernel.loop.create_task(open_socket())
    parts["server"] = server


def _take_clients(raw: dict) -> tuple[list[tuple[str, str, type]], dict[str, dict]]:
    """Remove the client entries from ``raw``; return their factory classes and configs.

    NautilusTrader 1.231 instantiates an ImportableConfig's factory, but its node builder expects
    a factory class (it reads ``__name__``, e.g. for the sandbox client), so the classes are
    registered on the node instead; configs are built by build_client_config.
    """
    from nautilus_trader.common.config import resolve_path

    from services.engine_runtime.client_configs import build_client_config

    factories, configs = [], {}
    for kind in ("data_clients", "exec_clients"):
        configs[kind] = {}
        for name, client in raw.pop(kind, {}).items():
            factories.append((kind, name, resolve_path(client["factory"]["path"])))
            configs[kind][name] = build_client_config(client["path"], client.get("config", {}))
    return factories, configs


def _inside_container() -> bool:
    if Path("/.dockerenv").exists():
        return True
    try:
        return any(word in Path("/proc/1/cgroup").read_text() for word in ("docker", "containerd"))
    except OSError:
        return False


def main(argv: list[str]) -> int:
    emit("Starting", session_id=os.environ.get("WORKBENCH_SESSION_ID"))
    if os.environ.get("WORKBENCH_MODE") == "live" and not _inside_container():
        emit("Error", error="live engines run only inside their Docker container; start them "
             "with the workbench (UI, API or `nautilus-workbench engine start`)")
        return 2
    try:
        import msgspec
        from nautilus_trader.config import TradingNodeConfig
        from nautilus_trader.live.node import TradingNode

        text = os.environ.get("WORKBENCH_NODE_CONFIG") or Path(argv[1]).read_text()
        missing: list[str] = []
        raw = resolve_env_refs(json.loads(text), missing)
        if missing:
            emit("Error", error="environment variables not set in the container: "
                 + ", ".join(sorted(set(missing))))
            return 2
        factories, clients = _take_clients(raw)
        config = TradingNodeConfig.parse(json.dumps(raw))
        config = msgspec.structs.replace(config, **clients)
        node = TradingNode(config=config)
        for kind, name, factory in factories:
            if kind == "data_clients":
                node.add_data_client_factory(name, factory)
            else:
                node.add_exec_client_factory(name, factory)
        parts: dict = {}
        reporter = build_reporter(node, float(os.environ.get("WORKBENCH_STATUS_INTERVAL", "1")),
                                  parts)
        node.trader.add_actor(reporter)
        risk = os.environ.get("WORKBENCH_RISK")
        add_workbench_parts(node, reporter, parts, json.loads(risk) if risk else None)
        node.build()
    except Exception as e:  # every failure before the node runs ends the engine with its reason
        emit("Error", error=f"{type(e).__name__}: {e}")
        return 2

    # A node whose clients never connect keeps waiting; give up after the connection timeout.
    deadline = float(config.timeout_connection) + 5.0

    def check_started() -> None:
        if not reporter.started:
            emit("Error", error=f"the engine did not start within {deadline:.0f} s "
                 "(clients did not connect; see the log lines above)")
            node.stop()

    node.kernel.loop.call_later(deadline, check_started)
    failed = False
    try:
        node.run(raise_exception=True)
    except Exception as e:
        failed = True
        emit("Error", error=f"{type(e).__name__}: {e}")
    finally:
        emit("Stopping")
        if "server" in parts:
            parts["server"].close()
        node.dispose()
    if failed or not reporter.started:
        return 1
    emit("Stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

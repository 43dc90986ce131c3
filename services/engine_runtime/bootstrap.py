"""Entry point of an engine container: build a TradingNode from JSON, run it, report its state.

    python -m services.engine_runtime.bootstrap [NODE_CONFIG.json]

The node config (TradingNodeConfig JSON) comes from the environment variable WORKBENCH_NODE_CONFIG,
or from the file named on the command line.

The workbench learns an engine's state only from what this prints: one line per event, starting
with STATUS_PREFIX and followed by JSON ({"state": ..., ...}). States: Starting, Running,
Stopping, Stopped, Error. While running, a snapshot (trader state, strategies, open orders,
positions, balances, PnL) follows every ``WORKBENCH_STATUS_INTERVAL`` seconds (default 1).

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

STATUS_PREFIX = "@@workbench "
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


def build_reporter(trader, interval: float):
    """An Actor that emits Running once the trader has started, then a snapshot every interval."""
    from nautilus_trader.common.actor import Actor
    from nautilus_trader.common.config import ActorConfig

    class EngineStatusReporter(Actor):
        def __init__(self) -> None:
            super().__init__(ActorConfig(component_id="WorkbenchStatus"))
            self.started = False

        def on_start(self) -> None:
            self.started = True
            emit("Running", **self.snapshot())
            self.clock.set_timer("workbench-status", timedelta(seconds=interval),
                                 callback=lambda _event: emit(**self.snapshot()))

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
            positions = [{
                "instrument_id": str(p.instrument_id), "side": p.side.name,
                "quantity": float(p.quantity), "avg_px_open": p.avg_px_open,
            } for p in cache.positions_open()]
            return {
                "trader_state": trader.state.name if hasattr(trader.state, "name") else str(trader.state),
                "strategies": {str(k): str(v) for k, v in trader.strategy_states().items()},
                "open_orders": len(cache.orders_open()),
                "orders": len(cache.orders()),
                "fills": sum(len(o.trade_ids) for o in cache.orders()),
                "positions": positions,
                "balances": balances,
                "realized_pnl": realized,
                "unrealized_pnl": unrealized,
            }

    return EngineStatusReporter()


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
        reporter = build_reporter(node.trader,
                                  float(os.environ.get("WORKBENCH_STATUS_INTERVAL", "1")))
        node.trader.add_actor(reporter)
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
        node.dispose()
    if failed or not reporter.started:
        return 1
    emit("Stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

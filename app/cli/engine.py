"""``nautilus-workbench engine ...``: build the engine image; start, watch and stop engines;
orders, positions, cancels, flatten, trading state, strategies and risk limits inside them.

The commands call the same EngineService and EngineCommands as the UI and the REST API, so the
same checks apply (validation, roles, the typed confirmation for live engines) and every action
is audited. Commands into a running engine answer within 2 s, or say why not in one line.
"""

from __future__ import annotations

import sys
import time

from app.cli.output import EXIT_FAILED, key_values, print_json, table
from services.engine.image import DEFAULT_BASE_IMAGE, DEFAULT_IMAGE
from services.errors import WorkbenchError

# Kept here (not imported from services.engine.commands) so that --help stays light.
TIERS = ("halt", "cancel", "flatten", "kill")
TIER_HELP = {"halt": "no new orders (HALTED)", "cancel": "cancel every open order",
             "flatten": "cancel all and close every position", "kill": "SIGKILL the container"}

_H = "app.cli.engine:"


def register(commands, common) -> None:
    engine = commands.add_parser("engine", help="paper, sandbox and live engines in Docker")
    cmds = engine.add_subparsers(dest="engine_command", required=True, metavar="ACTION")

    build = cmds.add_parser("build-image", parents=[common], help="build the engine image")
    build.add_argument("--tag", default=DEFAULT_IMAGE)
    build.add_argument("--base-image", default=DEFAULT_BASE_IMAGE,
                       help="Python >= 3.12 base image (a local one where no registry is reachable)")
    build.add_argument("--wheelhouse", help="folder of wheels for offline builds "
                       "(scripts/engine-wheelhouse.sh makes one)")
    build.add_argument("--quiet", action="store_true", help="do not print the build output")
    build.set_defaults(handler=_H + "cmd_build_image")

    start = cmds.add_parser("start", parents=[common], help="start an engine and wait until it runs")
    start.add_argument("template", help="paper_trading, sandbox_engine or live_engine")
    start.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="engine or strategy parameter (repeatable; see 'engine templates')")
    start.add_argument("--name", help="engine name (default: mode-strategy-symbol)")
    start.add_argument("--confirm", help="live engines: the engine's name, typed to confirm")
    start.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for Running")
    start.add_argument("--no-wait", action="store_true", help="return once the container started")
    start.add_argument("--json", action="store_true")
    start.set_defaults(handler=_H + "cmd_start")

    templates = cmds.add_parser("templates", parents=[common], help="engine templates and parameters")
    templates.add_argument("--json", action="store_true")
    templates.set_defaults(handler=_H + "cmd_templates")

    listing = cmds.add_parser("list", parents=[common], help="engine sessions, newest first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_H + "cmd_list")

    status = cmds.add_parser("status", parents=[common], help="one engine's state and snapshot")
    status.add_argument("session_id")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_H + "cmd_status")

    logs = cmds.add_parser("logs", parents=[common], help="an engine's log")
    logs.add_argument("session_id")
    logs.add_argument("--tail", type=int, default=100, help="last N lines (0: all)")
    logs.add_argument("--search", help="only lines containing this text")
    logs.set_defaults(handler=_H + "cmd_logs")

    for action, text in (("stop", "stop gracefully and wait until stopped"),
                         ("emergency-stop", "halt, cancel all, flatten, or (default) kill the "
                                            "engine's container now, from any state")):
        sub = cmds.add_parser(action, parents=[common], help=text)
        sub.add_argument("session_id", nargs="?" if action == "emergency-stop" else None)
        if action == "emergency-stop":
            sub.set_defaults(fast_exit=True)  # its 1 s budget includes the process's exit
            sub.add_argument("--all", action="store_true", help="every active engine")
            sub.add_argument("--tier", choices=TIERS, default="kill",
                             help="; ".join(f"{k}: {v}" for k, v in TIER_HELP.items()))
        sub.add_argument("--timeout", type=float, default=60.0)
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(handler=_H + ("cmd_stop" if action == "stop" else "cmd_emergency_stop"))

    _register_live(cmds, common)

    restart = cmds.add_parser("restart", parents=[common], help="stop and start with the same config")
    restart.add_argument("session_id")
    restart.add_argument("--confirm", help="live engines: the engine's name")
    restart.add_argument("--timeout", type=float, default=90.0)
    restart.add_argument("--json", action="store_true")
    restart.set_defaults(handler=_H + "cmd_restart")

    cleanup = cmds.add_parser("cleanup", parents=[common], help="remove exited engine containers")
    cleanup.add_argument("--json", action="store_true")
    cleanup.set_defaults(handler=_H + "cmd_cleanup")


def _payload(info) -> dict:
    return info.to_json()


def _print_info(info) -> None:
    print(f"{info.session_id}  {info.name}  {info.state}  ({info.mode}, {info.template})")
    status = info.status
    if status.get("trader_state"):
        print(f"  trader {status['trader_state']}; strategies "
              + ", ".join(f"{k} {v}" for k, v in status.get("strategies", {}).items()))
        print(f"  orders {status.get('orders', 0)} (open {status.get('open_orders', 0)}), "
              f"fills {status.get('fills', 0)}, positions {len(status.get('positions', []))}, "
              f"realized PnL {status.get('realized_pnl', 0):.2f}, "
              f"unrealized PnL {status.get('unrealized_pnl', 0):.2f}")
        for account, amount in status.get("balances", {}).items():
            print(f"  balance {account}: {amount:,.2f}")
        if status.get("trading_state"):
            print(f"  trading state {status['trading_state']}")
        for breach in (status.get("risk") or {}).get("breached") or []:
            print(f"  RISK LIMIT BREACHED: {breach['message']}")
        feed = status.get("feed") or {}
        for instrument, health in (feed.get("instruments") or {}).items():
            print(f"  feed {instrument}: last update {health['age_s']:.1f} s ago, latency "
                  f"{health['latency_ms']:.1f} ms (worst {health['latency_max_ms']:.1f}), "
                  f"{health['gaps']} gap(s)")
        for client, connected in (feed.get("clients") or {}).items():
            print(f"  data client {client}: {'connected' if connected else 'DISCONNECTED'}"
                  f" ({feed.get('disconnections', 0)} disconnection(s))")
    if info.error:
        print(f"  error: {info.error}")


def _emit(info, as_json: bool) -> None:
    if as_json:
        print_json(_payload(info))
    else:
        _print_info(info)


def cmd_build_image(wb, args) -> int:
    from services.engine.docker_api import DockerGateway
    from services.engine.image import build_engine_image

    wb.authorizer.require(args.principal, "engine.build_image", args.tag)
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    build = build_engine_image(DockerGateway(), tag=args.tag, base_image=args.base_image,
                               wheelhouse=args.wheelhouse, progress=progress)
    print(f"Built {build.tag} ({build.image_id[:19]}) in {build.seconds:.0f} s")
    return 0


def cmd_start(wb, args) -> int:
    info = wb.engines.start(args.template, key_values(args.param, "--param"),
                            principal=args.principal,
                            name=args.name, confirm=args.confirm)
    if not args.json:
        print(f"Started {info.session_id} ({info.name}); waiting for it to run...", flush=True)
    if not args.no_wait:
        info = wb.engines.wait_for(info.session_id, ("Running", "Error", "Stopped"), timeout=args.timeout)
    _emit(info, args.json)
    return EXIT_FAILED if info.state == "Error" else 0


def cmd_templates(wb, args) -> int:
    rows = []
    for name in wb.engines.template_names():
        template = wb.engines.template(name)
        rows.append({"name": name, "mode": template.mode, "title": template.title,
                     "description": template.description,
                     "parameters": {k: {"type": p.type, "default": str(p.default), "help": p.help,
                                        **({"choices": list(p.choices)} if p.choices else {}),
                                        **({"min": p.min, "max": p.max} if p.min is not None else {})}
                                    for k, p in template.parameters.items()}})
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        print(f"{row['name']} [{row['mode']}] - {row['title']}")
        for key, p in row["parameters"].items():
            bounds = f" [{p['min']} .. {p['max']}]" if "min" in p else ""
            choices = f" one of {p['choices']}" if "choices" in p else ""
            print(f"  {key}: {p['type']} = {p['default']}{bounds}{choices}  {p['help']}")
    print("\nStrategy parameters (e.g. --param fast_ema_period=5) come from the strategy template;"
          " see 'nautilus-workbench templates list'.")
    return 0


def cmd_list(wb, args) -> int:
    sessions = [wb.engines.refresh(i.session_id) if i.is_active else i
                for i in wb.engines.list_sessions()]
    if args.json:
        print_json([_payload(i) for i in sessions])
        return 0
    if not sessions:
        print("No engines yet: start one with 'nautilus-workbench engine start paper_trading'.")
        return 0
    print(table([[i.session_id, i.name, i.mode, i.state,
                   f"{i.created_at:%Y-%m-%d %H:%M:%S}", i.actor] for i in sessions],
                 ["SESSION", "NAME", "MODE", "STATE", "CREATED (UTC)", "ACTOR"]))
    return 0


def cmd_status(wb, args) -> int:
    info = wb.engines.refresh(args.session_id)
    _emit(info, args.json)
    return 0


def cmd_logs(wb, args) -> int:
    for line in wb.engines.logs(args.session_id, tail=args.tail, search=args.search):
        print(line)
    return 0


def cmd_stop(wb, args) -> int:
    info = wb.engines.stop(args.session_id, principal=args.principal)
    info = wb.engines.wait_for(info.session_id, ("Stopped", "Error"), timeout=args.timeout)
    _emit(info, args.json)
    return EXIT_FAILED if info.state == "Error" else 0


def cmd_emergency_stop(wb, args) -> int:
    if args.all == bool(args.session_id):
        raise WorkbenchError("emergency-stop needs a SESSION_ID or --all (not both).")
    started = time.perf_counter()
    if args.tier == "kill":  # only the engine service: no command channel, nothing heavy
        infos = (wb.engines.emergency_stop_all(principal=args.principal) if args.all
                 else [wb.engines.emergency_stop(args.session_id, principal=args.principal)])
        if args.json:
            print_json([_payload(i) for i in infos])
            return 0
        if not infos:
            print("No active engines.")
        for info in infos:
            print(f"{info.session_id}  {info.name}  {info.state} ({info.final_state or '-'})")
        print(f"done in {time.perf_counter() - started:.2f} s", file=sys.stderr)
        return 0
    results = (wb.commands.emergency_all(args.tier, principal=args.principal) if args.all
               else [wb.commands.emergency(args.session_id, args.tier, principal=args.principal)])
    failed = [r for r in results if isinstance(r, Exception)]
    if args.json:
        print_json([{"error": str(r)} if isinstance(r, Exception) else r.to_json()
                    for r in results])
    else:
        if not results:
            print("No running engines.")
        for result in results:
            print(f"error: {result}" if isinstance(result, Exception) else
                  f"{result.session_id}  {result.engine}  {args.tier}: {_summary(result.result)}")
        print(f"done in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def cmd_restart(wb, args) -> int:
    info = wb.engines.restart(args.session_id, principal=args.principal, confirm=args.confirm,
                              timeout=args.timeout)
    info = wb.engines.wait_for(info.session_id, ("Running", "Error", "Stopped"), timeout=args.timeout)
    _emit(info, args.json)
    return EXIT_FAILED if info.state == "Error" else 0


def cmd_cleanup(wb, args) -> int:
    removed = wb.engines.cleanup(principal=args.principal)
    if args.json:
        print_json({"removed": removed})
    else:
        print(f"Removed {len(removed)} exited engine container(s)"
              + (": " + ", ".join(removed) if removed else "."))
    return 0


# -- live operations inside a running engine ------------------------------------------------

def _register_live(cmds, common) -> None:
    def command(name: str, text: str, handler: str, session: bool = True):
        sub = cmds.add_parser(name, parents=[common], help=text)
        if session:
            sub.add_argument("session_id")
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(handler=_H + handler)
        return sub

    order = command("order", "submit a manual order (MARKET or LIMIT, GTC or IOC)", "cmd_order")
    order.add_argument("--instrument", required=True, metavar="INSTRUMENT_ID")
    order.add_argument("--side", required=True, type=str.upper, choices=("BUY", "SELL"))
    order.add_argument("--quantity", required=True, metavar="Q")
    order.add_argument("--type", default="MARKET", type=str.upper, choices=("MARKET", "LIMIT"))
    order.add_argument("--price", metavar="P", help="limit price (LIMIT orders)")
    order.add_argument("--tif", default="GTC", type=str.upper, choices=("GTC", "IOC"))
    order.add_argument("--reduce-only", action="store_true")
    order.add_argument("--confirm", metavar="NAME",
                       help="live engines: the engine's name, for orders above the notional "
                            "that needs a typed confirmation")

    for name, text in (("orders", "the engine's orders"), ("positions", "positions with PnL")):
        sub = command(name, text, f"cmd_{name}")
        sub.add_argument("--open", action="store_true", help=f"only open {name}")
    command("fills", "the engine's fills", "cmd_fills")

    cancel = command("cancel", "cancel one order", "cmd_cancel")
    cancel.add_argument("order_id", metavar="ORDER_ID", help="client order id")
    modify = command("modify", "change an open order's quantity or price", "cmd_modify")
    modify.add_argument("order_id", metavar="ORDER_ID", help="client order id")
    modify.add_argument("--quantity", metavar="Q")
    modify.add_argument("--price", metavar="P")
    command("cancel-all", "cancel every open order", "cmd_cancel_all")
    close = command("close", "close one position (or every position in an instrument)",
                    "cmd_close")
    close.add_argument("position_id", nargs="?", metavar="POSITION_ID")
    close.add_argument("--instrument", metavar="INSTRUMENT_ID")
    command("flatten", "cancel every open order and close every position", "cmd_flatten")

    state = command("trading-state", "set the trading state (NautilusTrader's risk engine)",
                    "cmd_trading_state")
    state.add_argument("state", type=str.upper, choices=("ACTIVE", "REDUCING", "HALTED"))

    strategy = command("strategy", "pause, resume or stop one strategy", "cmd_strategy")
    strategy.add_argument("action", choices=("pause", "resume", "stop"))
    strategy.add_argument("strategy_id", metavar="STRATEGY_ID")

    risk = command("risk", "risk limits against their current values; --set changes them "
                           "(approver)", "cmd_risk")
    risk.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                      help="e.g. max_daily_loss=500, max_daily_loss.action=HALTED, "
                           "max_position.cancel_orders=true (repeatable; 0 or off: no limit)")


def _summary(result: dict) -> str:
    order = result.get("order")
    if order:
        text = (f"{order['client_order_id']} {order['side']} {order['quantity']:g} "
                f"{order['instrument_id']} {order['type']} {order['status']}")
        if order.get("avg_px"):
            text += f" avg {order['avg_px']:g}"
        return text + (f" ({result['note']})" if result.get("note") else "")
    keys = {"trading_state": "trading", "was": "was", "state": "state",
            "requested": "cancel requested", "still_open": "still open",
            "orders_canceled": "orders canceled", "positions_closed": "positions closed",
            "positions_still_open": "positions still open"}
    return ", ".join(f"{label} {result[k]}" for k, label in keys.items()
                     if k in result and result[k] not in (None, [])) or "done"


def _result(result, as_json: bool) -> int:
    if as_json:
        print_json(result.to_json())
    else:
        print(_summary(result.result))
    return 0


def cmd_order(wb, args) -> int:
    return _result(wb.commands.submit_order(
        args.session_id, args.instrument, args.side, args.quantity, order_type=args.type,
        price=args.price, tif=args.tif, reduce_only=args.reduce_only, principal=args.principal,
        confirm=args.confirm), args.json)


def _number(value) -> str:
    return "-" if value is None else f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"


def cmd_orders(wb, args) -> int:
    orders = wb.commands.orders(args.session_id, open_only=args.open)
    if args.json:
        print_json(orders)
        return 0
    if not orders:
        print("No orders." if not args.open else "No open orders.")
        return 0
    print(table([[o["client_order_id"], o["strategy_id"], o["instrument_id"], o["side"], o["type"],
                  _number(o["quantity"]), _number(o["filled_qty"]), _number(o["price"]),
                  _number(o["avg_px"]), o["tif"], o["status"]] for o in orders],
                ["ORDER", "STRATEGY", "INSTRUMENT", "SIDE", "TYPE", "QTY", "FILLED", "PRICE",
                 "AVG PX", "TIF", "STATUS"]))
    return 0


def cmd_positions(wb, args) -> int:
    answer = wb.commands.positions(args.session_id, open_only=args.open)
    if args.json:
        print_json(answer)
        return 0
    positions = answer["positions"]
    if positions:
        print(table([[p["position_id"], p["strategy_id"], p["side"], _number(p["quantity"]),
                      _number(p["avg_px_open"]), _number(p["last_px"]),
                      _number(p["realized_pnl"]), _number(p["unrealized_pnl"]), p["currency"],
                      "open" if p["is_open"] else "closed"] for p in positions],
                    ["POSITION", "STRATEGY", "SIDE", "QTY", "AVG OPEN", "LAST", "REALIZED",
                     "UNREALIZED", "CCY", ""]))
    else:
        print("No open positions." if args.open else "No positions.")
    for instrument, net in answer["net"].items():
        print(f"net {instrument}: {net:g}")
    return 0


def cmd_fills(wb, args) -> int:
    fills = wb.commands.fills(args.session_id)
    if args.json:
        print_json(fills)
        return 0
    if not fills:
        print("No fills.")
        return 0
    print(table([[f["trade_id"], f["client_order_id"], f["instrument_id"], f["side"],
                  _number(f["last_qty"]), _number(f["last_px"]), _number(f["commission"]),
                  f["currency"], f["liquidity"]] for f in fills],
                ["TRADE", "ORDER", "INSTRUMENT", "SIDE", "QTY", "PRICE", "COMMISSION", "CCY",
                 "LIQUIDITY"]))
    return 0


def cmd_cancel(wb, args) -> int:
    return _result(wb.commands.cancel_order(args.session_id, args.order_id,
                                            principal=args.principal), args.json)


def cmd_modify(wb, args) -> int:
    return _result(wb.commands.modify_order(args.session_id, args.order_id,
                                            quantity=args.quantity, price=args.price,
                                            principal=args.principal), args.json)


def cmd_cancel_all(wb, args) -> int:
    return _result(wb.commands.cancel_all(args.session_id, principal=args.principal), args.json)


def cmd_close(wb, args) -> int:
    if bool(args.position_id) == bool(args.instrument):
        raise WorkbenchError("close needs a POSITION_ID or --instrument INSTRUMENT_ID (not both).")
    return _result(wb.commands.close_position(args.session_id, position_id=args.position_id,
                                              instrument_id=args.instrument,
                                              principal=args.principal), args.json)


def cmd_flatten(wb, args) -> int:
    return _result(wb.commands.flatten(args.session_id, principal=args.principal), args.json)


def cmd_trading_state(wb, args) -> int:
    return _result(wb.commands.set_trading_state(args.session_id, args.state,
                                                 principal=args.principal), args.json)


def cmd_strategy(wb, args) -> int:
    return _result(wb.commands.strategy(args.session_id, args.action, args.strategy_id,
                                        principal=args.principal), args.json)


def cmd_risk(wb, args) -> int:
    if args.set:
        wb.commands.update_risk_limits(args.session_id, key_values(args.set, "--set"),
                                       principal=args.principal)
    risk = wb.commands.risk(args.session_id)
    if args.json:
        print_json(risk)
        return 0
    values = risk.get("values") or {}
    currency = risk.get("currency", "")
    rows = []
    for name, limit in risk["limits"].items():
        value = values.get(name)
        rows.append([name, "off" if limit["value"] is None else f"{limit['value']:g}",
                     "-" if value is None else f"{value:,.4g}", limit["action"],
                     "yes" if limit["cancel_orders"] else "no"])
    print(table(rows, ["LIMIT", "VALUE", "NOW", "ON BREACH", "CANCEL ORDERS"]))
    if currency:
        print(f"money limits in {currency}; trading state {risk.get('trading_state')}")
    for breach in risk.get("breached") or []:
        print(f"BREACHED: {breach['message']}")
    if not risk.get("running", True):
        print("(the engine is not running: these limits apply at its next start)")
    return 0

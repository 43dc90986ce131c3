"""``nautilus-workbench engine ...``: build the engine image; start, watch and stop engines.

The commands call the same EngineService as the UI and the REST API, so the same checks apply
(validation, roles, the typed confirmation for live engines) and every action is audited.
"""

from __future__ import annotations

import sys
import time

from app.cli.output import EXIT_FAILED, key_values, print_json, table
from services.engine.image import DEFAULT_BASE_IMAGE, DEFAULT_IMAGE
from services.errors import WorkbenchError

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
                         ("emergency-stop", "kill the engine's container now, from any state")):
        sub = cmds.add_parser(action, parents=[common], help=text)
        sub.add_argument("session_id", nargs="?" if action == "emergency-stop" else None)
        if action == "emergency-stop":
            sub.add_argument("--all", action="store_true", help="every active engine")
        sub.add_argument("--timeout", type=float, default=60.0)
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(handler=_H + ("cmd_stop" if action == "stop" else "cmd_emergency_stop"))

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

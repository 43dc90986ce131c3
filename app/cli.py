"""``nautilus-workbench``: serve the app, list the catalog and templates, run backtests.

Scripts depend on these command names and on the JSON they print; add, never rename.
Every WorkbenchError ends as one line on stderr (and a JSON object with ``--json``) and a
non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from services import Workbench, WorkbenchError
from services.backtest import BacktestSpec, VenueSettings
from services.backtest.statistics import HEADLINE_LABELS, format_statistic

EXIT_FAILED_RUN = 1
EXIT_USAGE = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", default=argparse.SUPPRESS,
                        help="state folder (database, run folders); env WORKBENCH_STATE_DIR")
    parser.add_argument("--catalog", default=argparse.SUPPRESS,
                        help="ParquetDataCatalog path or fsspec URL; env WORKBENCH_CATALOG "
                             "(default: a generated synthetic sample under data/)")
    parser.add_argument("--database-url", default=argparse.SUPPRESS,
                        help="SQLAlchemy database URL; env DATABASE_URL (default: SQLite in the state folder)")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common(common)
    parser = argparse.ArgumentParser(prog="nautilus-workbench", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="serve the web app")
    serve.add_argument("--port", type=int, default=5006)
    serve.add_argument("--address", default="127.0.0.1",
                       help="interface to listen on (0.0.0.0 to accept remote browsers)")
    serve.add_argument("--allow-websocket-origin", action="append", default=None,
                       help="extra host[:port] browsers may connect from (repeatable)")
    serve.add_argument("--show", action="store_true", help="open a browser tab")

    catalog = commands.add_parser("catalog", help="inspect the data catalog")
    catalog_cmds = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    catalog_list = catalog_cmds.add_parser("list", parents=[common],
                                           help="instruments and stored series with coverage")
    catalog_list.add_argument("--json", action="store_true")

    templates = commands.add_parser("templates", help="strategy and engine templates")
    templates_cmds = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")
    templates_list = templates_cmds.add_parser("list", parents=[common], help="templates and their parameters")
    templates_list.add_argument("--json", action="store_true")

    backtest = commands.add_parser("backtest", help="run and inspect backtests")
    bt_cmds = backtest.add_subparsers(dest="backtest_command", required=True, metavar="ACTION")
    run = bt_cmds.add_parser("run", parents=[common], help="run a backtest and wait for it")
    run.add_argument("--strategy", required=True, help="strategy template name (see 'templates list')")
    run.add_argument("--bar-type", required=True, help="bar type (see 'catalog list')")
    run.add_argument("--start", help="ISO date/time (default: start of the data)")
    run.add_argument("--end", help="ISO date/time (default: end of the data)")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="strategy parameter (repeatable)")
    run.add_argument("--balance", help='starting balance, e.g. "1000000 USD"')
    run.add_argument("--venue", action="append", default=[], metavar="KEY=VALUE",
                     help="venue setting of the backtest engine template, e.g. oms_type=HEDGING")
    run.add_argument("--label", default="", help="free text shown with the run")
    run.add_argument("--timeout", type=float, default=None, help="give up waiting after N seconds")
    run.add_argument("--json", action="store_true")

    listing = bt_cmds.add_parser("list", parents=[common], help="recent runs")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--limit", type=int, default=50)

    show = bt_cmds.add_parser("show", parents=[common], help="one run with its statistics")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")

    cancel = bt_cmds.add_parser("cancel", parents=[common], help="cancel a queued or running run")
    cancel.add_argument("run_id")

    report = commands.add_parser("report", parents=[common],
                                 help="write a standalone HTML report of a run (or a comparison)")
    report.add_argument("run_id")
    report.add_argument("-o", "--output", required=True, help="HTML file to write")
    report.add_argument("--compare", nargs="+", default=[], metavar="RUN_ID",
                        help="other runs to compare with RUN_ID")
    report.add_argument("--trades", help="also write the trades table (.csv or .parquet)")
    report.add_argument("--equity", help="also write the per-bar equity (.csv or .parquet)")
    return parser


def _open(args) -> Workbench:
    return Workbench.open(
        state_dir=getattr(args, "state_dir", None),
        catalog=getattr(args, "catalog", None),
        database_url=getattr(args, "database_url", None),
    )


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise WorkbenchError(f"{flag} expects KEY=VALUE, was {item!r}")
        result[key.strip()] = value.strip()
    return result


def _venue_settings(args) -> VenueSettings:
    venue = _key_values(args.venue, "--venue")
    if args.balance:
        parts = args.balance.split()
        if len(parts) != 2:
            raise WorkbenchError(f'--balance expects "AMOUNT CURRENCY" such as "1000000 USD", '
                                 f"was {args.balance!r}")
        venue["starting_balance"], venue["currency"] = parts[0], parts[1]
    known = set(VenueSettings.__dataclass_fields__)
    unknown = sorted(set(venue) - known)
    if unknown:
        raise WorkbenchError(f"--venue: unknown settings {unknown}; known: {sorted(known)}")
    return VenueSettings(**venue)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _print_json(data: Any) -> None:
    print(json.dumps(_jsonable(data), indent=2))


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=False))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) for row in rows]
    return "\n".join(lines)


def cmd_catalog_list(wb: Workbench, args) -> int:
    instruments = wb.catalog.instruments()
    series = wb.catalog.series()
    backtestable = wb.catalog.backtestable()
    if args.json:
        _print_json({
            "catalog": wb.catalog.location,
            "synthetic_sample": wb.catalog.is_sample,
            "instruments": [i.__dict__ for i in instruments],
            "series": [s.__dict__ for s in series],
            "bar_types": [b.__dict__ for b in backtestable],
        })
        return 0
    label = " (synthetic sample data)" if wb.catalog.is_sample else ""
    print(f"Catalog: {wb.catalog.location}{label}")
    if not series:
        print("The catalog holds no data.")
        return 0
    print(_table([[s.key, s.data_type, f"{s.first:%Y-%m-%d %H:%M}", f"{s.last:%Y-%m-%d %H:%M}",
                   f"{s.rows:,}"] for s in series], ["SERIES", "TYPE", "FIRST (UTC)", "LAST (UTC)", "ROWS"]))
    print("\nBar types for backtests:")
    for b in backtestable:
        how = "stored bars" if b.data_type == "bars" else "aggregated from quotes"
        print(f"  {b.bar_type}  ({how})")
    return 0


def cmd_templates_list(wb: Workbench, args) -> int:
    summaries = wb.templates.summaries()
    if args.json:
        _print_json([s.__dict__ for s in summaries])
        return 1 if any(s.error for s in summaries) else 0
    for s in summaries:
        print(f"{s.name} [{s.kind}] - {s.title}")
        if s.error:
            print(f"  INVALID: {s.error}")
            continue
        for name, p in s.parameters.items():
            bounds = f" [{p.get('min')} .. {p.get('max')}]" if "min" in p else ""
            choices = f" one of {p['choices']}" if "choices" in p else ""
            print(f"  {name}: {p['type']} = {p['default']}{bounds}{choices}  {p['help']}")
    return 1 if any(s.error for s in summaries) else 0


def _run_payload(wb: Workbench, run_id: str) -> dict:
    info = wb.backtests.get(run_id)
    payload = {
        "run_id": info.run_id, "status": info.status, "strategy": info.strategy,
        "bar_type": info.bar_type, "start": info.start, "end": info.end,
        "parameters": info.parameters, "error": info.error, "run_folder": info.run_folder,
        "duration_seconds": info.duration_seconds,
        "orders": None, "fills": None, "positions": None, "final_balances": None,
        "statistics": None, "warnings": [],
    }
    if info.status == "Completed":
        results = wb.backtests.results(run_id)
        summary = results.summary
        payload.update({k: summary[k] for k in ("orders", "fills", "positions", "final_balances",
                                                "statistics", "warnings")})
    return payload


def _print_run(payload: dict) -> None:
    print(f"Run {payload['run_id']}: {payload['status']}")
    print(f"  {payload['strategy']} on {payload['bar_type']}")
    if payload["error"]:
        print(f"  Error: {payload['error']}")
    if payload["statistics"]:
        currency = ", ".join(payload["final_balances"] or {})
        print(f"  Orders {payload['orders']:,}  fills {payload['fills']:,}  positions {payload['positions']:,}")
        for key, (label, _) in HEADLINE_LABELS.items():
            print(f"  {label:<20} {format_statistic(key, payload['statistics'].get(key), currency)}")
        for warning in payload["warnings"]:
            print(f"  Warning: {warning}")
    print(f"  Run folder: {payload['run_folder']}")


def cmd_backtest_run(wb: Workbench, args) -> int:
    spec = BacktestSpec(
        strategy=args.strategy, bar_type=args.bar_type, start=args.start, end=args.end,
        parameters=_key_values(args.param, "--param"), venue=_venue_settings(args), label=args.label,
    )
    run_id = wb.backtests.submit(spec, actor="cli")
    if not args.json:
        print(f"Submitted run {run_id}; waiting for it to finish...", file=sys.stderr)
    info = wb.backtests.wait(run_id, timeout=args.timeout)
    payload = _run_payload(wb, run_id)
    _print_json(payload) if args.json else _print_run(payload)
    return 0 if info.status == "Completed" else EXIT_FAILED_RUN


def cmd_backtest_list(wb: Workbench, args) -> int:
    runs = wb.backtests.list_runs(limit=args.limit)
    if args.json:
        _print_json([{k: getattr(r, k) for k in (
            "run_id", "status", "strategy", "instrument_id", "bar_type", "start", "end", "label",
            "parameters", "created_at", "started_at", "finished_at", "error", "total_return",
            "sharpe", "max_drawdown", "num_trades", "final_equity", "currency", "run_folder")}
            for r in runs])
        return 0
    if not runs:
        print("No backtests yet. Run one with 'nautilus-workbench backtest run --strategy ema_cross "
              "--bar-type ...' or in the web app.")
        return 0
    print(_table([[r.run_id, r.status, r.strategy, r.bar_type,
                   format_statistic("total_return", r.total_return),
                   format_statistic("sharpe", r.sharpe),
                   format_statistic("num_trades", r.num_trades)] for r in runs],
                 ["RUN", "STATUS", "STRATEGY", "BAR TYPE", "RETURN", "SHARPE", "TRADES"]))
    return 0


def cmd_backtest_show(wb: Workbench, args) -> int:
    payload = _run_payload(wb, args.run_id)
    _print_json(payload) if args.json else _print_run(payload)
    return 0


def cmd_backtest_cancel(wb: Workbench, args) -> int:
    info = wb.backtests.cancel(args.run_id, actor="cli")
    print(f"Run {info.run_id}: {info.status}")
    return 0


def _write_table(frame, path: str) -> None:
    if path.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif path.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        raise WorkbenchError(f"Cannot tell the format of {path!r}: end it in .csv or .parquet")


def cmd_report(wb: Workbench, args) -> int:
    from components.report import export_comparison_report, export_run_report
    from components.results_viewer import trades_frame

    try:
        if args.compare:
            path = export_comparison_report(wb, [args.run_id, *args.compare], args.output)
        else:
            path = export_run_report(wb, args.run_id, args.output)
    except OSError as e:
        raise WorkbenchError(f"Cannot write {args.output}: {e.strerror or e}") from e
    print(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if args.trades or args.equity:
        results = wb.backtests.results(args.run_id)
        if args.trades:
            _write_table(trades_frame(results), args.trades)
            print(f"Wrote {args.trades}")
        if args.equity:
            _write_table(results.equity.reset_index(), args.equity)
            print(f"Wrote {args.equity}")
    return 0


def cmd_serve(args) -> int:
    from app.server import serve

    serve(port=args.port, address=args.address, show=args.show,
          extra_origins=args.allow_websocket_origin or [],
          state_dir=getattr(args, "state_dir", None), catalog=getattr(args, "catalog", None),
          database_url=getattr(args, "database_url", None))
    return 0


_HANDLERS = {
    ("catalog", "list"): cmd_catalog_list,
    ("templates", "list"): cmd_templates_list,
    ("backtest", "run"): cmd_backtest_run,
    ("backtest", "list"): cmd_backtest_list,
    ("backtest", "show"): cmd_backtest_show,
    ("backtest", "cancel"): cmd_backtest_cancel,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wants_json = getattr(args, "json", False)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        wb = _open(args)
        if args.command == "report":
            return cmd_report(wb, args)
        action = getattr(args, f"{args.command}_command")
        return _HANDLERS[(args.command, action)](wb, args)
    except WorkbenchError as e:
        if wants_json:
            _print_json({"error": str(e), "problems": getattr(e, "problems", [])})
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

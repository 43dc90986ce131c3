"""``nautilus-workbench``: serve the app, list the catalog and templates, run backtests, engines.

Scripts depend on these command names and on the JSON they print; add, never rename.
Every WorkbenchError ends as one line on stderr (and a JSON object with ``--json``) and a
non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

from app.cli_engine import ENGINE_HANDLERS, add_engine_parser
from services import Workbench, WorkbenchError
from services.backtest import BacktestSpec, VenueSettings
from services.backtest.statistics import HEADLINE_LABELS, format_statistic
from services.catalog.calendars import calendar_names, get_calendar
from services.catalog.importer import INSTRUMENT_TYPES, ImportOptions
from services.catalog.quality import DEFAULT_OUTLIER_Z

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
    parser.add_argument("--token", default=argparse.SUPPRESS,
                        help="act as the user of this API token; env WORKBENCH_TOKEN (default: the "
                             "local operator, audited as local:<os user>)")


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
    serve.add_argument("--max-parallel", type=int, metavar="N",
                       help="backtests at once on local workers (default: the number of cores)")
    serve.add_argument("--dask-address", metavar="ADDR",
                       help="also run backtests on Dask: a scheduler (tcp://HOST:8786) or 'local' "
                            "for a LocalCluster on this machine")

    catalog = commands.add_parser("catalog", help="inspect the data catalog")
    catalog_cmds = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    catalog_list = catalog_cmds.add_parser("list", parents=[common],
                                           help="instruments and stored series with coverage")
    catalog_list.add_argument("--json", action="store_true")

    imp = catalog_cmds.add_parser("import", parents=[common],
                                  help="import a CSV or Parquet file (path or fsspec URL)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--instrument-id", required=True, help="e.g. BTCUSDT-PERP.BINANCE")
    imp.add_argument("--instrument-type", choices=INSTRUMENT_TYPES,
                     help="for a new instrument (default: guessed from the id)")
    kind = imp.add_mutually_exclusive_group()
    kind.add_argument("--bar-spec", help="bars, e.g. 1-MINUTE-LAST (default: from the spacing)")
    kind.add_argument("--data-type", choices=["quotes", "trades"], help="ticks instead of bars")
    imp.add_argument("--timezone", default="UTC", help="of timestamps without an offset")
    imp.add_argument("--timestamps", choices=["open", "close"],
                     help="bars: the time is the bar's open or close (default: close; Binance "
                          "klines: open)")
    imp.add_argument("--delimiter", help="CSV delimiter (default: detected)")
    imp.add_argument("--column", action="append", default=[], metavar="FIELD=COLUMN",
                     help="map a column, e.g. timestamp=Time or close=Last (repeatable)")
    imp.add_argument("--price-precision", type=int, help="new instrument (default: from data)")
    imp.add_argument("--size-precision", type=int, help="new instrument (default: from data)")
    imp.add_argument("--calendar", choices=calendar_names(), help="calendar of the gap check")
    imp.add_argument("--dry-run", action="store_true", help="parse and check only; write nothing")
    imp.add_argument("--json", action="store_true")

    check = catalog_cmds.add_parser("check", parents=[common], help="quality checks of a series")
    check.add_argument("series", metavar="SERIES",
                       help="a bar type, or INSTRUMENT_ID:quotes / INSTRUMENT_ID:trades")
    check.add_argument("--calendar", choices=calendar_names(),
                       help="trading calendar (default: by instrument class)")
    check.add_argument("--start", help="ISO date/time")
    check.add_argument("--end", help="ISO date/time")
    check.add_argument("--outlier-z", type=float, default=DEFAULT_OUTLIER_Z,
                       help="robust z-score of a return that counts as an outlier")
    check.add_argument("--min-gap", type=int, default=1, help="bars: report gaps of at least N bars")
    check.add_argument("--report", help="also write the offenders to FILE (.csv or .json)")
    check.add_argument("--json", action="store_true")

    export = catalog_cmds.add_parser("export", parents=[common], help="write a series to CSV/Parquet")
    export.add_argument("series", metavar="SERIES")
    export.add_argument("--start", help="ISO date/time")
    export.add_argument("--end", help="ISO date/time")
    export.add_argument("-o", "--output", required=True, help="file ending in .csv or .parquet")
    export.add_argument("--json", action="store_true")

    delete = catalog_cmds.add_parser("delete", parents=[common],
                                     help="delete a series or a date range of it (audited)")
    delete.add_argument("series", metavar="SERIES")
    delete.add_argument("--start", help="ISO date/time (default: the first row)")
    delete.add_argument("--end", help="ISO date/time (default: the last row)")
    delete.add_argument("--yes", action="store_true", help="confirm: deletion cannot be undone")
    delete.add_argument("--json", action="store_true")

    convert = catalog_cmds.add_parser("convert", parents=[common],
                                      help="ticks to bars, or bars to a larger interval")
    convert.add_argument("series", metavar="SERIES")
    convert.add_argument("--bar-spec", required=True, help="target, e.g. 5-MINUTE-LAST")
    convert.add_argument("--start", help="ISO date/time")
    convert.add_argument("--end", help="ISO date/time")
    convert.add_argument("--json", action="store_true")

    calendars = catalog_cmds.add_parser("calendars", help="trading calendars for gap checks")
    calendars.add_argument("--json", action="store_true")

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

    cancel = bt_cmds.add_parser("cancel", parents=[common],
                                help="cancel a queued, running or paused run")
    cancel.add_argument("run_id")
    pause = bt_cmds.add_parser("pause", parents=[common],
                               help="pause a running run (its worker uses no CPU until resumed)")
    pause.add_argument("run_id")
    resume = bt_cmds.add_parser("resume", parents=[common], help="resume a paused run")
    resume.add_argument("run_id")

    sweep = bt_cmds.add_parser("sweep", parents=[common],
                               help="run a parameter sweep (grid or random draws) and wait for it")
    sweep.add_argument("--strategy", required=True, help="strategy template name")
    sweep.add_argument("--bar-type", required=True, help="bar type (see 'catalog list')")
    sweep.add_argument("--start", help="ISO date/time (default: start of the data)")
    sweep.add_argument("--end", help="ISO date/time (default: end of the data)")
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="values of a parameter to vary; LOW..HIGH:STEP is a range "
                            "(repeatable, one per parameter)")
    sweep.add_argument("--random", type=int, metavar="N",
                       help="run N random draws from the grid instead of all of it")
    sweep.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    sweep.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                       help='skip combinations breaking EXPR, e.g. "fast_ema_period<slow_ema_period" '
                            "(the template's own constraints always apply)")
    sweep.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                       help="a parameter every run shares (repeatable)")
    sweep.add_argument("--balance", help='starting balance, e.g. "1000000 USDT"')
    sweep.add_argument("--venue", action="append", default=[], metavar="KEY=VALUE",
                       help="venue setting of the backtest engine template")
    sweep.add_argument("--runtime", choices=["local", "docker", "dask"], default="local",
                       help="where the runs execute (default: local worker processes)")
    sweep.add_argument("--dask-address", metavar="ADDR",
                       help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default with --runtime "
                            "dask: a LocalCluster on this machine)")
    sweep.add_argument("--max-parallel", type=int, metavar="N",
                       help="runs at once (default: the number of cores, or the cluster's threads)")
    sweep.add_argument("--metric", default="sharpe",
                       help="metric the summary ranks the runs by (default: sharpe)")
    sweep.add_argument("--label", default="", help="free text shown with every run")
    sweep.add_argument("--timeout", type=float, default=None, help="give up waiting after N seconds")
    sweep.add_argument("--json", action="store_true")

    sweeps = bt_cmds.add_parser("sweeps", parents=[common], help="recent sweeps")
    sweeps.add_argument("--json", action="store_true")

    report = commands.add_parser("report", parents=[common],
                                 help="write a standalone HTML report of a run (or a comparison)")
    report.add_argument("run_id")
    report.add_argument("-o", "--output", required=True, help="HTML file to write")
    report.add_argument("--compare", nargs="+", default=[], metavar="RUN_ID",
                        help="other runs to compare with RUN_ID")
    report.add_argument("--trades", help="also write the trades table (.csv or .parquet)")
    report.add_argument("--equity", help="also write the per-bar equity (.csv or .parquet)")

    add_engine_parser(commands, common, _key_values)
    return parser


def _open(args) -> Workbench:
    local_parallel = getattr(args, "max_parallel", None) if getattr(
        args, "runtime", "local") == "local" else None
    return Workbench.open(
        state_dir=getattr(args, "state_dir", None),
        catalog=getattr(args, "catalog", None),
        database_url=getattr(args, "database_url", None),
        max_parallel=local_parallel if local_parallel and local_parallel > 0 else None,
    )


def _principal(wb: Workbench, args):
    """The user of --token / WORKBENCH_TOKEN, else the local operator (local:<os user>)."""
    token = getattr(args, "token", None) or os.environ.get("WORKBENCH_TOKEN")
    return wb.tokens.authenticate(token.strip()) if token else wb.authorizer.default


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


def _progress_printer(enabled: bool):
    """Progress of a long import on stderr, at most once a second (quiet for short ones)."""
    last = [time.monotonic()]

    def show(done: int, total: int | None) -> None:
        now = time.monotonic()
        if not enabled or now - last[0] < 1.0:
            return
        last[0] = now
        share = f"{100 * done / total:.0f}% " if total else ""
        print(f"  read {share}({done / 1e6:,.1f} MB)", file=sys.stderr, flush=True)

    return show


def _print_quality(report) -> None:
    print(f"Quality of {report.series} (calendar {report.calendar}): {report.summary()}")
    for gap in sorted(report.gaps, key=lambda g: -g.missing)[:5]:
        print(f"  gap {gap.start:%Y-%m-%d %H:%M} .. {gap.end:%Y-%m-%d %H:%M} UTC ({gap.missing} missing)")
    for check in ("duplicates", "out_of_order", "ohlc_errors", "non_positive", "crossed", "outliers"):
        for item in report.worst.get(check, [])[:3]:
            print(f"  {check}: " + ", ".join(f"{k}={v}" for k, v in item.items()))


def cmd_catalog_import(wb: Workbench, args) -> int:
    options = ImportOptions(
        instrument_id=args.instrument_id, instrument_type=args.instrument_type,
        bar_spec=args.bar_spec, data_type=args.data_type, timezone=args.timezone,
        timestamps_mark=args.timestamps, delimiter=args.delimiter,
        columns=_key_values(args.column, "--column"), price_precision=args.price_precision,
        size_precision=args.size_precision)
    result = wb.catalog_writer.import_file(
        args.file, options, principal=args.principal, calendar=args.calendar, dry_run=args.dry_run,
        progress=_progress_printer(not args.json))
    if args.json:
        _print_json(result.to_dict())
        return 0
    verb = "Checked (dry run, nothing written)" if result.dry_run else "Imported"
    print(f"{verb} {result.rows:,} rows into {result.series_key} "
          f"({result.first:%Y-%m-%d %H:%M} .. {result.last:%Y-%m-%d %H:%M} UTC) in "
          f"{result.seconds:.1f} s" + ("; created the instrument" if result.instrument_created else ""))
    _print_quality(result.quality)
    return 0


def cmd_catalog_check(wb: Workbench, args) -> int:
    report = wb.catalog.check(args.series, calendar=args.calendar, start=args.start, end=args.end,
                              outlier_z=args.outlier_z, min_gap=args.min_gap)
    if args.report:
        if args.report.endswith(".json"):
            with open(args.report, "w", encoding="utf-8") as fh:
                json.dump(_jsonable(report.to_dict()), fh, indent=2)
        else:
            _write_table(report.offenders_frame(), args.report)
    if args.json:
        _print_json(report.to_dict())
    else:
        _print_quality(report)
    return 0


def cmd_catalog_export(wb: Workbench, args) -> int:
    rows = wb.catalog_writer.export(args.series, args.output, start=args.start, end=args.end,
                                   principal=args.principal)
    if args.json:
        _print_json({"series": args.series, "rows": rows, "output": args.output})
    else:
        print(f"Wrote {rows:,} rows of {args.series} to {args.output}")
    return 0


def cmd_catalog_delete(wb: Workbench, args) -> int:
    result = wb.catalog_writer.delete(args.series, args.start, args.end, confirm=args.yes,
                                      principal=args.principal)
    if args.json:
        _print_json(result.to_dict())
    else:
        what = "the whole series" if result.whole_series else "the range"
        print(f"Deleted {what} of {result.series_key}: {result.rows_deleted:,} rows "
              f"({result.files_removed} files removed, {result.files_rewritten} rewritten)")
    return 0


def cmd_catalog_convert(wb: Workbench, args) -> int:
    result = wb.catalog_writer.convert(args.series, args.bar_spec, principal=args.principal,
                                       start=args.start,
                                       end=args.end)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(f"Wrote {result.rows:,} bars to {result.series_key}")
        _print_quality(result.quality)
    return 0


def cmd_catalog_calendars(args) -> int:
    calendars = [get_calendar(n).describe() for n in calendar_names()]
    if args.json:
        _print_json(calendars)
    else:
        for c in calendars:
            print(f"{c['name']:<12} {c['description']}")
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
    run_id = wb.backtests.submit(spec, principal=args.principal)
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
    info = wb.backtests.cancel(args.run_id, principal=args.principal)
    print(f"Run {info.run_id}: {info.status}")
    return 0


def cmd_backtest_pause(wb: Workbench, args) -> int:
    info = wb.backtests.pause(args.run_id, principal=args.principal)
    print(f"Run {info.run_id}: {info.status}")
    return 0


def cmd_backtest_resume(wb: Workbench, args) -> int:
    info = wb.backtests.resume(args.run_id, principal=args.principal)
    print(f"Run {info.run_id}: {info.status}")
    return 0


def _grid(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise WorkbenchError(f"--grid expects KEY=V1,V2,... or KEY=LOW..HIGH:STEP, was {item!r}")
        grid.setdefault(key.strip(), []).append(values.strip())
    return grid


class _ProgressBar:
    """A one-line progress bar on stderr (a line per change when stderr is not a terminal)."""

    WIDTH = 30

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last = ""

    def __call__(self, info) -> None:
        total = len(info.runs)
        final = info.count("Completed", "Failed", "Cancelled")
        filled = round(info.progress * self.WIDTH)
        counts = (f"{final}/{total} done, {info.count('Running')} running, "
                  f"{info.count('Paused')} paused, {info.count('Queued')} queued")
        line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {info.progress:4.0%}  {counts}"
        if self._tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif counts != self._last:
            print(line, file=sys.stderr, flush=True)
        self._last = counts

    def close(self) -> None:
        if self._tty:
            print(file=sys.stderr)


def cmd_backtest_sweep(wb: Workbench, args) -> int:
    from services.backtest.runtime import DaskRuntime
    from services.backtest.sweep import SweepSpec

    if args.max_parallel is not None and args.max_parallel < 1:
        raise WorkbenchError(f"--max-parallel must be at least 1, was {args.max_parallel}")
    if args.dask_address and args.runtime != "dask":
        raise WorkbenchError("--dask-address needs --runtime dask")
    spec = SweepSpec(
        strategy=args.strategy, bar_type=args.bar_type, start=args.start, end=args.end,
        grid=_grid(args.grid), random_draws=args.random, constraints=tuple(args.constraint),
        fixed=_key_values(args.param, "--param"), venue=_venue_settings(args), seed=args.seed,
        label=args.label,
    )
    if args.runtime == "dask":
        if not args.json:
            print(f"Connecting to {args.dask_address or 'a new Dask LocalCluster'}...",
                  file=sys.stderr)
        wb.backtests.attach_runtime(DaskRuntime(args.dask_address, max_parallel=args.max_parallel))
    elif args.runtime == "docker":
        from services.backtest.docker_runtime import DockerRuntime

        wb.backtests.attach_runtime(DockerRuntime(max_parallel=args.max_parallel))
    elif args.max_parallel:
        wb.backtests.max_parallel = args.max_parallel
    try:
        sweep_id = wb.backtests.submit_sweep(spec, principal=args.principal,
                                                 runtime=args.runtime)
        info = wb.backtests.sweep(sweep_id)
        print(f"Sweep {sweep_id}: {len(info.runs)} runs on the {args.runtime} runtime",
              file=sys.stderr)
        bar = _ProgressBar()
        try:
            info = wb.backtests.wait_sweep(sweep_id, timeout=args.timeout, on_progress=bar)
        except KeyboardInterrupt:
            bar.close()
            wb.backtests.stop_sweep(sweep_id, principal=args.principal)
            print(f"Stopped sweep {sweep_id}: its unfinished runs are cancelled.", file=sys.stderr)
            raise
        bar.close()
        board = wb.backtests.leaderboard(sweep_id, args.metric)
    finally:
        wb.backtests.close()
    payload = _sweep_payload(wb, info, board, args.metric)
    if args.json:
        _print_json(payload)
    else:
        _print_sweep(payload, board, args.metric)
    return 0 if info.status == "Completed" else EXIT_FAILED_RUN


def _sweep_payload(wb: Workbench, info, board, metric: str) -> dict:
    # Runs in leaderboard order: the best completed run first.
    order = {run_id: i for i, run_id in enumerate(board["run_id"])} if len(board) else {}
    runs = sorted(info.runs, key=lambda r: order.get(r.run_id, len(order)))
    ranked = board[(board["status"] == "Completed") & board[metric].notna()] if len(board) else board
    return {
        "sweep_id": info.sweep_id, "status": info.status, "runtime": info.runtime,
        "strategy": info.strategy, "bar_type": info.bar_type, "metric": metric,
        "best_run_id": ranked["run_id"].iloc[0] if len(ranked) else None,
        "runs": [{
            "run_id": r.run_id, "parameters": r.parameters, "status": r.status,
            "error": r.error, "cpu_seconds": r.cpu_seconds, "memory_bytes": r.memory_bytes,
            "statistics": wb.backtests.run_statistics(r) if r.status == "Completed" else None,
        } for r in runs],
    }


def _print_sweep(payload: dict, board, metric: str) -> None:
    print(f"Sweep {payload['sweep_id']}: {payload['status']} "
          f"({len(payload['runs'])} runs, {payload['runtime']} runtime), ranked by {metric}")
    varied = [c for c in board.columns if c not in ("run_id", "status", metric, "total_return",
                                                     "sharpe", "max_drawdown", "num_trades")]
    rows = [[r["run_id"], r["status"], *(str(r["parameters"].get(k)) for k in varied),
             format_statistic(metric, (r["statistics"] or {}).get(metric)),
             format_statistic("total_return", (r["statistics"] or {}).get("total_return"))]
            for r in payload["runs"]]
    print(_table(rows, ["RUN", "STATUS", *[k.upper() for k in varied], metric.upper(), "RETURN"]))
    for r in payload["runs"]:
        if r["error"] and r["status"] == "Failed":
            print(f"  {r['run_id']}: {r['error']}")
    if payload["best_run_id"]:
        print(f"Best run: {payload['best_run_id']} (open it with 'nautilus-workbench backtest "
              f"show {payload['best_run_id']}' or /results?run={payload['best_run_id']})")


def cmd_backtest_sweeps(wb: Workbench, args) -> int:
    sweeps = wb.backtests.list_sweeps()
    if args.json:
        _print_json([{"sweep_id": s.sweep_id, "status": s.status, "strategy": s.strategy,
                      "bar_type": s.bar_type, "runtime": s.runtime, "created_at": s.created_at,
                      "runs": len(s.runs), "completed": s.count("Completed")} for s in sweeps])
        return 0
    if not sweeps:
        print("No sweeps yet. Start one with 'nautilus-workbench backtest sweep ...'.")
        return 0
    print(_table([[s.sweep_id, s.status, s.strategy, s.bar_type, s.runtime,
                   f"{s.count('Completed')}/{len(s.runs)}"] for s in sweeps],
                 ["SWEEP", "STATUS", "STRATEGY", "BAR TYPE", "RUNTIME", "COMPLETED"]))
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
          database_url=getattr(args, "database_url", None), max_parallel=args.max_parallel,
          dask_address=args.dask_address)
    return 0


_HANDLERS = {
    ("catalog", "list"): cmd_catalog_list,
    ("catalog", "import"): cmd_catalog_import,
    ("catalog", "check"): cmd_catalog_check,
    ("catalog", "export"): cmd_catalog_export,
    ("catalog", "delete"): cmd_catalog_delete,
    ("catalog", "convert"): cmd_catalog_convert,
    ("templates", "list"): cmd_templates_list,
    ("backtest", "run"): cmd_backtest_run,
    ("backtest", "list"): cmd_backtest_list,
    ("backtest", "show"): cmd_backtest_show,
    ("backtest", "cancel"): cmd_backtest_cancel,
    ("backtest", "pause"): cmd_backtest_pause,
    ("backtest", "resume"): cmd_backtest_resume,
    ("backtest", "sweep"): cmd_backtest_sweep,
    ("backtest", "sweeps"): cmd_backtest_sweeps,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    wants_json = getattr(args, "json", False)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "catalog" and args.catalog_command == "calendars":
            return cmd_catalog_calendars(args)
        wb = _open(args)
        args.principal = _principal(wb, args)
        if args.command == "report":
            return cmd_report(wb, args)
        if args.command == "engine":
            return ENGINE_HANDLERS[args.engine_command](wb, args)
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

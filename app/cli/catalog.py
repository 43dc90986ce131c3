"""``nautilus-workbench catalog ...``: list, import, check, export, delete, convert, calendars."""

from __future__ import annotations

import json
import sys
import time

from app.cli.output import check_writable, jsonable, key_values, print_json, table, write_table
from services.errors import WorkbenchError
from services.formatting import format_count

_H = "app.cli.catalog:"


def register(commands, common) -> None:
    catalog = commands.add_parser("catalog", help="inspect and change the data catalog")
    cmds = catalog.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")

    listing = cmds.add_parser("list", parents=[common],
                              help="instruments and stored series with coverage")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_H + "cmd_list")

    imp = cmds.add_parser("import", parents=[common],
                          help="import a CSV or Parquet file (path or fsspec URL)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--instrument-id", required=True, help="e.g. BTCUSDT-PERP.BINANCE")
    imp.add_argument("--instrument-type",
                     help="fx, crypto-perp, crypto-spot, equity or future, for a new instrument "
                          "(default: guessed from the id)")
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
    imp.add_argument("--calendar", help="calendar of the gap check (see 'catalog calendars')")
    imp.add_argument("--accept-level-change", action="store_true",
                     help="import prices far (10x) from the level the instrument holds")
    imp.add_argument("--dry-run", action="store_true", help="parse and check only; write nothing")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(handler=_H + "cmd_import")

    check = cmds.add_parser("check", parents=[common], help="quality checks of a series")
    check.add_argument("series", metavar="SERIES",
                       help="a bar type, or INSTRUMENT_ID:quotes / INSTRUMENT_ID:trades")
    check.add_argument("--calendar", help="trading calendar (default: by instrument class)")
    check.add_argument("--start", help="ISO date/time")
    check.add_argument("--end", help="ISO date/time, included; a day alone is that whole day")
    check.add_argument("--outlier-z", type=float, default=None,
                       help="robust z-score of a return that counts as an outlier (default 20)")
    check.add_argument("--min-gap", type=int, default=1,
                       help="bars: report gaps of at least N bars")
    check.add_argument("--report", help="also write the offenders to FILE (.csv or .json)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=_H + "cmd_check")

    export = cmds.add_parser("export", parents=[common], help="write a series to CSV/Parquet")
    export.add_argument("series", metavar="SERIES")
    export.add_argument("--start", help="ISO date/time")
    export.add_argument("--end", help="ISO date/time, included; a day alone is that whole day")
    export.add_argument("-o", "--output", required=True, help="file ending in .csv or .parquet")
    export.add_argument("--json", action="store_true")
    export.set_defaults(handler=_H + "cmd_export")

    delete = cmds.add_parser("delete", parents=[common],
                             help="delete a series or a date range of it (audited)")
    delete.add_argument("series", metavar="SERIES")
    delete.add_argument("--start", help="ISO date/time (default: the first row)")
    delete.add_argument("--end", help="ISO date/time, included; a day alone is that whole day "
                        "(default: the last row)")
    delete.add_argument("--yes", action="store_true", help="confirm: deletion cannot be undone")
    delete.add_argument("--json", action="store_true")
    delete.set_defaults(handler=_H + "cmd_delete")

    convert = cmds.add_parser("convert", parents=[common],
                              help="ticks to bars, or bars to a larger interval")
    convert.add_argument("series", metavar="SERIES")
    convert.add_argument("--bar-spec", required=True, help="target, e.g. 5-MINUTE-LAST")
    convert.add_argument("--start", help="ISO date/time")
    convert.add_argument("--end", help="ISO date/time, included; a day alone is that whole day")
    convert.add_argument("--json", action="store_true")
    convert.set_defaults(handler=_H + "cmd_convert")

    calendars = cmds.add_parser("calendars", help="trading calendars for gap checks")
    calendars.add_argument("--json", action="store_true")
    calendars.set_defaults(handler=_H + "cmd_calendars", without_workbench=True)


def cmd_list(wb, args) -> int:
    instruments = wb.catalog.instruments()
    series = wb.catalog.series()
    coverage = {c.key: c for c in wb.catalog.coverages()}
    backtestable = wb.catalog.backtestable()
    if args.json:
        print_json({
            "catalog": wb.catalog.location,
            "synthetic_sample": wb.catalog.is_sample,
            "instruments": [i.__dict__ for i in instruments],
            "series": [{**s.__dict__, "origin": coverage[s.key].origin,
                        "calendar": coverage[s.key].calendar,
                        "segments": [g.__dict__ for g in coverage[s.key].segments],
                        "holes": [h.__dict__ for h in coverage[s.key].holes]} for s in series],
            "bar_types": [b.__dict__ for b in backtestable],
        })
        return 0
    label = " (sample catalog: synthetic data, except what was imported)" if wb.catalog.is_sample else ""
    print(f"Catalog: {wb.catalog.location}{label}")
    if not series:
        print("The catalog holds no data.")
        return 0
    print(table([[s.key, s.data_type, coverage[s.key].origin, f"{s.first:%Y-%m-%d %H:%M}",
                  f"{s.last:%Y-%m-%d %H:%M}", coverage[s.key].holes_summary(),
                  format_count(s.rows)] for s in series],
                ["SERIES", "TYPE", "SOURCE", "FIRST (UTC)", "LAST (UTC)", "HOLES", "ROWS"]))
    for s in series:
        if coverage[s.key].holes:
            print(f"{s.key} has data {coverage[s.key].describe()}")
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


def print_quality(report) -> None:
    print(f"Quality of {report.series} (calendar {report.calendar}): {report.summary()}")
    for gap in sorted(report.gaps, key=lambda g: -g.missing)[:5]:
        print(f"  gap {gap.start:%Y-%m-%d %H:%M} .. {gap.end:%Y-%m-%d %H:%M} UTC "
              f"({gap.missing} missing)")
    for check in ("duplicates", "out_of_order", "ohlc_errors", "non_positive", "crossed",
                  "outliers"):
        for item in report.worst.get(check, [])[:3]:
            print(f"  {check}: " + ", ".join(f"{k}={v}" for k, v in item.items()))


def cmd_import(wb, args) -> int:
    from services.catalog.importer import ImportOptions

    options = ImportOptions(
        instrument_id=args.instrument_id, instrument_type=args.instrument_type,
        bar_spec=args.bar_spec, data_type=args.data_type, timezone=args.timezone,
        timestamps_mark=args.timestamps, delimiter=args.delimiter,
        columns=key_values(args.column, "--column"), price_precision=args.price_precision,
        size_precision=args.size_precision, accept_level_change=args.accept_level_change)
    result = wb.catalog_writer.import_file(
        args.file, options, principal=args.principal, calendar=args.calendar,
        dry_run=args.dry_run, progress=_progress_printer(not args.json))
    if args.json:
        print_json(result.to_dict())
        return 0
    verb = "Checked (dry run, nothing written)" if result.dry_run else "Imported"
    print(f"{verb} {result.rows:,} rows into {result.series_key} "
          f"({result.first:%Y-%m-%d %H:%M} .. {result.last:%Y-%m-%d %H:%M} UTC) in "
          f"{result.seconds:.1f} s"
          + ("; created the instrument" if result.instrument_created else ""))
    print_quality(result.quality)
    return 0


def cmd_check(wb, args) -> int:
    from services.catalog.quality import DEFAULT_OUTLIER_Z

    if args.report:
        check_writable(args.report, (".csv", ".json", ".parquet"))
    report = wb.catalog.check(args.series, calendar=args.calendar, start=args.start, end=args.end,
                              outlier_z=DEFAULT_OUTLIER_Z if args.outlier_z is None
                              else args.outlier_z, min_gap=args.min_gap)
    if args.report:
        if args.report.endswith(".json"):
            try:
                with open(args.report, "w", encoding="utf-8") as fh:
                    json.dump(jsonable(report.to_dict()), fh, indent=2)
            except OSError as e:
                raise WorkbenchError(f"Cannot write {args.report}: {e.strerror or e}") from e
        else:
            write_table(report.offenders_frame(), args.report)
    if args.json:
        print_json(report.to_dict())
    else:
        print_quality(report)
    return 0


def cmd_export(wb, args) -> int:
    check_writable(args.output)
    rows = wb.catalog_writer.export(args.series, args.output, start=args.start, end=args.end,
                                    principal=args.principal)
    if args.json:
        print_json({"series": args.series, "rows": rows, "output": args.output})
    else:
        print(f"Wrote {rows:,} rows of {args.series} to {args.output}")
    return 0


def cmd_delete(wb, args) -> int:
    result = wb.catalog_writer.delete(args.series, args.start, args.end, confirm=args.yes,
                                      principal=args.principal)
    if args.json:
        print_json(result.to_dict())
    else:
        what = "the whole series" if result.whole_series else "the range"
        print(f"Deleted {what} of {result.series_key}: {result.rows_deleted:,} rows "
              f"({result.files_removed} files removed, {result.files_rewritten} rewritten)")
    return 0


def cmd_convert(wb, args) -> int:
    result = wb.catalog_writer.convert(args.series, args.bar_spec, principal=args.principal,
                                       start=args.start, end=args.end)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"Wrote {result.rows:,} bars to {result.series_key}")
        print_quality(result.quality)
    return 0


def cmd_calendars(args) -> int:
    from services.catalog.calendars import calendar_names, get_calendar

    calendars = [get_calendar(n).describe() for n in calendar_names()]
    if args.json:
        print_json(calendars)
    else:
        for c in calendars:
            print(f"{c['name']:<12} {c['description']}")
    return 0

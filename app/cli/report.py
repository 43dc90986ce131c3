"""``nautilus-workbench report RUN_ID -o FILE.html``: a standalone HTML report."""

from __future__ import annotations

from app.cli.output import check_writable, write_table
from services.errors import WorkbenchError


def register(commands, common) -> None:
    report = commands.add_parser("report", parents=[common],
                                 help="write a standalone HTML report of a run (or a comparison)")
    report.add_argument("run_id")
    report.add_argument("-o", "--output", required=True, help="HTML file to write")
    report.add_argument("--compare", nargs="+", default=[], metavar="RUN_ID",
                        help="other runs to compare with RUN_ID")
    report.add_argument("--trades", help="also write the trades table (.csv or .parquet)")
    report.add_argument("--equity", help="also write the per-bar equity (.csv or .parquet)")
    report.set_defaults(handler="app.cli.report:cmd_report")


def cmd_report(wb, args) -> int:
    from components.report import export_comparison_report, export_run_report
    from components.results_viewer import trades_frame

    check_writable(args.output)
    for table_path in (args.trades, args.equity):
        if table_path:
            check_writable(table_path, (".csv", ".parquet"))
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
            write_table(trades_frame(results), args.trades)
            print(f"Wrote {args.trades}")
        if args.equity:
            write_table(results.equity.reset_index(), args.equity)
            print(f"Wrote {args.equity}")
    return 0

"""``nautilus-workbench backtest ...``: run, list, show, cancel, pause, resume, sweep, sweeps, and
the walk-forward commands (app.cli.walk_forward)."""

from __future__ import annotations

import sys

from app.cli.output import EXIT_FAILED, key_values, print_json, table
from services.errors import WorkbenchError

_H = "app.cli.backtest:"


def register(commands, common) -> None:
    backtest = commands.add_parser("backtest", help="run and inspect backtests")
    cmds = backtest.add_subparsers(dest="backtest_command", required=True, metavar="ACTION")
    run = cmds.add_parser("run", parents=[common], help="run a backtest and wait for it")
    run.add_argument("--strategy", required=True,
                     help="strategy template name (see 'templates list')")
    run.add_argument("--bar-type", required=True, help="bar type (see 'catalog list')")
    run.add_argument("--start", help="ISO date/time (default: start of the data)")
    run.add_argument("--end", help="ISO date/time, included; a day alone is that whole day "
                     "(default: end of the data)")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="strategy parameter (repeatable)")
    run.add_argument("--balance", help='starting balance, e.g. "1000000 USD"')
    run.add_argument("--venue", action="append", default=[], metavar="KEY=VALUE",
                     help="venue setting of the backtest engine template, e.g. oms_type=HEDGING")
    run.add_argument("--label", default="", help="free text shown with the run")
    run.add_argument("--timeout", type=float, default=None,
                     help="give up waiting after N seconds")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=_H + "cmd_run")

    listing = cmds.add_parser("list", parents=[common], help="recent runs")
    listing.add_argument("--json", action="store_true")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=_H + "cmd_list")

    show = cmds.add_parser("show", parents=[common], help="one run with its statistics")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_H + "cmd_show")

    for verb, text in (("cancel", "cancel a queued, running or paused run"),
                       ("pause", "pause a running run (its worker uses no CPU until resumed)"),
                       ("resume", "resume a paused run")):
        sub = cmds.add_parser(verb, parents=[common], help=text)
        sub.add_argument("run_id")
        sub.set_defaults(handler=_H + "cmd_control", verb=verb)

    sweep = cmds.add_parser("sweep", parents=[common],
                            help="run a parameter sweep (grid or random draws) and wait for it")
    add_sweep_options(sweep)
    sweep.set_defaults(handler=_H + "cmd_sweep")

    sweeps = cmds.add_parser("sweeps", parents=[common], help="recent sweeps")
    sweeps.add_argument("--json", action="store_true")
    sweeps.set_defaults(handler=_H + "cmd_sweeps")

    from app.cli import walk_forward

    walk_forward.register(cmds, common)


def add_sweep_options(parser) -> None:
    """The options a sweep and a walk-forward analysis share: what to vary and where to run."""
    parser.add_argument("--strategy", required=True, help="strategy template name")
    parser.add_argument("--bar-type", required=True, help="bar type (see 'catalog list')")
    parser.add_argument("--start", help="ISO date/time (default: start of the data)")
    parser.add_argument("--end", help="ISO date/time, included; a day alone is that whole day "
                     "(default: end of the data)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="values of a parameter to vary; LOW..HIGH:STEP is a range "
                             "(repeatable, one per parameter)")
    parser.add_argument("--random", type=int, metavar="N",
                        help="run N random draws from the grid instead of all of it")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws")
    parser.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                        help='skip combinations breaking EXPR, e.g. "fast_ema_period<slow_ema_period"'
                             " (the template's own constraints always apply)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a parameter every run shares (repeatable)")
    parser.add_argument("--balance", help='starting balance, e.g. "1000000 USDT"')
    parser.add_argument("--venue", action="append", default=[], metavar="KEY=VALUE",
                        help="venue setting of the backtest engine template")
    parser.add_argument("--runtime", choices=["local", "docker", "dask"], default="local",
                        help="where the runs execute (default: local worker processes)")
    parser.add_argument("--dask-address", metavar="ADDR",
                        help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default with --runtime "
                             "dask: a LocalCluster on this machine)")
    parser.add_argument("--max-parallel", type=int, metavar="N",
                        help="runs at once (default: the number of cores, or the cluster's "
                             "threads)")
    parser.add_argument("--metric", default="sharpe",
                        help="metric the runs are ranked by (default: sharpe)")
    parser.add_argument("--partitions", type=int, default=16, metavar="S",
                        help="partitions of the PBO's cross-validation (even, 2..20; default 16)")
    parser.add_argument("--label", default="", help="free text shown with every run")
    parser.add_argument("--timeout", type=float, default=None,
                        help="give up waiting after N seconds")
    parser.add_argument("--json", action="store_true")


def check_sweep_options(wb, args) -> None:
    """Refuse bad options before anything is queued."""
    from services.research.overfitting import check_partitions

    if args.max_parallel is not None and args.max_parallel < 1:
        raise WorkbenchError(f"--max-parallel must be at least 1, was {args.max_parallel}")
    if args.dask_address and args.runtime != "dask":
        raise WorkbenchError("--dask-address needs --runtime dask")
    wb.backtests.validate_metric(args.metric)
    try:
        check_partitions(args.partitions)
    except WorkbenchError as e:
        raise WorkbenchError(f"--partitions: {e}") from None


def attach_runtime(wb, args) -> None:
    """Give this process the runtime ``--runtime`` names (with ``--max-parallel``)."""
    from services.backtest.runtime import DaskRuntime

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


def _venue_settings(args):
    from services.backtest import VenueSettings

    venue = key_values(args.venue, "--venue")
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


def _run_payload(wb, run_id: str) -> dict:
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
    from services.backtest.metric_labels import HEADLINE_LABELS, format_statistic

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


def cmd_run(wb, args) -> int:
    from services.backtest import BacktestSpec

    spec = BacktestSpec(
        strategy=args.strategy, bar_type=args.bar_type, start=args.start, end=args.end,
        parameters=key_values(args.param, "--param"), venue=_venue_settings(args), label=args.label,
    )
    run_id = wb.backtests.submit(spec, principal=args.principal)
    if not args.json:
        print(f"Submitted run {run_id}; waiting for it to finish...", file=sys.stderr)
    here = wb.backtests.scheduled_here([run_id])  # no scheduler running: run it from here
    try:
        info = wb.backtests.wait(run_id, timeout=args.timeout)
    except KeyboardInterrupt:
        wb.backtests.cancel(run_id, principal=args.principal)
        print(f"Cancelled run {run_id}.", file=sys.stderr)
        raise
    finally:
        if here is not None:
            here.stop(wait_for_runs=True)
    payload = _run_payload(wb, run_id)
    print_json(payload) if args.json else _print_run(payload)
    return 0 if info.status == "Completed" else EXIT_FAILED


def cmd_list(wb, args) -> int:
    from services.backtest.metric_labels import format_statistic

    runs = wb.runs.list_runs(args.limit)
    if args.json:
        print_json([{k: getattr(r, k) for k in (
            "run_id", "status", "strategy", "instrument_id", "bar_type", "start", "end", "label",
            "parameters", "created_at", "started_at", "finished_at", "error", "total_return",
            "sharpe", "max_drawdown", "num_trades", "final_equity", "currency", "run_folder")}
            for r in runs])
        return 0
    if not runs:
        print("No backtests yet. Run one with 'nautilus-workbench backtest run --strategy ema_cross "
              "--bar-type ...' or in the web app.")
        return 0
    print(table([[r.run_id, r.status, r.strategy, r.bar_type,
                   format_statistic("total_return", r.total_return),
                   format_statistic("sharpe", r.sharpe),
                   format_statistic("num_trades", r.num_trades)] for r in runs],
                 ["RUN", "STATUS", "STRATEGY", "BAR TYPE", "RETURN", "SHARPE", "TRADES"]))
    return 0


def cmd_show(wb, args) -> int:
    payload = _run_payload(wb, args.run_id)
    print_json(payload) if args.json else _print_run(payload)
    return 0


def cmd_control(wb, args) -> int:
    info = getattr(wb.backtests, args.verb)(args.run_id, principal=args.principal)
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


def cmd_sweep(wb, args) -> int:
    from services.backtest.sweep import SweepSpec

    check_sweep_options(wb, args)
    spec = SweepSpec(
        strategy=args.strategy, bar_type=args.bar_type, start=args.start, end=args.end,
        grid=_grid(args.grid), random_draws=args.random, constraints=tuple(args.constraint),
        fixed=key_values(args.param, "--param"), venue=_venue_settings(args), seed=args.seed,
        label=args.label,
    )
    attach_runtime(wb, args)
    try:
        sweep_id = wb.backtests.submit_sweep(spec, principal=args.principal, runtime=args.runtime)
        info = wb.backtests.sweep(sweep_id)
        print(f"Sweep {sweep_id}: {len(info.runs)} runs on the {args.runtime} runtime",
              file=sys.stderr)
        here = wb.backtests.scheduled_here([r.run_id for r in info.runs])
        bar = _ProgressBar()
        try:
            info = wb.backtests.wait_sweep(sweep_id, timeout=args.timeout, on_progress=bar)
        except KeyboardInterrupt:
            bar.close()
            wb.backtests.stop_sweep(sweep_id, principal=args.principal)
            print(f"Stopped sweep {sweep_id}: its unfinished runs are cancelled.", file=sys.stderr)
            raise
        finally:
            if here is not None:
                here.stop(wait_for_runs=True)
        bar.close()
        board = wb.backtests.leaderboard(sweep_id, args.metric)
        statistics = wb.backtests.sweep_statistics(sweep_id, args.partitions)
    finally:
        wb.backtests.close()
    payload = _sweep_payload(wb, info, board, args.metric, statistics)
    if args.json:
        print_json(payload)
    else:
        _print_sweep(payload, board, args.metric)
        print_statistics(statistics)
    return 0 if info.status == "Completed" else EXIT_FAILED


def _sweep_payload(wb, info, board, metric: str, statistics) -> dict:
    # Runs in leaderboard order: the best completed run first.
    order = {run_id: i for i, run_id in enumerate(board["run_id"])} if len(board) else {}
    runs = sorted(info.runs, key=lambda r: order.get(r.run_id, len(order)))
    ranked = board[(board["status"] == "Completed") & board[metric].notna()] if len(board) else board
    figures = statistics.to_dict()
    return {
        "sweep_id": info.sweep_id, "status": info.status, "runtime": info.runtime,
        "strategy": info.strategy, "bar_type": info.bar_type, "metric": metric,
        "best_run_id": ranked["run_id"].iloc[0] if len(ranked) else None,
        "trials": figures["trials"], "deflated_sharpe": figures["deflated_sharpe"],
        "pbo": figures["pbo"], "min_track_record": figures["min_track_record"],
        "statistics_notes": figures["notes"],
        "runs": [{
            "run_id": r.run_id, "parameters": r.parameters, "status": r.status,
            "error": r.error, "cpu_seconds": r.cpu_seconds, "memory_bytes": r.memory_bytes,
            "psr": figures["psr"].get(r.run_id),
            "statistics": wb.backtests.run_statistics(r) if r.status == "Completed" else None,
        } for r in runs],
    }


def print_statistics(statistics) -> None:
    """The overfitting statistics of a sweep, one reading per line."""
    print(f"Overfitting statistics over {statistics.trials:,} trials (completed runs):")
    for figure in (statistics.deflated_sharpe, statistics.pbo, statistics.min_track_record):
        if figure is not None:
            print(f"  {figure.reading}")
    for note in statistics.notes:
        print(f"  Note: {note}")


def _print_sweep(payload: dict, board, metric: str) -> None:
    from services.backtest.metric_labels import format_statistic

    print(f"Sweep {payload['sweep_id']}: {payload['status']} "
          f"({len(payload['runs'])} runs, {payload['runtime']} runtime), ranked by {metric}")
    varied = [c for c in board.columns if c not in ("run_id", "status", metric, "total_return",
                                                     "sharpe", "max_drawdown", "num_trades")]
    rows = [[r["run_id"], r["status"], *(str(r["parameters"].get(k)) for k in varied),
             format_statistic(metric, (r["statistics"] or {}).get(metric)),
             format_statistic("total_return", (r["statistics"] or {}).get("total_return")),
             format_statistic("win_rate", r["psr"])]
            for r in payload["runs"]]
    print(table(rows, ["RUN", "STATUS", *[k.upper() for k in varied], metric.upper(), "RETURN",
                       "PSR"]))
    for r in payload["runs"]:
        if r["error"] and r["status"] == "Failed":
            print(f"  {r['run_id']}: {r['error']}")
    if payload["best_run_id"]:
        print(f"Best run: {payload['best_run_id']} (open it with 'nautilus-workbench backtest "
              f"show {payload['best_run_id']}' or /results?run={payload['best_run_id']})")


def cmd_sweeps(wb, args) -> int:
    sweeps = wb.backtests.list_sweeps()
    if args.json:
        print_json([{"sweep_id": s.sweep_id, "status": s.status, "strategy": s.strategy,
                      "bar_type": s.bar_type, "runtime": s.runtime, "created_at": s.created_at,
                      "runs": len(s.runs), "completed": s.count("Completed")} for s in sweeps])
        return 0
    if not sweeps:
        print("No sweeps yet. Start one with 'nautilus-workbench backtest sweep ...'.")
        return 0
    print(table([[s.sweep_id, s.status, s.strategy, s.bar_type, s.runtime,
                   f"{s.count('Completed')}/{len(s.runs)}"] for s in sweeps],
                 ["SWEEP", "STATUS", "STRATEGY", "BAR TYPE", "RUNTIME", "COMPLETED"]))
    return 0

"""``nautilus-workbench backtest walk-forward ...``: run a walk-forward analysis and read it;
``walk-forwards``, ``walk-forward-show``, ``walk-forward-pause|resume|stop``.

Without a scheduler running for the installation, ``walk-forward`` dispatches its own analysis
while it waits (as ``backtest run`` does). The analysis lives in the database and its next
steps (each fold's test run) are taken by whichever scheduler holds the installation's lease:
if this command exits first (``--timeout``, ``--no-wait``, a closed terminal), the remaining
runs stay queued and the next scheduler (the server, ``nautilus-workbench scheduler``, a
notebook with ``scheduler=True``) runs them and queues the later folds' test runs.
"""

from __future__ import annotations

import sys

from app.cli.backtest import (
    _grid,
    _venue_settings,
    add_sweep_options,
    attach_runtime,
    check_sweep_options,
)
from app.cli.output import EXIT_FAILED, key_values, print_json, table

_H = "app.cli.walk_forward:"


def register(cmds, common) -> None:
    run = cmds.add_parser(
        "walk-forward", parents=[common],
        help="walk-forward analysis: optimise on each train window, test the choice on the "
             "window after it")
    add_sweep_options(run)
    run.add_argument("--train", type=float, required=True, metavar="DAYS",
                     help="length of each train window in days")
    run.add_argument("--test", type=float, required=True, metavar="DAYS",
                     help="length of each test window in days")
    run.add_argument("--step", type=float, metavar="DAYS",
                     help="days between the starts of consecutive folds (default: --test)")
    run.add_argument("--anchored", action="store_true",
                     help="every train window starts at --start and grows by the step "
                          "(default: rolling windows of --train days)")
    run.add_argument("--no-wait", action="store_true",
                     help="queue the analysis and exit; the installation's scheduler runs it")
    run.set_defaults(handler=_H + "cmd_walk_forward")

    listing = cmds.add_parser("walk-forwards", parents=[common],
                              help="recent walk-forward analyses")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_H + "cmd_list")

    show = cmds.add_parser("walk-forward-show", parents=[common],
                           help="one walk-forward analysis: folds, efficiency, statistics")
    show.add_argument("walk_forward_id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_H + "cmd_show")

    for verb, text in (("pause", "hold a walk-forward: its running runs pause, nothing new starts"),
                       ("resume", "let a paused walk-forward go on"),
                       ("stop", "cancel every unfinished run of a walk-forward")):
        sub = cmds.add_parser(f"walk-forward-{verb}", parents=[common], help=text)
        sub.add_argument("walk_forward_id")
        sub.set_defaults(handler=_H + "cmd_control", verb=verb)


class _Progress:
    """One line per change of the folds' state on stderr."""

    def __init__(self) -> None:
        self._last = ""

    def __call__(self, info) -> None:
        folds = " ".join(f"{f.fold}:{f.status}" for f in info.folds)
        line = (f"{info.status} {info.progress:4.0%}  folds {folds}  runs "
                f"{info.count('Completed', 'Failed', 'Cancelled')}/{info.runs} done, "
                f"{info.count('Running')} running, {info.count('Queued')} queued")
        if line != self._last:
            print(line, file=sys.stderr, flush=True)
        self._last = line


def cmd_walk_forward(wb, args) -> int:
    from services.backtest.walk_forward import WalkForwardSpec

    check_sweep_options(wb, args)
    spec = WalkForwardSpec(
        strategy=args.strategy, bar_type=args.bar_type, start=args.start, end=args.end,
        grid=_grid(args.grid), train_days=args.train, test_days=args.test,
        step_days=args.step, anchored=args.anchored, metric=args.metric,
        random_draws=args.random, seed=args.seed, constraints=tuple(args.constraint),
        fixed=key_values(args.param, "--param"), venue=_venue_settings(args), label=args.label)
    attach_runtime(wb, args)
    try:
        walk_forward_id = wb.walk_forwards.submit(spec, principal=args.principal,
                                                  runtime=args.runtime)
        info = wb.walk_forwards.get(walk_forward_id)
        print(f"Walk-forward {walk_forward_id}: {len(info.folds)} folds x "
              f"{info.folds[0].trials} combinations on the {args.runtime} runtime",
              file=sys.stderr)
        if info.folds[0].trials == 1:
            print("Note: the grid has one point, so nothing is chosen and no overfitting "
                  "statistic can be computed; the folds still test it out of sample.",
                  file=sys.stderr)
        if args.no_wait:
            print(walk_forward_id)
            return 0
        here = wb.backtests.scheduled_here(wb.walk_forwards.run_ids(walk_forward_id))
        try:
            info = wb.walk_forwards.wait(walk_forward_id, timeout=args.timeout,
                                         on_progress=_Progress())
        except KeyboardInterrupt:
            wb.walk_forwards.stop(walk_forward_id, principal=args.principal)
            print(f"Stopped walk-forward {walk_forward_id}: its unfinished runs are cancelled.",
                  file=sys.stderr)
            raise
        finally:
            if here is not None:
                # Unfinished runs are left to the next scheduler, which adopts live workers.
                here.stop(wait_for_runs=wb.walk_forwards.get(walk_forward_id).is_final)
        if not info.is_final:
            print(f"Walk-forward {walk_forward_id} goes on ({info.status}): the installation's "
                  "scheduler (the server, or 'nautilus-workbench scheduler') runs the rest and "
                  "queues the later folds' test runs. Read it with 'nautilus-workbench backtest "
                  f"walk-forward-show {walk_forward_id}'.", file=sys.stderr)
        result = wb.walk_forwards.result(walk_forward_id)
    finally:
        wb.backtests.close()
    _output(result, args.json)
    return 0 if info.status == "Completed" else EXIT_FAILED


def payload(result) -> dict:
    """The JSON of a walk-forward analysis."""
    info = result.info
    folds = []
    for fold in result.folds:
        f, statistics = fold.info, fold.statistics
        folds.append({
            "fold": f.fold, "train_start": f.train_start, "train_end": f.train_end,
            "test_start": f.test_start, "test_end": f.test_end, "parameters": f.parameters,
            "in_sample": f.in_sample, "out_of_sample": f.out_of_sample,
            "in_sample_return": fold.in_sample_return,
            "out_of_sample_return": fold.out_of_sample_return,
            "in_sample_annualised": fold.in_sample_annualised,
            "out_of_sample_annualised": fold.out_of_sample_annualised,
            "efficiency": fold.efficiency, "status": f.status, "error": f.error,
            "sweep_id": f.sweep_id, "chosen_run_id": f.chosen_run_id,
            "test_run_id": f.test_run_id, "trials": f.trials,
            "deflated_sharpe": (statistics.deflated_sharpe.to_dict()
                                if statistics and statistics.deflated_sharpe else None),
            "pbo": statistics.pbo.to_dict() if statistics and statistics.pbo else None,
            "statistics_notes": list(statistics.notes) if statistics else [],
        })
    return {
        "walk_forward_id": info.walk_forward_id, "status": info.status,
        "strategy": info.strategy, "bar_type": info.bar_type, "runtime": info.runtime,
        "metric": info.metric, "anchored": info.spec.get("anchored", False),
        "folds": folds, "efficiency": result.efficiency.to_dict(),
        "oos_statistics": result.out_of_sample.to_dict(),
        "parameter_stability": result.stability.to_dict(),
        "trials": result.out_of_sample.trials,
    }


def _output(result, as_json: bool) -> None:
    if as_json:
        print_json(payload(result))
        return
    from services.backtest.metric_labels import format_statistic

    info = result.info
    metric = info.metric
    print(f"Walk-forward {info.walk_forward_id}: {info.status} — {info.strategy} on "
          f"{info.bar_type}, {len(info.folds)} folds chosen by {metric}")
    rows = [[str(f.info.fold), f"{f.info.train_start:%Y-%m-%d}..{f.info.train_end:%Y-%m-%d}",
             f"{f.info.test_start:%Y-%m-%d}..{f.info.test_end:%Y-%m-%d}",
             " ".join(f"{k}={v}" for k, v in (f.info.parameters or {}).items()) or "-",
             format_statistic(metric, f.info.in_sample),
             format_statistic(metric, f.info.out_of_sample),
             format_statistic("total_return", f.in_sample_annualised),
             format_statistic("total_return", f.out_of_sample_annualised), f.info.status]
            for f in result.folds]
    print(table(rows, ["FOLD", "TRAIN", "TEST", "CHOSEN", f"IS {metric.upper()}",
                       f"OOS {metric.upper()}", "IS ANNUAL", "OOS ANNUAL", "STATUS"]))
    for f in result.folds:
        if f.info.error:
            print(f"  {f.info.error}")
    oos = result.out_of_sample
    print(result.efficiency.reading)
    print(f"Out of sample over {oos.days} days: return {format_statistic('total_return', oos.total_return)}, "
          f"annualised {format_statistic('total_return', oos.annualised_return)}, Sharpe "
          f"{format_statistic('sharpe', oos.sharpe)}, max drawdown "
          f"{format_statistic('max_drawdown', oos.max_drawdown)}; {oos.trials:,} train runs tried.")
    for figure in (oos.psr, oos.min_track_record):
        if figure is not None:
            print(f"  {figure.reading}")
    for note in oos.notes:
        print(f"  Note: {note}")
    print(result.stability.reading)


def cmd_list(wb, args) -> int:
    analyses = wb.walk_forwards.list()
    if args.json:
        print_json([{"walk_forward_id": w.walk_forward_id, "status": w.status,
                     "strategy": w.strategy, "bar_type": w.bar_type, "runtime": w.runtime,
                     "metric": w.metric, "folds": len(w.folds), "progress": w.progress,
                     "created_at": w.created_at} for w in analyses])
        return 0
    if not analyses:
        print("No walk-forward analyses yet. Start one with 'nautilus-workbench backtest "
              "walk-forward ...'.")
        return 0
    print(table([[w.walk_forward_id, w.status, w.strategy, w.bar_type, str(len(w.folds)),
                  f"{w.progress:.0%}"] for w in analyses],
                ["WALK-FORWARD", "STATUS", "STRATEGY", "BAR TYPE", "FOLDS", "DONE"]))
    return 0


def cmd_show(wb, args) -> int:
    _output(wb.walk_forwards.result(args.walk_forward_id), args.json)
    return 0


def cmd_control(wb, args) -> int:
    info = getattr(wb.walk_forwards, args.verb)(args.walk_forward_id, principal=args.principal)
    print(f"Walk-forward {info.walk_forward_id}: {info.status}")
    return 0

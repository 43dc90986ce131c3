"""Benchmark: the research statistics at the sizes of a large sweep and a busy strategy.

    python bench/bench_research.py [--runs 1000] [--days 252,1000] [--partitions 16]
                                   [--trades 10000] [--paths 1000] [--repeat 5] [--out FILE]

Times, wall clock, in this process:

  (a) the overfitting statistics of a RUNS-run sweep, for each DAYS: from the sweep's daily
      returns (one column per run, 2 % of the runs flat: no trades) to the returns matrix, the
      PSR of every run, the deflated Sharpe ratio of the best and the PBO by CSCV with
      PARTITIONS partitions. Target: <= 2 s;
  (b) the Monte Carlo of TRADES trade returns over PATHS paths, bootstrap and shuffled order
      apart (equity paths, drawdowns, 5/50/95 % bands at every trade). Target: <= 1 s each;
  (c) for information, not a target: daily returns of RUNS runs from their per-bar equity
      (a year of hourly bars each), the step before (a) when the returns are not stored;
  (d) a RUNS-run sweep's statistics as the Sweeps page and ``backtest sweep --json`` get them:
      ``BacktestService.sweep_statistics`` on a fresh workbench (nothing cached) over run
      folders as the worker leaves them (``results/daily_returns.parquet``, statistics.json;
      written here with (a)'s returns, the rows inserted as completed runs of one sweep): the
      sweep's rows, every run's returns file, PSR, DSR, PBO and minTRL. Target: <= 2 s.

Each figure is timed REPEAT times on fresh inputs; the verdict takes the slowest wall time (the
first, cold, call included). The CPU time of the process is printed too: on a machine shared
with other work it shows what the code itself costs. The load average before and after goes to
the JSON. Results go to stdout and to JSON in bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from services.research import (
    ReturnsMatrix,
    deflated_sharpe,
    monte_carlo_trades,
    probabilistic_sharpes,
    probability_of_overfitting,
)

OVERFITTING_TARGET_S = 2.0
MONTE_CARLO_TARGET_S = 1.0


def sweep_returns(runs: int, days: int, seed: int) -> pd.DataFrame:
    """Daily returns of a sweep: a common market factor, per-run noise and edges, 2 % flat."""
    rng = np.random.default_rng(seed)
    market = rng.standard_t(4, (days, 1)) * 0.006
    values = 0.5 * market + rng.standard_t(5, (days, runs)) * 0.008 \
        + rng.normal(0.0, 0.0005, runs)
    values[:, rng.choice(runs, runs // 50, replace=False)] = 0.0
    index = pd.date_range("2021-01-01", periods=days, freq="D", tz="UTC")
    return pd.DataFrame(values, index=index, columns=[f"run-{k:05d}" for k in range(runs)])


def overfitting(frame: pd.DataFrame, partitions: int) -> dict:
    cpu = time.process_time()
    t0 = time.perf_counter()
    matrix = ReturnsMatrix.from_frame(frame, 365.25)
    t1 = time.perf_counter()
    psr = probabilistic_sharpes(matrix)
    t2 = time.perf_counter()
    dsr = deflated_sharpe(matrix)
    t3 = time.perf_counter()
    pbo = probability_of_overfitting(matrix, partitions)
    t4 = time.perf_counter()
    return {"seconds": t4 - t0, "cpu_seconds": time.process_time() - cpu,
            "matrix_seconds": t1 - t0, "psr_seconds": t2 - t1,
            "dsr_seconds": t3 - t2, "pbo_seconds": t4 - t3, "runs_kept": matrix.trials,
            "runs_excluded": len(matrix.excluded), "psr_count": len(psr), "dsr": dsr.value,
            "pbo": pbo.value, "splits": pbo.splits}


def monte_carlo(trades: int, paths: int, method: str, seed: int) -> dict:
    returns = np.random.default_rng(seed).normal(0.0004, 0.01, trades)
    cpu = time.process_time()
    t0 = time.perf_counter()
    result = monte_carlo_trades(returns, method, paths=paths, seed=seed)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
            "final_return_p50": result.final_return.p50,
            "max_drawdown_p5": result.max_drawdown.p5,
            "longest_drawdown_p95": result.longest_drawdown.p95}


def daily_returns_from_equity(runs: int) -> float:
    from services.backtest.statistics import daily_returns

    hours = pd.date_range("2024-01-01 01:00", "2024-12-31 00:00", freq="1h", tz="UTC")
    rng = np.random.default_rng(0)
    equities = [pd.Series(1e6 * np.exp(np.cumsum(rng.normal(0, 1e-3, hours.size))), index=hours)
                for _ in range(runs)]
    t0 = time.perf_counter()
    for equity in equities:
        daily_returns(equity, 1e6)
    return time.perf_counter() - t0


def sweep_from_disk(runs: int, days: int, partitions: int, seed: int) -> dict:
    """(d): a completed sweep's folders and rows, then its statistics from a fresh workbench."""
    import tempfile
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from services.backtest.layout import DAILY_RETURNS, DAY_COLUMN, RETURN_COLUMN
    from services.catalog.sample import generate_sample_catalog
    from services.db import BacktestRunRow, SweepRow
    from services.workbench import Workbench

    catalog = PROJECT_ROOT / "data" / "sample_catalog"
    generate_sample_catalog(catalog)
    state = Path(tempfile.mkdtemp(prefix="bench-research-"))
    frame = sweep_returns(runs, days, seed)
    wb = Workbench.open(state_dir=state, catalog=str(catalog))
    created = datetime.now(UTC)
    rows = []
    for run_id in frame.columns:
        results = state / "runs" / run_id / "results"
        results.mkdir(parents=True)
        frame[run_id].rename(RETURN_COLUMN).rename_axis(DAY_COLUMN).to_frame().to_parquet(
            results / DAILY_RETURNS)
        (results / "statistics.json").write_text(json.dumps(
            {"starting_balance": 1e6, "periods_per_year": 365.25}))
        rows.append(dict(run_id=run_id, status="Completed", strategy="ema_cross",
                         instrument_id="X.SIM", bar_type="X", spec={"parameters": {}},
                         run_folder=str(results.parent), actor="bench", created_at=created,
                         runtime="local", sweep_id="sweep-bench", paused_seconds=0.0))
    with wb.database.session() as session:
        session.add(SweepRow(sweep_id="sweep-bench", strategy="ema_cross", bar_type="X",
                             spec={"grid": {}}, runtime="local", num_runs=runs, actor="bench",
                             created_at=created))
        session.flush()
        session.execute(insert(BacktestRunRow), rows)
    wb.close()
    fresh = Workbench.open(state_dir=state, catalog=str(catalog))
    cpu, t0 = time.process_time(), time.perf_counter()
    figures = fresh.backtests.sweep_statistics("sweep-bench", partitions)
    seconds = time.perf_counter() - t0
    fresh.close()
    return {"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
            "trials": figures.trials, "dsr": figures.deflated_sharpe.value,
            "pbo": figures.pbo.value, "psr_count": len(figures.psr)}


def _summary(samples: list[dict]) -> dict:
    seconds = [s["seconds"] for s in samples]
    return {"first_seconds": seconds[0], "median_seconds": statistics.median(seconds),
            "max_seconds": max(seconds),
            "median_cpu_seconds": statistics.median(s["cpu_seconds"] for s in samples),
            "samples": samples}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--days", default="252,1000", help="comma-separated lengths of the sweep")
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--trades", type=int, default=10_000)
    parser.add_argument("--paths", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results: dict = {"overfitting": {}, "monte_carlo": {}}

    for days in (int(d) for d in args.days.split(",")):
        samples = [overfitting(sweep_returns(args.runs, days, seed), args.partitions)
                   for seed in range(args.repeat)]
        summary = results["overfitting"][str(days)] = _summary(samples)
        parts = {k: statistics.median(s[k] for s in samples)
                 for k in ("matrix_seconds", "psr_seconds", "dsr_seconds", "pbo_seconds")}
        print(f"(a) {args.runs:,} runs x {days:,} days, S={args.partitions}: "
              f"median {summary['median_seconds']:.3f} s, slowest {summary['max_seconds']:.3f} s, "
              f"CPU {summary['median_cpu_seconds']:.3f} s "
              f"(matrix {parts['matrix_seconds']:.3f}, PSR {parts['psr_seconds']:.3f}, "
              f"DSR {parts['dsr_seconds']:.3f}, PBO {parts['pbo_seconds']:.3f})", flush=True)

    for method in ("bootstrap", "shuffle"):
        samples = [monte_carlo(args.trades, args.paths, method, seed)
                   for seed in range(args.repeat)]
        summary = results["monte_carlo"][method] = _summary(samples)
        print(f"(b) Monte Carlo {method}, {args.trades:,} trades x {args.paths:,} paths: "
              f"median {summary['median_seconds']:.3f} s, slowest {summary['max_seconds']:.3f} s, "
              f"CPU {summary['median_cpu_seconds']:.3f} s", flush=True)

    results["daily_returns_from_equity_seconds"] = daily_returns_from_equity(args.runs)
    print(f"(c) daily returns of {args.runs:,} runs from a year of hourly equity each: "
          f"{results['daily_returns_from_equity_seconds']:.3f} s (information)", flush=True)

    samples = [sweep_from_disk(args.runs, 252, args.partitions, seed)
               for seed in range(args.repeat)]
    summary = results["sweep_from_disk"] = _summary(samples)
    print(f"(d) statistics of a {args.runs:,}-run sweep from its run folders (fresh workbench): "
          f"median {summary['median_seconds']:.3f} s, slowest {summary['max_seconds']:.3f} s, "
          f"CPU {summary['median_cpu_seconds']:.3f} s, {samples[0]['trials']:,} trials",
          flush=True)

    slowest_overfitting = max([s["max_seconds"] for s in results["overfitting"].values()]
                              + [summary["max_seconds"]])
    slowest_monte_carlo = max(s["max_seconds"] for s in results["monte_carlo"].values())
    met = (slowest_overfitting <= OVERFITTING_TARGET_S
           and slowest_monte_carlo <= MONTE_CARLO_TARGET_S)
    print(f"\ntargets (overfitting <= {OVERFITTING_TARGET_S:g} s, Monte Carlo <= "
          f"{MONTE_CARLO_TARGET_S:g} s, slowest call): {'met' if met else 'NOT met'} "
          f"({slowest_overfitting:.3f} s, {slowest_monte_carlo:.3f} s)")

    out = args.out or (PROJECT_ROOT / "bench" / "results"
                       / f"research-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "runs": args.runs, "partitions": args.partitions, "trades": args.trades,
        "paths": args.paths, "repeat": args.repeat,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        **results, "targets_met": met,
    }, indent=2))
    print(f"wrote {out}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

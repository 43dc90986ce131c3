"""Benchmark: a walk-forward analysis on one local worker and on two, in one run.

    python bench/bench_walk_forward.py [--train 90] [--test 45] [--workers 1,2]
                                       [--start 2024-01-01 --end 2024-12-31] [--out FILE]

A 6-fold walk-forward of EMA cross over 12 combinations (fast 10, 20, 40 x slow 100, 200, 400,
800) on a year of 1-minute BTCUSDT-PERP bars of the generated sample catalog (2024, 527,040
bars): every fold sweeps its train window (12 runs), then the installation's scheduler queues
the fold's test run with the best parameters by Sharpe ratio: 72 train runs and 6 test runs.
Each leg runs in a fresh state folder with a scheduler of WORKERS local workers and is timed,
wall clock, from the submission to the analysis's end. Reported per leg: wall seconds, the CPU
seconds of every worker (the runs' own measure) and of this process (validation, queueing, the
scheduler and its step), and the speed-up of each leg over the first. Both legs must choose the
same parameters and reach the same out-of-sample result. Target: 2 workers >= 1.8x faster than
1. The machine may be shared: the load average before and after goes to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from services.backtest.walk_forward import WalkForwardSpec
from services.catalog.sample import generate_sample_catalog
from services.workbench import Workbench

TARGET_SPEED_UP = 1.8
GRID = {"fast_ema_period": ["10,20,40"], "slow_ema_period": ["100,200,400,800"]}


def leg(catalog: Path, workers: int, train: float, test: float, start: str, end: str) -> dict:
    state = Path(tempfile.mkdtemp(prefix=f"bench-wf-{workers}-"))
    wb = Workbench.open(state_dir=state, catalog=str(catalog), max_parallel=workers,
                        scheduler=True)
    spec = WalkForwardSpec(strategy="ema_cross", bar_type="BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-"
                           "EXTERNAL", start=start, end=end, train_days=train,
                           test_days=test, grid=GRID)
    try:
        cpu, t0 = time.process_time(), time.perf_counter()
        walk_forward_id = wb.walk_forwards.submit(spec)
        info = wb.walk_forwards.wait(walk_forward_id)
        wall = time.perf_counter() - t0
        here = time.process_time() - cpu
        result = wb.walk_forwards.result(walk_forward_id, with_statistics=False)
        runs = [wb.backtests.get(r) for r in wb.walk_forwards.run_ids(walk_forward_id)]
    finally:
        wb.close()
    return {
        "workers": workers, "walk_forward_id": walk_forward_id, "status": info.status,
        "folds": len(info.folds), "runs": len(runs), "wall_seconds": wall,
        "worker_cpu_seconds": sum(r.cpu_seconds or 0.0 for r in runs),
        "process_cpu_seconds": here,
        "chosen": [f.parameters for f in info.folds],
        "out_of_sample_return": result.out_of_sample.total_return,
        "efficiency": result.efficiency.value,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=float, default=90.0, help="train days per fold")
    parser.add_argument("--test", type=float, default=45.0, help="test days per fold")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--end", default="2024-12-31")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    catalog = PROJECT_ROOT / "data" / "sample_catalog"
    generate_sample_catalog(catalog)
    load_before = os.getloadavg()
    legs = []
    for workers in (int(w) for w in args.workers.split(",")):
        result = leg(catalog, workers, args.train, args.test, args.start, args.end)
        legs.append(result)
        speed_up = legs[0]["wall_seconds"] / result["wall_seconds"]
        print(f"{workers} worker(s): {result['status']}, {result['folds']} folds, "
              f"{result['runs']} runs in {result['wall_seconds']:.1f} s wall "
              f"({speed_up:.2f}x the first leg); workers' CPU "
              f"{result['worker_cpu_seconds']:.1f} s, this process {result['process_cpu_seconds']:.1f}"
              f" s CPU; out of sample {result['out_of_sample_return'] * 100:.2f} %", flush=True)
    same = all(leg_["chosen"] == legs[0]["chosen"]
               and leg_["out_of_sample_return"] == legs[0]["out_of_sample_return"]
               for leg_ in legs)
    speed_up = legs[0]["wall_seconds"] / legs[-1]["wall_seconds"]
    met = (same and all(leg_["status"] == "Completed" and leg_["folds"] == 6 for leg_ in legs)
           and speed_up >= TARGET_SPEED_UP)
    print(f"\nsame choices and out-of-sample result in every leg: {same}")
    print(f"target ({legs[-1]['workers']} workers >= {TARGET_SPEED_UP:g}x faster than "
          f"{legs[0]['workers']}): {'met' if met else 'NOT met'} ({speed_up:.2f}x)")
    out = args.out or (PROJECT_ROOT / "bench" / "results"
                       / f"walk-forward-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "train_days": args.train, "test_days": args.test, "start": args.start, "end": args.end,
        "grid": GRID, "legs": legs,
        "speed_up": speed_up, "same_results": same,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "targets_met": met}, indent=2, default=str))
    print(f"wrote {out}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: many backtests at once through the queue vs one after another.

    python bench/bench_queue.py [--runs 8] [--parallel 2] [--days 60] [--out FILE]

Runs RUNS backtests of equal size (EMA cross on the same slice of 1-minute BTCUSDT-PERP bars of
the generated sample catalog, the fast period differing per run) and times, wall clock:

  (a) raw NautilusTrader one after another: one ``BacktestNode`` with all RUNS configs (how
      NautilusTrader runs a batch), in a fresh process that never imports the workbench, on the
      exact configs the workbench builds minus its progress actor and with NautilusTrader's
      default ``run_analysis``;
  (b) the workbench one after another: the queue with one slot (``max_parallel=1``);
  (c) the workbench on local worker processes, PARALLEL at once;
  (d) the workbench on a Dask LocalCluster with PARALLEL threads (cluster start-up timed apart).

Each workbench figure runs from the first ``submit`` to the last run Completed, with every run's
artefacts and statistics written. Speed-ups are (a)/(c), (a)/(d) and (b)/(c), (b)/(d).
Queue overhead per run is (b) minus the time the workers were alive (the service's
started_at..finished_at of each row), divided by RUNS: validation, run folder, database rows,
dispatch and bookkeeping. The per-run extra cost of a workbench run over a raw one
((b) - (a)) / RUNS, which is mostly the worker's start-up, statistics and Parquet artefacts, is
printed too. Results go to stdout and to JSON in bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from services.backtest.runtime import DaskRuntime
from services.backtest.spec import BacktestSpec
from services.catalog.sample import generate_sample_catalog
from services.workbench import Workbench

BAR_TYPE = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
START = datetime(2024, 1, 1, tzinfo=UTC)

# Runs in a fresh interpreter with only NautilusTrader: all configs, one after another.
RAW_BATCH = r'''
import json, sys, time
t0 = time.perf_counter()
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.node import BacktestNode

assert "services" not in sys.modules, "the workbench must not be imported here"
configs = [BacktestRunConfig.parse(open(p, "rb").read()) for p in sys.argv[1:]]
node = BacktestNode(configs=configs)
results = node.run()
trades = []
for config in configs:
    cache = node.get_engine(config.id).cache
    trades.append(sum(1 for p in cache.positions() + cache.position_snapshots() if p.is_closed))
print(json.dumps({"seconds_inside": time.perf_counter() - t0, "trades": trades,
                  "results": len(results)}))
'''


def specs(runs: int, days: int) -> list[BacktestSpec]:
    end = START + timedelta(days=days)
    return [BacktestSpec(strategy="ema_cross", bar_type=BAR_TYPE, start=START.isoformat(),
                         end=end.isoformat(), label=f"bench {i}",
                         parameters={"fast_ema_period": 40 + i, "slow_ema_period": 200})
            for i in range(runs)]


def raw_config(config) -> bytes:
    """The workbench's run config at NautilusTrader's defaults: no progress actor, analysis on."""
    from nautilus_trader.backtest.config import BacktestRunConfig

    data = json.loads(config.json())
    data["engine"]["actors"] = []
    data["engine"].pop("run_analysis", None)
    return BacktestRunConfig.parse(json.dumps(data).encode()).json()


def run_raw(wb: Workbench, batch: list[BacktestSpec], workdir: Path) -> dict:
    files = []
    for i, spec in enumerate(batch):
        path = workdir / f"raw-{i}.json"
        path.write_bytes(raw_config(wb.backtests.validate(spec)))
        files.append(str(path))
    script = workdir / "raw_batch.py"
    script.write_text(RAW_BATCH)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(script), *files], capture_output=True, check=True,
                         cwd=workdir, env=env)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, **json.loads(out.stdout.decode().strip().splitlines()[-1])}


def run_queue(wb: Workbench, batch: list[BacktestSpec], runtime: str) -> dict:
    t0 = time.perf_counter()
    run_ids = [wb.backtests.submit(spec, runtime=runtime) for spec in batch]
    submitted = time.perf_counter() - t0
    infos = [wb.backtests.wait(r, timeout=3600) for r in run_ids]
    seconds = time.perf_counter() - t0
    failed = [(i.run_id, i.status, i.error) for i in infos if i.status != "Completed"]
    if failed:
        raise SystemExit(f"runs did not complete: {failed}")
    alive = sum((i.finished_at - i.started_at).total_seconds() for i in infos)
    return {"seconds": seconds, "submit_seconds": submitted, "worker_seconds": alive,
            "trades": [i.num_trades for i in infos],
            "statistics": {json.dumps(i.parameters, sort_keys=True):
                           wb.backtests.run_statistics(i) for i in infos},
            "cpu_seconds": [i.cpu_seconds for i in infos],
            "memory_mb": [round((i.memory_bytes or 0) / 1e6) for i in infos]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--days", type=int, default=60, help="days of 1-minute bars per run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp:
        workdir = Path(tmp)
        catalog = workdir / "catalog"
        generate_sample_catalog(catalog)
        wb = Workbench.open(state_dir=workdir / "state", catalog=str(catalog), max_parallel=1,
                            scheduler=True)
        batch = specs(args.runs, args.days)
        load_before = os.getloadavg()
        print(f"{args.runs} runs of {args.days} days of 1-minute bars each, "
              f"{os.cpu_count()} cores, load average {load_before[0]:.2f}", flush=True)

        raw = run_raw(wb, batch, workdir)
        print(f"(a) raw NautilusTrader, one after another: {raw['seconds']:7.1f} s", flush=True)
        sequential = run_queue(wb, batch, "local")
        print(f"(b) workbench queue, 1 slot:               {sequential['seconds']:7.1f} s",
              flush=True)
        wb.backtests.max_parallel = args.parallel
        local = run_queue(wb, batch, "local")
        print(f"(c) workbench, {args.parallel} local workers:             "
              f"{local['seconds']:7.1f} s", flush=True)
        t0 = time.perf_counter()
        wb.backtests.attach_runtime(DaskRuntime(max_parallel=args.parallel))
        cluster_start = time.perf_counter() - t0
        dask = run_queue(wb, batch, "dask")
        print(f"(d) workbench, Dask LocalCluster ({args.parallel} threads): {dask['seconds']:7.1f} s "
              f"(+ {cluster_start:.1f} s cluster start)", flush=True)
        wb.backtests.close()
        wb.database.dispose()

    identical = sequential["statistics"] == local["statistics"] == dask["statistics"]
    same_trades = raw["trades"] == sequential["trades"] == local["trades"] == dask["trades"]
    overhead = (sequential["seconds"] - sequential["worker_seconds"]) / args.runs
    extra = (sequential["seconds"] - raw["seconds"]) / args.runs
    figures = {
        "speedup_local_vs_raw_sequential": raw["seconds"] / local["seconds"],
        "speedup_dask_vs_raw_sequential": raw["seconds"] / dask["seconds"],
        "speedup_local_vs_queue_sequential": sequential["seconds"] / local["seconds"],
        "speedup_dask_vs_queue_sequential": sequential["seconds"] / dask["seconds"],
        "queue_overhead_per_run_seconds": overhead,
        "workbench_extra_per_run_seconds": extra,
    }
    print()
    for key, value in figures.items():
        print(f"{key:<38} {value:6.2f}")
    print(f"{'same trades, raw and every runtime':<38} {same_trades}")
    print(f"{'identical statistics on every runtime':<38} {identical}")
    verdict = (figures["speedup_local_vs_raw_sequential"] >= 1.8
               and figures["speedup_dask_vs_raw_sequential"] >= 1.8 and overhead <= 0.5)
    print(f"{'targets (>= 1.8x vs raw, <= 0.5 s/run)':<38} {'met' if verdict else 'NOT met'}")

    out = args.out or (PROJECT_ROOT / "bench" / "results"
                       / f"queue-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "runs": args.runs, "parallel": args.parallel, "days": args.days,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "raw_sequential": raw, "cluster_start_seconds": cluster_start,
        **{name: {k: v for k, v in result.items() if k != "statistics"}
           for name, result in (("queue_sequential", sequential), ("local_parallel", local),
                                ("dask_parallel", dask))},
        "figures": figures, "same_trades": same_trades, "identical_statistics": identical,
    }, indent=2))
    print(f"\nwrote {out}")
    return 0 if same_trades and identical else 1


if __name__ == "__main__":
    sys.exit(main())

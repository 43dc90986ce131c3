"""Benchmark: the drift of a 1-day paper deployment against the backtest of its window.

    python bench/bench_drift.py [--speed 600] [--day 2024-03-04] [--out FILE]

In one run, on the generated sample catalog and the local Docker daemon: a backtest of EMA
cross (5/12) on 1-minute BTCUSDT-PERP bars becomes a version, is promoted to paper, approved and
deployed to a paper engine that replays one day of bars (1,440) from ``--day`` at ``--speed``
(600: a day in 2.4 minutes), then is stopped. Timed, wall clock, each from its call to its end:

- backtest: a backtest of the version over the window the engine traded (submitted, run by the
  local scheduler, read back), after one unmeasured warm-up run of the same window;
- drift: ``pipeline.drift.compute``: reading the engine's log, re-running the version over the
  window (the same kind of backtest), and comparing fills, prices, PnL and returns.

Target: drift <= 2x backtest. Prints the figures as JSON (also to ``--out``); exits 1 when the
target is missed or the engine traded less than a day. The machine may be shared: the load
average before and after goes to the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from services.backtest import BacktestSpec
from services.catalog.sample import generate_sample_catalog
from services.engine.service import ERROR, RUNNING
from services.pipeline import DeployOptions
from services.workbench import Workbench

TARGET_RATIO = 2.0
BAR_TYPE = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
PARAMETERS = {"fast_ema_period": 5, "slow_ema_period": 12}
DAY_BARS = 1440
RUN_TIMEOUT_S = 600


def timed_backtest(wb: Workbench, version_id: str, start: str, end: str) -> tuple[float, str]:
    """Seconds from submitting a backtest of the version over [start, end] to reading it back."""
    t0 = time.perf_counter()
    run_id = wb.pipeline.versions.backtest(version_id, start=start, end=end,
                                           label="bench drift: the window")
    info = wb.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
    wb.backtests.results(run_id)
    seconds = time.perf_counter() - t0
    if info.status != "Completed":
        raise SystemExit(f"the backtest of the window ended {info.status}: {info.error}")
    return seconds, run_id


def deploy_one_day(wb: Workbench, version_id: str, day: str, speed: float) -> tuple[str, float]:
    """A paper deployment that replays one day of bars from ``day``; stopped after it."""
    pipeline = wb.pipeline
    deployment = pipeline.deployments.deploy(
        version_id, "paper", options=DeployOptions(replay_start=f"{day}T00:00:00",
                                                   replay_speed=speed))
    engine = wb.engines.wait_for(deployment.engine_session_id, (RUNNING, ERROR), timeout=180)
    if engine.state != RUNNING:
        raise SystemExit(f"the paper engine ended {engine.state}: {engine.error}")
    t0 = time.perf_counter()
    time.sleep(DAY_BARS * 60 / speed + 2)  # the day, and two seconds for the last bars
    pipeline.deployments.stop(deployment.deployment_id)
    return deployment.deployment_id, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", type=float, default=600.0,
                        help="replay speed of the paper engine (bars' seconds per second)")
    parser.add_argument("--day", default="2024-03-04", help="the day the engine replays")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    # The engine container's unprivileged user must be able to read the catalog.
    folder = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    folder.chmod(0o755)
    catalog = folder / "catalog"
    generate_sample_catalog(catalog)
    load_before = os.getloadavg()
    wb = Workbench.open(state_dir=folder / "state", catalog=str(catalog), scheduler=True)
    try:
        pipeline = wb.pipeline
        day = datetime.fromisoformat(args.day).date()
        run_id = wb.backtests.submit(BacktestSpec("ema_cross", BAR_TYPE, PARAMETERS,
                                                  start=(day.replace(day=1)).isoformat(),
                                                  end=day.isoformat()))
        if wb.backtests.wait(run_id, timeout=RUN_TIMEOUT_S).status != "Completed":
            raise SystemExit(f"the version's first backtest {run_id} did not complete")
        version = pipeline.versions.create_from_run(run_id, note="bench drift").version
        request = pipeline.promotions.request(version.version_id, "paper")
        pipeline.promotions.approve(request.request_id, comment="bench")
        deployment_id, traded_s = deploy_one_day(wb, version.version_id, args.day, args.speed)

        t0 = time.perf_counter()
        report = pipeline.drift.compute(deployment_id)
        drift_s = time.perf_counter() - t0
        summary = report.summary()
        start, end = summary["window_start"], summary["window_end"]
        timed_backtest(wb, version.version_id, start, end)  # warm-up: caches as the drift had
        backtest_s, backtest_run = timed_backtest(wb, version.version_id, start, end)
        drift_run = wb.backtests.get(report.run_id)
        wb.engines.cleanup()
    finally:
        wb.close()
        shutil.rmtree(folder, ignore_errors=True)
    ratio = drift_s / backtest_s
    figures = {
        "bench": "drift", "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_before": load_before, "load_after": os.getloadavg(),
        "replay_speed": args.speed, "engine_traded_wall_seconds": round(traded_s, 1),
        "window_start": start, "window_end": end, "bars": summary["bars"],
        "engine_fills": summary["engine_fills"], "backtest_fills": summary["backtest_fills"],
        "matched_fills": summary["matched_fills"], "missed_fills": summary["missed_fills"],
        "extra_fills": summary["extra_fills"], "correlation": summary["correlation"],
        "engine_pnl": summary["engine_pnl"], "backtest_pnl": summary["backtest_pnl"],
        "pnl_difference_pct": summary["pnl_difference_pct"],
        "slippage_total": summary["slippage_total"],
        "slippage_mean_bps": summary["slippage_mean_bps"],
        "engine_commissions": summary["engine_commissions"],
        "backtest_commissions": summary["backtest_commissions"],
        "time_difference_max_s": summary["time_difference_max_s"],
        "engine_lateness_ms": summary["latency_ms"], "notes": list(report.notes),
        "within_bounds": report.within_bounds,
        "drift_seconds": round(drift_s, 3), "drift_run_id": report.run_id,
        "drift_run_cpu_seconds": drift_run.cpu_seconds,
        "backtest_seconds": round(backtest_s, 3), "backtest_run_id": backtest_run,
        "ratio": round(ratio, 3), "target_ratio": TARGET_RATIO,
        "day_traded": summary["bars"] >= DAY_BARS,
        "ok": ratio <= TARGET_RATIO and summary["bars"] >= DAY_BARS,
    }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if summary["bars"] < DAY_BARS:
        print(f"MISSED: the engine traded {summary['bars']} bars, not a day ({DAY_BARS})",
              file=sys.stderr)
    if ratio > TARGET_RATIO:
        print(f"MISSED: drift took {ratio:.2f}x its backtest (target <= {TARGET_RATIO}x)",
              file=sys.stderr)
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

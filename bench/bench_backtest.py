"""Benchmark: raw NautilusTrader vs the workbench's backtest service on the same backtest.

    python bench/bench_backtest.py [--bars N] [--variants 10/20,50/200] [--timeout S] [--out FILE]

Builds a synthetic catalog of N one-minute BTCUSDT-PERP bars (the sample catalog's generator,
N minutes from 2020-01-01) in a temporary folder, then for each EMA-cross variant times

  (a) raw NautilusTrader at default settings: ``BacktestNode`` on the BacktestRunConfig the
      workbench builds for the run, minus the workbench's progress actor and with
      ``run_analysis`` back at NautilusTrader's default (True), in a fresh Python process that
      never imports the workbench (so its PortfolioAnalyzer patch is absent). Logging stays at the
      workbench's ERROR level so neither side pays for writing a log line per bar;
  (b) the workbench end to end: ``submit`` -> ``wait`` -> ``results`` (worker process start, data
      loading, the run, reports, mark-to-market equity, statistics, Parquet artefacts, and loading
      them back).

Both are wall-clock seconds from the start of the request to having the outcome in hand,
including process start-up. A run that exceeds ``--timeout`` is stopped and reported as
"> timeout". Results go to a table on stdout and to JSON in bench/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from services.catalog.sample import SEED, _bars, _instruments, _ohlc, _walk

BAR_TYPE = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"

# Runs in a fresh interpreter with only NautilusTrader: prints one JSON line with the outcome.
RAW_RUNNER = r'''
import json, sys, time
t0 = time.perf_counter()
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import Venue

assert "services" not in sys.modules, "the workbench must not be imported here"
assert not getattr(PortfolioAnalyzer._append_pnl_record, "_workbench_buffered", False)
config = BacktestRunConfig.parse(open(sys.argv[1], "rb").read())
node = BacktestNode(configs=[config])
t1 = time.perf_counter()
node.run()
t2 = time.perf_counter()
engine = node.get_engine(config.id)
cache = engine.cache
positions = [p for p in cache.positions() + cache.position_snapshots() if p.is_closed]
fills = sum(1 for o in cache.orders() for e in o.events if type(e).__name__ == "OrderFilled")
balance = engine.portfolio.account(Venue(config.venues[0].name)).balance_total(USDT).as_double()
print(json.dumps({"trades": len(positions), "fills": fills, "final_balance": balance,
                  "node_run_seconds": t2 - t1, "import_and_build_seconds": t1 - t0}))
'''


def build_catalog(path: Path, bars: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Write ``bars`` one-minute bars of BTCUSDT-PERP.BINANCE (and the instrument) to ``path``."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(path))
    rng = np.random.default_rng(SEED)
    catalog.write_data([_instruments()[0]])
    index = pd.date_range("2020-01-01", periods=bars, freq="1min", tz="UTC")
    sigma = 0.60 / np.sqrt(365 * 1440)
    close = _walk(rng, index.size, sigma, 42_000.0)
    volume = rng.gamma(2.0, 4.0, index.size)
    ohlc = _ohlc(rng, close, sigma, 1)
    # Written in slices so no single list of Bar objects gets huge.
    step = 100_000
    for lo in range(0, index.size, step):
        part = slice(lo, lo + step)
        catalog.write_data(_bars(BAR_TYPE, index[part], tuple(a[part] for a in ohlc),
                                 volume[part], 1, 3))
    return index[0] + pd.Timedelta(minutes=1), index[-1] + pd.Timedelta(minutes=1)


def raw_config(config) -> bytes:
    """The workbench's run config at NautilusTrader's defaults: no progress actor, analysis on."""
    data = json.loads(config.json())
    data["engine"]["actors"] = []
    data["engine"].pop("run_analysis", None)
    from nautilus_trader.backtest.config import BacktestRunConfig

    parsed = BacktestRunConfig.parse(json.dumps(data).encode())
    assert parsed.engine.run_analysis is True and not parsed.engine.actors
    return parsed.json()


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_raw(config_file: Path, workdir: Path, timeout: float) -> dict:
    script = workdir / "raw_runner.py"
    script.write_text(RAW_RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    t0, c0 = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen([sys.executable, str(script), str(config_file)], cwd=workdir,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"status": "timeout", "seconds": None, "timeout": timeout}
    seconds = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_CHILDREN) - c0
    if process.returncode != 0:
        return {"status": "error", "seconds": seconds, "error": err.decode()[-2000:]}
    outcome = json.loads(out.decode().strip().splitlines()[-1])
    return {"status": "ok", "seconds": seconds, "cpu_seconds": cpu, **outcome}


def run_workbench(wb, spec, timeout: float) -> dict:
    t0 = time.perf_counter()
    c0 = _cpu(resource.RUSAGE_CHILDREN) + _cpu(resource.RUSAGE_SELF)
    run_id = wb.backtests.submit(spec)
    info = wb.backtests.wait(run_id, timeout=timeout)
    if not info.is_final:
        wb.backtests.cancel(run_id)
        return {"status": "timeout", "seconds": None, "timeout": timeout, "run_id": run_id}
    if info.status != "Completed":
        return {"status": "error", "seconds": time.perf_counter() - t0, "error": info.error}
    results = wb.backtests.results(run_id)
    seconds = time.perf_counter() - t0
    # The worker is a child of this process, reaped before the run is marked final.
    cpu = _cpu(resource.RUSAGE_CHILDREN) + _cpu(resource.RUSAGE_SELF) - c0
    return {"status": "ok", "seconds": seconds, "cpu_seconds": cpu, "run_id": run_id,
            "trades": len(results.positions), "fills": len(results.fills),
            "final_balance": results.summary["final_balances"]["USDT"],
            "engine_seconds": results.summary["engine_seconds"],
            "equity_rows": len(results.equity)}


def _fmt(result: dict) -> str:
    if result["status"] == "timeout":
        return f"> {result['timeout']:.0f}"
    if result["status"] != "ok":
        return "error"
    return f"{result['seconds']:.1f}"


def _count(value) -> str:
    return "n/a" if value is None else f"{value:,}"


def _cpu_fmt(result: dict) -> str:
    return f"{result['cpu_seconds']:.1f}" if result.get("cpu_seconds") else _fmt(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000, help="1-minute bars (default 1M)")
    parser.add_argument("--variants", default="10/20,50/200",
                        help="comma-separated fast/slow EMA periods (default 10/20,50/200)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds after which a run is stopped and reported as '> timeout'")
    parser.add_argument("--wb-timeout", type=float, default=None,
                        help="timeout of the workbench run (default: --timeout)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    variants = [tuple(int(x) for x in v.split("/")) for v in args.variants.split(",")]
    out = args.out or (PROJECT_ROOT / "bench" / "results"
                       / f"bench_backtest-{args.bars}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")

    from services.backtest.spec import BacktestSpec
    from services.workbench import Workbench

    workdir = Path(tempfile.mkdtemp(prefix="nwb-bench-"))
    rows = []
    try:
        t0 = time.perf_counter()
        first, last = build_catalog(workdir / "catalog", args.bars)
        print(f"catalog: {args.bars:,} bars {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} "
              f"written in {time.perf_counter() - t0:.1f} s ({workdir})", flush=True)
        wb = Workbench.open(state_dir=workdir / "state", catalog=str(workdir / "catalog"))
        for fast, slow in variants:
            spec = BacktestSpec(strategy="ema_cross", bar_type=BAR_TYPE, label=f"bench {fast}/{slow}",
                                parameters={"fast_ema_period": fast, "slow_ema_period": slow})
            config_file = workdir / f"raw-{fast}-{slow}.json"
            config_file.write_bytes(raw_config(wb.backtests.validate(spec)))
            print(f"EMA {fast}/{slow}: (a) raw NautilusTrader ...", flush=True)
            raw = run_raw(config_file, workdir, args.timeout)
            print(f"EMA {fast}/{slow}: (a) {raw['status']} {_fmt(raw)} s; (b) workbench ...", flush=True)
            app = run_workbench(wb, spec, args.wb_timeout or args.timeout)
            print(f"EMA {fast}/{slow}: (b) {app['status']} {_fmt(app)} s", flush=True)
            both = raw["status"] == app["status"] == "ok"
            rows.append({
                "bars": args.bars, "variant": f"{fast}/{slow}",
                "trades": app.get("trades", raw.get("trades")),
                "seconds_raw": raw["seconds"], "seconds_workbench": app["seconds"],
                "ratio_workbench_over_raw": (app["seconds"] / raw["seconds"]) if both else None,
                "cpu_seconds_raw": raw.get("cpu_seconds"),
                "cpu_seconds_workbench": app.get("cpu_seconds"),
                "same_outcome": (raw["trades"] == app["trades"] and raw["fills"] == app["fills"]
                                 and abs(raw["final_balance"] - app["final_balance"]) < 1e-6)
                                if both else None,
                "raw": raw, "workbench": app,
            })
        wb.database.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print()
    header = (f"{'bars':>10} {'EMA':>7} {'trades':>8} {'(a) raw s':>10} {'(b) wb s':>9} {'b/a':>7} "
              f"{'(a) cpu s':>10} {'(b) cpu s':>10} {'cpu b/a':>8}  same")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['ratio_workbench_over_raw']:.3f}" if r["ratio_workbench_over_raw"] else "n/a"
        cpu_a, cpu_b = r["raw"].get("cpu_seconds"), r["workbench"].get("cpu_seconds")
        cpu_ratio = f"{cpu_b / cpu_a:.3f}" if cpu_a and cpu_b else "n/a"
        print(f"{r['bars']:>10,} {r['variant']:>7} {_count(r['trades']):>8} {_fmt(r['raw']):>10} "
              f"{_fmt(r['workbench']):>9} {ratio:>7} {_cpu_fmt(r['raw']):>10} "
              f"{_cpu_fmt(r['workbench']):>10} {cpu_ratio:>8}  {r['same_outcome']}")
    import nautilus_trader

    report = {
        "created": datetime.now(UTC).isoformat(), "bars": args.bars, "timeout": args.timeout,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_at_end": os.getloadavg(),
                    "nautilus_trader": nautilus_trader.__version__, "pandas": pd.__version__},
        "runs": rows,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

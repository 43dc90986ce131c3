"""Benchmark: raw NautilusTrader vs the workbench's backtest service, and how both grow with bars.

    python bench/bench_backtest.py [--sizes 100000,300000,1000000] [--variants 10/20,50/200]
                                   [--legs raw,workbench,before] [--timeout S] [--raw-timeout S]
                                   [--out FILE]

Builds a synthetic catalog of max(sizes) one-minute BTCUSDT-PERP bars (the sample catalog's
generator, from 2020-01-01) in a temporary folder; a run of N bars uses the first N. For each size
and EMA-cross variant it times up to three legs:

  (a) raw: NautilusTrader at default settings: ``BacktestNode`` on the BacktestRunConfig the
      workbench builds for the run, minus the workbench's progress actor and with
      ``run_analysis`` back at NautilusTrader's default (True), in a fresh Python process that
      never imports the workbench (so none of its fixes is present); its only addition is the
      runner's CPU sampler below. Logging stays at the workbench's ERROR level so neither side
      pays for writing a log line per bar;
  (b) workbench: the backtest service end to end: ``submit`` -> ``wait`` -> ``results`` (worker
      process start, data loading, the run with the worker's NautilusTrader fixes, reports,
      mark-to-market equity, statistics, Parquet artefacts, and loading them back);
  (c) before: the workbench's engine as it was before the orders-for-position fix: a fresh
      process with only the analyzer fix, running the worker's config (``run_analysis`` off)
      without the progress actor. Its engine seconds against (b)'s show what the fix changed.

Wall seconds run from the start of the request to having the outcome in hand, including process
start-up; CPU seconds are those of the processes doing the work. A leg that exceeds its timeout
(``--raw-timeout`` for raw, ``--timeout`` for the others) is stopped and reported as "> T".

Growth: the exponent k of seconds ~ bars^k, fitted by least squares over the sizes (1.0 is linear,
2.0 quadratic). A raw or before leg stopped at its timeout gives a lower bound (">= k").

Per-chunk cost profile: CPU seconds per 100k bars over a run, from the simulated time and the
process CPU time: from the workbench's progress file for (b) (written at most twice a second,
and once more right after the engine run), from a NautilusTrader timer in the runner every
simulated hour for (a) and (c).
A flat profile means the cost per bar does not grow with the bars already processed.

Results go to tables on stdout and to JSON in bench/results/ (git-ignored).
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
FIRST_BAR = pd.Timestamp("2020-01-01 00:01", tz="UTC")  # bars are stamped at their close
CHUNK_BARS = 100_000
LEGS = ("raw", "workbench", "before")
TARGET_RATIO = 0.15  # 1M bars EMA 10/20: workbench wall <= 0.15 x raw wall
TARGET_EXPONENT = 1.15

# Runs in a fresh interpreter: prints one JSON line per simulated hour ({"sample": [sim ns,
# cpu s]}) and one with the outcome. "raw" must not see the workbench; "before" installs only
# the analyzer fix, as the worker did before the orders-for-position fix.
RUNNER = r'''
import json, sys, time
t0 = time.perf_counter()
mode, config_path = sys.argv[1], sys.argv[2]
from datetime import timedelta
from nautilus_trader.analysis.analyzer import PortfolioAnalyzer
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig, ImportableActorConfig
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.system import kernel

if mode == "raw":
    assert "services" not in sys.modules, "the workbench must not be imported here"
    assert not getattr(PortfolioAnalyzer._append_pnl_record, "_workbench_buffered", False)
else:
    from services.backtest import analyzer_fix
    analyzer_fix.install()
assert kernel.Cache is Cache, "the orders-for-position fix must not be installed here"


class CpuSamplerConfig(ActorConfig, frozen=True):
    pass


class CpuSampler(Actor):
    def on_start(self):
        self.clock.set_timer("bench-cpu", timedelta(hours=1), callback=self._sample)

    def _sample(self, event):
        print(json.dumps({"sample": [event.ts_event, time.process_time()]}), flush=True)

    def on_stop(self):
        self.clock.cancel_timers()


sys.modules["bench_cpu_sampler"] = sys.modules[__name__]
config = json.loads(open(config_path).read())
config["engine"]["actors"] = [ImportableActorConfig(
    actor_path="bench_cpu_sampler:CpuSampler", config_path="bench_cpu_sampler:CpuSamplerConfig",
    config={}).dict()]
config = BacktestRunConfig.parse(json.dumps(config).encode())
t1, c1 = time.perf_counter(), time.process_time()
node = BacktestNode(configs=[config])
node.run()
t2, c2 = time.perf_counter(), time.process_time()
engine = node.get_engine(config.id)
cache = engine.cache
positions = [p for p in cache.positions() + cache.position_snapshots() if p.is_closed]
fills = sum(1 for o in cache.orders() for e in o.events if type(e).__name__ == "OrderFilled")
balance = engine.portfolio.account(Venue(config.venues[0].name)).balance_total(USDT).as_double()
print(json.dumps({"trades": len(positions), "fills": fills, "final_balance": balance,
                  "engine_seconds": t2 - t1, "engine_cpu_seconds": c2 - c1,
                  "import_and_build_seconds": t1 - t0}), flush=True)
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


def before_config(config) -> bytes:
    """The worker's run config (``run_analysis`` off) without the workbench's progress actor."""
    data = json.loads(config.json())
    data["engine"]["actors"] = []
    assert data["engine"]["run_analysis"] is False
    return json.dumps(data).encode()


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_runner(mode: str, config_file: Path, workdir: Path, timeout: float) -> dict:
    """Run leg (a) ``raw`` or (c) ``before`` in a fresh interpreter."""
    script = workdir / "runner.py"
    script.write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if mode == "before":
        env["PYTHONPATH"] = str(PROJECT_ROOT)
    t0, c0 = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen([sys.executable, str(script), mode, str(config_file)], cwd=workdir,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               start_new_session=True, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
        status = "ok" if process.returncode == 0 else "error"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        status = "timeout"
    seconds = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_CHILDREN) - c0
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    samples = [line["sample"] for line in lines if "sample" in line]
    result = {"status": status, "seconds": seconds if status == "ok" else None,
              "cpu_seconds": cpu, "timeout": timeout, "samples": samples}
    if status == "error":
        result["error"] = err[-2000:]
    elif status == "ok":
        result.update(lines[-1])
    return result


def run_workbench(wb, spec, last_bar: pd.Timestamp, timeout: float) -> dict:
    """Run leg (b), sampling the worker's progress file for the per-chunk profile.

    The progress actor writes at most twice a second; the worker's "writing results" entry,
    written once right after the engine run, gives the CPU time at the last bar.
    """
    t0 = time.perf_counter()
    c0 = _cpu(resource.RUSAGE_CHILDREN) + _cpu(resource.RUSAGE_SELF)
    run_id = wb.backtests.submit(spec)
    samples: list[list[float]] = []
    at_end = None
    deadline = t0 + timeout
    while True:
        info = wb.backtests.wait(run_id, timeout=0.05, poll=0.05)
        if info.is_final or time.perf_counter() > deadline:
            break
        progress = _read_json(Path(info.run_folder) / "progress.json") or {}
        if progress.get("phase") == "running" and progress.get("sim_time_ns") and (
                not samples or progress["sim_time_ns"] > samples[-1][0]):
            samples.append([progress["sim_time_ns"], progress["cpu_seconds"]])
        elif progress.get("phase") == "writing results" and at_end is None:
            at_end = [last_bar.value, progress["cpu_seconds"]]
    if at_end is not None:
        samples.append(at_end)
    if not info.is_final:
        wb.backtests.cancel(run_id)
        return {"status": "timeout", "seconds": None, "timeout": timeout, "run_id": run_id,
                "samples": samples}
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
            "engine_cpu_seconds": results.summary.get("engine_cpu_seconds"),
            "nautilus_fixes": results.summary.get("nautilus_fixes"),
            "iterations": results.summary["iterations"],
            "equity_rows": len(results.equity), "samples": samples}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def chunk_profile(samples: list[list[float]], bars: int) -> list[float]:
    """CPU seconds per CHUNK_BARS bars, interpolated from (simulated ns, CPU s) samples.

    Only chunks the samples cover completely are returned (a stopped run gives fewer).
    """
    if len(samples) < 2:
        return []
    sim = np.array([s[0] for s in samples], dtype=float)
    cpu = np.array([s[1] for s in samples], dtype=float)
    start = FIRST_BAR.value
    edges = [start + k * CHUNK_BARS * 60e9 for k in range(bars // CHUNK_BARS + 1)]
    # Samples come once per simulated hour: a chunk that ends within the hour after the last
    # sample is complete (np.interp holds the last value for at most 60 of its 100k bars).
    edges = [e for e in edges if e <= sim[-1] + 3600e9]
    if len(edges) < 2:
        return []
    return [round(float(c), 2) for c in np.diff(np.interp(edges, sim, cpu))]


def growth_exponent(points: list[tuple[int, float]]) -> float | None:
    """k in seconds ~ bars^k, least squares on log-log over ``points`` (bars, seconds)."""
    points = [(b, s) for b, s in points if s]
    if len(points) < 2:
        return None
    x, y = np.log([b for b, _ in points]), np.log([s for _, s in points])
    return float(np.polyfit(x, y, 1)[0])


def _seconds(leg: dict, key: str = "seconds") -> float | None:
    """The leg's seconds; a stopped leg counts as its timeout (a lower bound)."""
    if leg["status"] == "timeout":
        return leg["timeout"] if key == "seconds" else None
    return leg.get(key) if leg["status"] == "ok" else None


def _fmt(leg: dict | None, key: str = "seconds") -> str:
    if leg is None:
        return "-"
    if leg["status"] == "timeout":
        return f"> {leg['timeout']:.0f}" if key == "seconds" else "-"
    if leg["status"] != "ok" or leg.get(key) is None:
        return "error"
    return f"{leg[key]:.1f}"


def _same(a: dict | None, b: dict | None) -> bool | None:
    if not a or not b or a["status"] != "ok" or b["status"] != "ok":
        return None
    return (a["trades"] == b["trades"] and a["fills"] == b["fills"]
            and abs(a["final_balance"] - b["final_balance"]) < 0.005)


def summarise(rows: list[dict], sizes: list[int]) -> dict:
    """Growth exponents per variant and leg, and the issue's three targets."""
    growth: dict[str, dict] = {}
    for variant in sorted({r["variant"] for r in rows}):
        mine = [r for r in rows if r["variant"] == variant]
        growth[variant] = {}
        for leg in LEGS:
            legs = [(r["bars"], r["legs"].get(leg)) for r in mine if r["legs"].get(leg)]
            if not legs:
                continue
            bounded = any(x["status"] == "timeout" for _, x in legs)
            entry = {"lower_bound": bounded}
            for key in ("seconds", "cpu_seconds", "engine_seconds", "engine_cpu_seconds"):
                entry[key] = growth_exponent([(b, _seconds(x, key)) for b, x in legs])
            growth[variant][leg] = entry
    targets = {}
    by_key = {(r["bars"], r["variant"]): r for r in rows}
    top = max(sizes)
    fast = by_key.get((top, "10/20"))
    if fast and fast["legs"].get("raw") and fast["legs"].get("workbench"):
        raw, wb = fast["legs"]["raw"], fast["legs"]["workbench"]
        if wb["status"] == "ok" and raw["status"] in ("ok", "timeout"):
            ratio = wb["seconds"] / _seconds(raw)
            targets["ratio_workbench_over_raw_wall"] = {
                "value": ratio, "upper_bound": raw["status"] == "timeout",
                "target": TARGET_RATIO, "met": ratio <= TARGET_RATIO}
    exponent = growth.get("10/20", {}).get("workbench", {}).get("seconds")
    if exponent is not None and min(sizes) < top:
        targets["growth_exponent_workbench_wall"] = {
            "value": exponent, "target": TARGET_EXPONENT, "met": exponent <= TARGET_EXPONENT}
    slow = by_key.get((top, "50/200"))
    if slow and slow["legs"].get("before") and slow["legs"].get("workbench"):
        before, wb = slow["legs"]["before"], slow["legs"]["workbench"]
        if before["status"] == wb["status"] == "ok":
            targets["slow_variant_engine_after_over_before"] = {
                "wall": wb["engine_seconds"] / before["engine_seconds"],
                "cpu": wb["engine_cpu_seconds"] / before["engine_cpu_seconds"],
                "note": "engine seconds of (b) over (c): at most ~1.0 means no slower"}
    return {"growth": growth, "targets": targets}


def print_tables(rows: list[dict], summary: dict) -> None:
    print("seconds: wall / CPU; eng = the engine run alone (BacktestNode built and run)")
    header = (f"{'bars':>10} {'EMA':>7} {'trades':>7} {'(a) raw':>14} {'(b) workbench':>14} "
              f"{'b/a wall':>9} {'(b) eng':>13} {'(c) before eng':>14}  same(a,b) same(c,b)")
    print(header)
    print("-" * len(header))
    for r in rows:
        raw, wb, before = (r["legs"].get(leg) for leg in LEGS)
        ratio = "n/a"
        if raw and wb and wb["status"] == "ok" and _seconds(raw):
            ratio = (("< " if raw["status"] == "timeout" else "")
                     + f"{wb['seconds'] / _seconds(raw):.3f}")
        trades = wb.get("trades") if wb else None

        def pair(leg, wall, cpu):
            return f"{_fmt(leg, wall)} / {_fmt(leg, cpu)}"

        print(f"{r['bars']:>10,} {r['variant']:>7} {trades if trades is not None else 'n/a':>7} "
              f"{pair(raw, 'seconds', 'cpu_seconds'):>14} {pair(wb, 'seconds', 'cpu_seconds'):>14} "
              f"{ratio:>9} {pair(wb, 'engine_seconds', 'engine_cpu_seconds'):>13} "
              f"{pair(before, 'engine_seconds', 'engine_cpu_seconds'):>14}  "
              f"{str(_same(raw, wb)):>9} {str(_same(before, wb)):>9}")
    print("\ngrowth exponent k (seconds ~ bars^k) over the sizes; '>=' where a leg was stopped")
    for variant, legs in summary["growth"].items():
        for leg, entry in legs.items():
            bound = ">= " if entry["lower_bound"] else ""
            values = "  ".join(f"{key} {bound}{entry[key]:.2f}" if entry[key] is not None
                               else f"{key} n/a" for key in ("seconds", "cpu_seconds",
                                                             "engine_seconds",
                                                             "engine_cpu_seconds"))
            print(f"  EMA {variant:>6} ({leg}): {values}")
    print(f"\nCPU seconds per {CHUNK_BARS:,} bars, chunk by chunk")
    for r in rows:
        for leg in LEGS:
            x = r["legs"].get(leg)
            if x and x.get("profile"):
                stopped = " (stopped)" if x["status"] == "timeout" else ""
                print(f"  {r['bars']:>9,} EMA {r['variant']:>6} ({leg}){stopped}: "
                      + " ".join(f"{c:.1f}" for c in x["profile"]))
    print("\ntargets")
    for name, t in summary["targets"].items():
        print(f"  {name}: {json.dumps(t)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,300000,1000000",
                        help="comma-separated numbers of 1-minute bars (default 100k,300k,1M)")
    parser.add_argument("--variants", default="10/20,50/200",
                        help="comma-separated fast/slow EMA periods (default 10/20,50/200)")
    parser.add_argument("--legs", default=",".join(LEGS),
                        help="comma-separated legs to run: raw, workbench, before (default all)")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds after which a workbench or before run is stopped")
    parser.add_argument("--raw-timeout", type=float, default=None,
                        help="seconds after which a raw run is stopped and reported as '> T' "
                             "(default: --timeout)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    variants = [tuple(int(x) for x in v.split("/")) for v in args.variants.split(",")]
    legs = [leg.strip() for leg in args.legs.split(",")]
    unknown = sorted(set(legs) - set(LEGS))
    if unknown:
        parser.error(f"--legs: unknown leg(s) {', '.join(unknown)}; choose from {', '.join(LEGS)}")
    raw_timeout = args.raw_timeout or args.timeout
    out = args.out or (PROJECT_ROOT / "bench" / "results"
                       / f"bench_backtest-{max(sizes)}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json")

    from services.backtest.spec import BacktestSpec
    from services.workbench import Workbench

    workdir = Path(tempfile.mkdtemp(prefix="nwb-bench-"))
    rows = []
    try:
        t0 = time.perf_counter()
        first, last = build_catalog(workdir / "catalog", max(sizes))
        assert first == FIRST_BAR
        print(f"catalog: {max(sizes):,} bars {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} "
              f"written in {time.perf_counter() - t0:.1f} s ({workdir})", flush=True)
        wb = Workbench.open(state_dir=workdir / "state", catalog=str(workdir / "catalog"),
                            scheduler=True)
        for bars in sizes:
            end = first + pd.Timedelta(minutes=bars - 1)
            for fast, slow in variants:
                spec = BacktestSpec(strategy="ema_cross", bar_type=BAR_TYPE, end=end.isoformat(),
                                    label=f"bench {bars} {fast}/{slow}",
                                    parameters={"fast_ema_period": fast, "slow_ema_period": slow})
                config = wb.backtests.validate(spec)
                row = {"bars": bars, "variant": f"{fast}/{slow}", "legs": {}}
                for leg in legs:
                    print(f"{bars:,} bars EMA {fast}/{slow}: {leg} ...", flush=True)
                    load_before = os.getloadavg()[0]
                    if leg == "workbench":
                        result = run_workbench(wb, spec, end, args.timeout)
                    else:
                        config_file = workdir / f"{leg}-{bars}-{fast}-{slow}.json"
                        config_file.write_bytes(raw_config(config) if leg == "raw"
                                                else before_config(config))
                        result = run_runner(leg, config_file, workdir,
                                            raw_timeout if leg == "raw" else args.timeout)
                    result["profile"] = chunk_profile(result.pop("samples", []), bars)
                    # Other work on the machine stretches wall time; CPU seconds much less so.
                    result["load_average"] = [load_before, os.getloadavg()[0]]
                    row["legs"][leg] = result
                    print(f"{bars:,} bars EMA {fast}/{slow}: {leg} {result['status']} "
                          f"{_fmt(result)} s wall, {_fmt(result, 'cpu_seconds')} s CPU", flush=True)
                rows.append(row)
        wb.database.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise(rows, sizes)
    print()
    print_tables(rows, summary)
    import nautilus_trader

    report = {
        "created": datetime.now(UTC).isoformat(), "sizes": sizes, "timeout": args.timeout,
        "raw_timeout": raw_timeout, "chunk_bars": CHUNK_BARS,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_at_end": os.getloadavg(),
                    "nautilus_trader": nautilus_trader.__version__, "pandas": pd.__version__},
        "runs": rows, **summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Catalog browser benchmarks, each next to raw NautilusTrader/pyarrow in the same run.

    python bench/bench_catalog.py [--instruments 200] [--gap-bars 1000000] [--preview-rows 5000000]

1. Inventory of a synthetic catalog of N instruments x 3 data types (bars, quotes, trades),
   from file names and Parquet footers (target <= 1 s), against loading every file
   (pyarrow) and NautilusTrader's own instrument listing and data queries; and its coverage
   segments, first from every file's timestamps, then from the coverage index in a new
   service (target <= 1 s).
2. Gap scan (CME calendar) and every quality check of 1M one-minute bars (target <= 1 s),
   in memory and end to end from the catalog, against NautilusTrader loading those bars.
3. Price preview of a 5M-row series: points shipped to the browser (target <= ~50k) and time,
   against reading the series whole.
4. Streaming import of large CSVs (default 1M and 2M rows, ~50 and ~100 MB), each in a fresh
   process: time, rows/s and how much the process grew while importing -- the same for both
   sizes, because memory follows the chunk (250k rows), not the file -- against pandas reading
   the file whole (``--import-rows 0`` skips it).
5. What crash safety costs (target <= 10 %): the same import of a 1M-row CSV and the same
   range delete (rewriting two of twelve files, removing four) with the journal, its fsyncs and
   the catalog lock, against the same writer with those steps switched off (what the writer did
   before it was crash-safe), alternated in one process, median of 3 each
   (``--safety-rows 0`` skips it).
Results are printed and written to bench/results/bench_catalog.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.catalog.calendars import get_calendar
from services.catalog.inventory import PREVIEW_POINTS, CatalogService
from services.catalog.quality import check_frame, find_bar_gaps

RESULTS = Path(__file__).resolve().parent / "results"
ROWS_PER_SERIES = 2_000
MINUTE_NS = 60 * 10**9


def _timed(fn, repeat: int = 3):
    best, value = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def _pair(i: int):
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.identifiers import InstrumentId, Symbol
    from nautilus_trader.model.instruments import CurrencyPair
    from nautilus_trader.model.objects import Currency, Price, Quantity

    base = Currency.from_str(f"C{i:03d}", strict=False)
    return CurrencyPair(
        instrument_id=InstrumentId.from_str(f"C{i:03d}/USD.BENCH"), raw_symbol=Symbol(f"C{i:03d}/USD"),
        base_currency=base, quote_currency=USD, price_precision=5, size_precision=0,
        price_increment=Price.from_str("0.00001"), size_increment=Quantity.from_int(1),
        lot_size=None, max_quantity=None, min_quantity=None, max_price=None, min_price=None,
        max_notional=None, min_notional=None, margin_init=Decimal("0.03"),
        margin_maint=Decimal("0.03"), maker_fee=Decimal(0), taker_fee=Decimal(0),
        ts_event=0, ts_init=0)


def _bars(bar_type: str, ts: np.ndarray, close: np.ndarray, precision: int = 5):
    from nautilus_trader.model.data import Bar, BarType

    close = np.round(close, precision)
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + 10.0 ** -precision
    low = np.minimum(open_, close) - 10.0 ** -precision
    volume = np.ones(ts.size)
    ts = np.ascontiguousarray(ts, dtype=np.uint64)
    return Bar.from_raw_arrays_to_list(BarType.from_str(bar_type), precision, 0,
                                       open_.copy(), high.copy(), low.copy(), close.copy(),
                                       volume, ts, ts.copy())


def build_inventory_catalog(root: Path, instruments: int) -> None:
    """N FX pairs, each with 1-minute bars, quotes and trades (2 files per series)."""
    from nautilus_trader.model.data import QuoteTick, TradeTick
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(root))
    rng = np.random.default_rng(7)
    pairs = [_pair(i) for i in range(instruments)]
    catalog.write_data(pairs)
    start = pd.Timestamp("2024-01-02", tz="UTC").value
    for pair in pairs:
        for half in range(2):
            ts = start + (np.arange(ROWS_PER_SERIES // 2) + half * ROWS_PER_SERIES // 2 + 1) * MINUTE_NS
            mid = 1.0 + np.cumsum(rng.normal(0, 1e-4, ts.size))
            catalog.write_data(_bars(f"{pair.id}-1-MINUTE-LAST-EXTERNAL", ts, mid))
            ts_u = np.ascontiguousarray(ts, dtype=np.uint64)
            catalog.write_data(QuoteTick.from_raw_arrays_to_list(
                pair.id, 5, 0, np.round(mid - 1e-4, 5), np.round(mid + 1e-4, 5),
                np.full(ts.size, 1e6), np.full(ts.size, 1e6), ts_u, ts_u.copy()))
            catalog.write_data(TradeTick.from_raw_arrays_to_list(
                pair.id, 5, 0, np.round(mid, 5), np.full(ts.size, 1000.0),
                np.ones(ts.size, dtype=np.uint8), [str(i) for i in range(ts.size)], ts_u, ts_u.copy()))


def bench_inventory(root: Path, instruments: int) -> dict:
    from nautilus_trader.model.data import Bar, QuoteTick, TradeTick
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    cold, series = _timed(lambda: CatalogService(str(root)).series(), repeat=3)
    service = CatalogService(str(root))
    service.series()
    warm, _ = _timed(service.series, repeat=3)
    instruments_s, infos = _timed(lambda: CatalogService(str(root)).instruments(), repeat=1)
    files = sorted(p for p in (root / "data").rglob("*.parquet"))
    data_files = [f for f in files if f.parts[-3] in ("bar", "quote_tick", "trade_tick")]
    read_all_s, rows = _timed(lambda: sum(pq.read_table(f).num_rows for f in data_files), repeat=1)
    nautilus = ParquetDataCatalog(str(root))
    ids = [str(i.instrument_id) for i in infos]

    def nautilus_load_everything() -> int:
        count = 0
        for instrument_id in ids:
            count += len(nautilus.query(QuoteTick, identifiers=[instrument_id]))
            count += len(nautilus.query(TradeTick, identifiers=[instrument_id]))
            count += len(nautilus.query(Bar, identifiers=[f"{instrument_id}-1-MINUTE-LAST-EXTERNAL"]))
        return count

    nautilus_s, nautilus_rows = _timed(nautilus_load_everything, repeat=1)
    assert len(series) == 3 * instruments and len(infos) == instruments
    assert sum(s.rows for s in series) == rows == nautilus_rows
    # Coverage segments: the first listing reads each file's timestamps and stores its breaks
    # in the coverage index; later listings (this process or another) read the index only.
    index = root / ".workbench-coverage.json"
    index.unlink(missing_ok=True)
    coverage_first_s, coverages = _timed(lambda: CatalogService(str(root)).coverages(), repeat=1)
    coverage_again_s, _ = _timed(lambda: CatalogService(str(root)).coverages(), repeat=3)
    assert [c.key for c in coverages] == [s.key for s in series]
    assert sum(c.rows for c in coverages) == rows
    return {
        "instruments": instruments, "series": len(series), "data_files": len(data_files),
        "rows": rows, "inventory_cold_s": round(cold, 3), "inventory_warm_s": round(warm, 4),
        "instrument_details_s": round(instruments_s, 3),
        "inventory_with_instruments_cold_s": round(cold + instruments_s, 3),
        "read_every_file_pyarrow_s": round(read_all_s, 3),
        "nautilus_query_every_series_s": round(nautilus_s, 3),
        "ratio_pyarrow_over_inventory": round(read_all_s / cold, 1),
        "ratio_nautilus_over_inventory": round(nautilus_s / cold, 1),
        "coverage_first_s": round(coverage_first_s, 3),
        "coverage_from_index_s": round(coverage_again_s, 3),
        "coverage_index_bytes": index.stat().st_size,
        "target_s": 1.0, "ok": cold + instruments_s <= 1.0 and coverage_again_s <= 1.0,
    }


def _cme_minutes(n: int, rng: np.random.Generator) -> np.ndarray:
    """n bar close times on CME Globex hours (breaks and weekends closed), 1% missing."""
    calendar = get_calendar("cme-globex")
    start = pd.Timestamp("2019-01-06 23:01", tz="UTC").value
    grid = start + np.arange(int(n * 1.6)) * MINUTE_NS
    grid = grid[calendar.is_open(grid - MINUTE_NS)]
    keep = rng.random(grid.size) > 0.01
    return grid[keep][:n]


def bench_gap_scan(root: Path, n: int) -> dict:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    rng = np.random.default_rng(11)
    ts = _cme_minutes(n, rng)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 2e-4, ts.size)))
    calendar = get_calendar("cme-globex")
    gaps_s, gaps = _timed(lambda: find_bar_gaps(ts, MINUTE_NS, calendar))
    frame = pd.DataFrame({"ts_event": ts, "open": close, "high": close * 1.0002,
                          "low": close * 0.9998, "close": close, "volume": np.ones(ts.size)})
    all_checks_s, report = _timed(lambda: check_frame(frame, "bars", calendar=calendar,
                                                      step_ns=MINUTE_NS))
    # End to end from a catalog written by NautilusTrader.
    catalog = ParquetDataCatalog(str(root))
    bar_type = "6EZ9.XCME-1-MINUTE-LAST-EXTERNAL"
    for part in np.array_split(np.arange(ts.size), 4):
        catalog.write_data(_bars(bar_type, ts[part], close[part]))
    service = CatalogService(str(root))
    end_to_end_s, stored = _timed(lambda: service.check(bar_type, calendar="cme-globex"), repeat=2)
    nautilus_s, loaded = _timed(lambda: len(catalog.bars(bar_types=[bar_type])), repeat=1)
    assert stored.rows == ts.size == loaded and len(stored.gaps) == len(gaps)
    return {
        "bars": int(ts.size), "gaps": len(gaps), "missing_bars": int(sum(g.missing for g in gaps)),
        "gap_scan_s": round(gaps_s, 3), "all_checks_in_memory_s": round(all_checks_s, 3),
        "check_from_catalog_s": round(end_to_end_s, 3),
        "nautilus_load_bars_s": round(nautilus_s, 3),
        "ratio_nautilus_load_over_check": round(nautilus_s / end_to_end_s, 1),
        "target_s": 1.0, "ok": gaps_s <= 1.0 and all_checks_s <= 1.0,
        "report_rows": report.rows,
    }


def bench_preview(root: Path, n: int) -> dict:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = ParquetDataCatalog(str(root))
    bar_type = "BIG.BENCH-1-MINUTE-LAST-EXTERNAL"
    rng = np.random.default_rng(5)
    start = pd.Timestamp("2010-01-01", tz="UTC").value
    chunk = 500_000
    level = 100.0
    for first in range(0, n, chunk):
        count = min(chunk, n - first)
        ts = start + (np.arange(count) + first + 1) * MINUTE_NS
        close = level * np.exp(np.cumsum(rng.normal(0, 3e-4, count)))
        level = float(close[-1])
        catalog.write_data(_bars(bar_type, ts, close, precision=4))
    service = CatalogService(str(root))
    preview_s, preview = _timed(lambda: service.preview(bar_type), repeat=2)
    whole_s, whole = _timed(lambda: service.bars(bar_type), repeat=1)
    assert len(whole) == n
    return {
        "rows": n, "points_shipped": len(preview), "max_points": PREVIEW_POINTS,
        "preview_s": round(preview_s, 3), "read_whole_series_s": round(whole_s, 3),
        "extremes_kept": bool(preview["price"].max() == whole["close"].max()
                              and preview["price"].min() == whole["close"].min()),
        "ok": len(preview) <= PREVIEW_POINTS,
    }


def bench_import(root: Path, n: int) -> dict:
    import psutil

    from services.catalog.importer import ImportOptions
    from services.catalog.writer import CatalogWriter

    path = root / "big.csv"
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    index = pd.date_range("2015-01-01 00:01", periods=n, freq="1min")
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 3e-4, n))), 2)
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": close,
                  "high": np.round(close + 0.05, 2), "low": np.round(close - 0.05, 2),
                  "close": close, "volume": rng.integers(1, 100, n)}).to_csv(path, index=False)
    del index, close
    size = path.stat().st_size
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [baseline]
    progress_calls = []

    def progress(done: int, total: int | None) -> None:
        progress_calls.append(done)
        peak[0] = max(peak[0], process.memory_info().rss)

    writer = CatalogWriter(CatalogService(str(root / "catalog")))
    started = time.perf_counter()
    result = writer.import_file(str(path), ImportOptions("BIG.BENCH", instrument_type="equity"),
                                progress=progress)
    import_s = time.perf_counter() - started
    started = time.perf_counter()
    whole = pd.read_csv(path)
    read_whole_s = time.perf_counter() - started
    whole_bytes = int(whole.memory_usage(deep=True).sum())
    assert result.rows == n
    return {
        "rows": n, "file_mb": round(size / 1e6, 1), "import_s": round(import_s, 2),
        "rows_per_s": int(n / import_s), "files_written": result.files,
        "progress_reports": len(progress_calls),
        "process_growth_mb": round((peak[0] - baseline) / 1e6, 1),
        "pandas_read_whole_s": round(read_whole_s, 2),
        "pandas_frame_mb": round(whole_bytes / 1e6, 1), "ok": True,
    }


def _without_crash_safety():
    """Switch off what crash safety added (fsyncs, the journal, the cross-process lock), so
    the writer does what it did before: stage, then rename into place."""
    import contextlib

    from services.catalog import journal

    saved = (journal._fsync_file, journal._fsync_dir, journal.CatalogChange._write_journal,
             journal.fcntl.flock)

    @contextlib.contextmanager
    def off():
        journal._fsync_file = journal._fsync_dir = lambda path: None
        journal.CatalogChange._write_journal = lambda self, state, prune: None
        journal.fcntl.flock = lambda fd, op: None
        try:
            yield
        finally:
            (journal._fsync_file, journal._fsync_dir, journal.CatalogChange._write_journal,
             journal.fcntl.flock) = saved

    return off()


def bench_crash_safety(root: Path, n: int, import_repeat: int = 5,
                       delete_repeat: int = 25) -> dict:
    import contextlib
    import shutil

    from services.catalog.importer import ImportOptions
    from services.catalog.writer import CatalogWriter

    root.mkdir(parents=True, exist_ok=True)
    path = root / "safety.csv"
    rng = np.random.default_rng(5)
    index = pd.date_range("2016-01-01 00:01", periods=n, freq="1min")
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 3e-4, n))), 2)
    pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"), "open": close,
                  "high": np.round(close + 0.05, 2), "low": np.round(close - 0.05, 2),
                  "close": close, "volume": rng.integers(1, 100, n)}).to_csv(path, index=False)
    options = ImportOptions("SAFE.BENCH", instrument_type="equity", bar_spec="1-MINUTE-LAST",
                            chunk_rows=-(-n // 12))
    key = "SAFE.BENCH-1-MINUTE-LAST-EXTERNAL"
    first, last = index[0], index[-1]
    cut_from = first + (last - first) * 0.15
    cut_to = first + (last - first) * 0.55  # cuts file 2 and file 7, removes 3..6
    pristine = root / "pristine"
    CatalogWriter(CatalogService(str(pristine))).import_file(str(path), options)

    def guard(safe: bool):
        return contextlib.nullcontext() if safe else _without_crash_safety()

    def timed(label: str, i: int, safe: bool, prepare, act) -> float:
        target = root / f"{label}-{i}-{safe}"
        prepare(target)
        os.sync()  # each timing starts with no dirty pages left over from the one before
        with guard(safe):
            writer = CatalogWriter(CatalogService(str(target)))
            started = time.perf_counter()
            act(writer)
            took = time.perf_counter() - started
        shutil.rmtree(target)
        return took

    times = {"import_safe_s": [], "import_unsafe_s": [], "delete_safe_s": [],
             "delete_unsafe_s": []}
    deleted = []
    for op, repeat in (("import", import_repeat), ("delete", delete_repeat)):
        for i in range(repeat):
            for safe in (i % 2 == 0, i % 2 != 0):  # alternate which goes first
                if op == "import":
                    took = timed(op, i, safe, lambda t: None,
                                 lambda w: w.import_file(str(path), options))
                else:
                    took = timed(op, i, safe, lambda t: shutil.copytree(pristine, t),
                                 lambda w: deleted.append(w.delete(key, cut_from, cut_to,
                                                                   confirm=True)))
                times[f"{op}_{'safe' if safe else 'unsafe'}_s"].append(took)
    median = {k: float(np.median(v)) for k, v in times.items()}
    import_cost = median["import_safe_s"] / median["import_unsafe_s"] - 1
    delete_cost = median["delete_safe_s"] / median["delete_unsafe_s"] - 1
    return {
        "rows": n, "files": 12, "deleted_rows": deleted[0].rows_deleted,
        "files_removed": deleted[0].files_removed, "files_rewritten": deleted[0].files_rewritten,
        "import_repeats": import_repeat, "delete_repeats": delete_repeat,
        **{k: round(v, 3) for k, v in median.items()},
        "import_cost_pct": round(100 * import_cost, 1),
        "delete_cost_pct": round(100 * delete_cost, 1),
        "ok": import_cost <= 0.10 and delete_cost <= 0.10,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", type=int, default=200)
    parser.add_argument("--gap-bars", type=int, default=1_000_000)
    parser.add_argument("--preview-rows", type=int, default=5_000_000)
    parser.add_argument("--import-rows", type=int, default=2_000_000)
    parser.add_argument("--safety-rows", type=int, default=1_000_000)
    parser.add_argument("--only-safety", action="store_true",
                        help="run only the crash-safety cost benchmark")
    parser.add_argument("--only-import", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only_import:  # one import in a fresh process, so its memory growth is its own
        print(json.dumps(bench_import(Path(args.work) / f"import-{args.only_import}",
                                      args.only_import)))
        return 0
    results = {}
    if args.only_safety:
        with tempfile.TemporaryDirectory() as tmp:
            results["crash_safety"] = bench_crash_safety(Path(tmp), args.safety_rows)
        print(json.dumps(results["crash_safety"], indent=2))
        return 0 if results["crash_safety"]["ok"] else 1
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_inventory_catalog(Path(tmp) / "inventory", args.instruments)
        print(f"built the inventory catalog in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        results["inventory"] = bench_inventory(Path(tmp) / "inventory", args.instruments)
        print(json.dumps(results["inventory"], indent=2), flush=True)
        results["gap_scan"] = bench_gap_scan(Path(tmp) / "gaps", args.gap_bars)
        print(json.dumps(results["gap_scan"], indent=2), flush=True)
        results["preview"] = bench_preview(Path(tmp) / "preview", args.preview_rows)
        print(json.dumps(results["preview"], indent=2), flush=True)
        if args.import_rows:
            for rows in (args.import_rows // 2, args.import_rows):
                out = subprocess.run(
                    [sys.executable, __file__, "--only-import", str(rows), "--work", tmp],
                    check=True, capture_output=True, text=True).stdout
                results[f"import_{rows}"] = json.loads(out)
                print(out, flush=True)
        if args.safety_rows:
            results["crash_safety"] = bench_crash_safety(Path(tmp) / "safety", args.safety_rows)
            print(json.dumps(results["crash_safety"], indent=2), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_catalog.json").write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""A completed run's artefacts, loaded once per process: the results viewer, the compare page
and the report of every session share them."""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from services.backtest.layout import DAILY_RETURNS, DAY_COLUMN, RESULTS, RETURN_COLUMN
from services.backtest.records import COMPLETED, RunInfo
from services.backtest.statistics import METRICS_VERSION, compute_statistics, daily_returns
from services.catalog.importer import precision_of
from services.errors import BacktestError

# Columns the viewer, the report and the metrics rely on, per artefact.
_REQUIRED_COLUMNS = {
    "equity": {"close", "position", "equity", "drawdown"},
    "fills": {"ts", "side", "quantity", "price", "commission"},
    "positions": {"entry", "opened", "closed", "realized_pnl"},
}
CACHED_RUNS = 8  # a 1M-bar run's results take ~100 MB in memory
CACHED_RETURNS = 20_000  # runs' daily returns: a few kB each


@dataclass(frozen=True)
class RunResults:
    """Everything a completed run left in its folder, ready for charts and tables."""

    info: RunInfo
    spec: dict
    summary: dict
    statistics: dict
    equity: pd.DataFrame  # per bar: close, position, equity, drawdown
    fills: pd.DataFrame
    positions: pd.DataFrame
    orders: pd.DataFrame
    account: pd.DataFrame
    config: dict

    def net_returns(self) -> pd.Series:
        """Each closed position's PnL, after commission, over its entry notional: the return
        that matches its PnL (NautilusTrader's ``realized_return`` is the price move alone)."""
        p = self.positions
        notional = (p["quantity"].astype(float) * p["avg_px_open"].astype(float)
                    * float(self.summary.get("multiplier") or 1.0))
        return p["realized_pnl"].astype(float) / notional.where(notional != 0)

    def precisions(self) -> tuple[int, int]:
        """Decimals of the instrument's prices and sizes: as recorded with the run, or, for
        runs recorded before they were, the fewest that write every fill exactly."""
        price, size = self.summary.get("price_precision"), self.summary.get("size_precision")
        if price is None or size is None:
            fills = self.fills
            price = precision_of(fills["price"].to_numpy(dtype="float64")) if len(fills) else 2
            size = precision_of(fills["quantity"].to_numpy(dtype="float64")) if len(fills) else 0
        return int(price), int(size)


class ResultsStore:
    """Loads results and statistics of completed runs, keeping the last few in memory (keyed by
    run id and the results folder's version, so results rewritten on disk load again)."""

    def __init__(self, capacity: int = CACHED_RUNS) -> None:
        self._capacity = capacity
        self._cache: OrderedDict[tuple, RunResults] = OrderedDict()
        self._statistics: dict[str, dict] = {}
        self._returns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def results(self, info: RunInfo) -> RunResults:
        """The run's artefacts, or BacktestError saying why there are none."""
        if info.status != COMPLETED:
            reason = f": {info.error}" if info.error else "."
            raise BacktestError(f"Run {info.run_id} is {info.status}; it has no results{reason}")
        folder = Path(info.run_folder)
        key = (info.run_id, _version(folder))
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return replace(cached, info=info)
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # two sessions opening the same run load it once
            with self._lock:
                cached = self._cache.get(key)
            if cached is None:
                cached = _load(info, folder)
                with self._lock:
                    self._cache[key] = cached
                    while len(self._cache) > self._capacity:
                        self._cache.popitem(last=False)
                    self._loading.pop(key, None)
        return replace(cached, info=info)

    def daily_returns(self, info: RunInfo) -> tuple[np.ndarray, np.ndarray]:
        """A completed run's daily returns as (UTC days in epoch nanoseconds, returns); cached.

        Read from ``daily_returns.parquet``; a run made before the worker wrote it has them
        computed from its equity, as its statistics were. Raises BacktestError when neither
        can be read.
        """
        cached = self._returns.get(info.run_id)
        if cached is not None:
            return cached
        results = Path(info.run_folder) / RESULTS
        try:
            try:
                table = pq.read_table(results / DAILY_RETURNS, columns=[DAY_COLUMN, RETURN_COLUMN])
                days = table.column(DAY_COLUMN).cast(pa.timestamp("ns", "UTC")).to_numpy()
                values = table.column(RETURN_COLUMN).to_numpy()
            except FileNotFoundError:
                equity = pd.read_parquet(results / "equity.parquet", columns=["equity"])["equity"]
                returns = daily_returns(equity, self.statistics(info).get("starting_balance"))
                days, values = returns.index.as_unit("ns").asi8, returns.to_numpy(float)
        except (OSError, ValueError, KeyError, pa.ArrowException) as e:
            raise BacktestError(f"The daily returns of run {info.run_id} cannot be read from "
                                f"{results} ({e}). Run the backtest again.") from e
        cached = (np.asarray(days).view("int64"), np.asarray(values, dtype=float))
        with self._lock:
            self._returns[info.run_id] = cached
            while len(self._returns) > CACHED_RETURNS:
                self._returns.pop(next(iter(self._returns)))
        return cached

    def equity(self, info: RunInfo) -> pd.Series:
        """A completed run's per-bar equity alone (not cached: the results cache holds runs
        opened whole)."""
        path = Path(info.run_folder) / RESULTS / "equity.parquet"
        try:
            return pd.read_parquet(path, columns=["equity"])["equity"]
        except (OSError, ValueError, KeyError, pa.ArrowException) as e:
            raise BacktestError(f"The equity of run {info.run_id} cannot be read from {path} "
                                f"({e}). Run the backtest again.") from e

    def statistics(self, info: RunInfo) -> dict:
        """Every metric of a completed run (statistics.json); cached, results never change."""
        cached = self._statistics.get(info.run_id)
        if cached is None:
            try:
                cached = json.loads((Path(info.run_folder) / RESULTS / "statistics.json")
                                    .read_text())
            except (OSError, ValueError):
                cached = {}
            self._statistics[info.run_id] = cached
        return cached


def _version(folder: Path) -> tuple:
    """What the run's files are now (names, sizes, modification times): results rewritten or
    damaged on disk are loaded again, never served stale from memory."""
    files = [folder / "spec.json", folder / "config.json"]
    try:
        files += sorted((folder / RESULTS).iterdir())
    except OSError:
        pass
    version = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        version.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(version)


def _load(info: RunInfo, folder: Path) -> RunResults:
    results = folder / RESULTS
    try:
        loaded = RunResults(
            info=info,
            spec=json.loads((folder / "spec.json").read_text()),
            summary=_summary(folder),
            statistics=json.loads((results / "statistics.json").read_text()),
            equity=pd.read_parquet(results / "equity.parquet"),
            fills=pd.read_parquet(results / "fills.parquet"),
            positions=pd.read_parquet(results / "positions.parquet"),
            orders=pd.read_parquet(results / "orders.parquet"),
            account=pd.read_parquet(results / "account.parquet"),
            config=json.loads((folder / "config.json").read_text()),
        )
        for name, frame in (("equity", loaded.equity), ("fills", loaded.fills),
                            ("positions", loaded.positions)):
            missing = _REQUIRED_COLUMNS[name] - set(frame.columns)
            if missing:
                raise ValueError(f"{name}.parquet lacks the columns {sorted(missing)}")
        if loaded.statistics.get("metrics_version") != METRICS_VERSION:
            loaded = _upgrade_metrics(loaded, results)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BacktestError(
            f"The results of run {info.run_id} in {folder} are missing or damaged ({e}). "
            "Run the backtest again."
        ) from e
    return loaded


def _summary(folder: Path) -> dict:
    summary = json.loads((folder / RESULTS / "summary.json").read_text())
    if "multiplier" not in summary:  # recorded before the summary kept it
        summary["multiplier"] = json.loads((folder / "run.json").read_text()).get("multiplier",
                                                                                  1.0)
    return summary


def _upgrade_metrics(loaded: RunResults, results: Path) -> RunResults:
    """Recompute the metrics of a run made by an older workbench and store them."""
    run_meta = json.loads((results.parent / "run.json").read_text())
    statistics = compute_statistics(
        loaded.equity, loaded.positions, float(loaded.fills["commission"].sum()),
        loaded.statistics["starting_balance"], fills=loaded.fills,
        multiplier=run_meta.get("multiplier", 1.0))
    summary = {**loaded.summary, "statistics": statistics}
    for name, data in (("statistics.json", statistics), ("summary.json", summary)):
        tmp = results / f".{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, results / name)
    return replace(loaded, statistics=statistics, summary=summary)

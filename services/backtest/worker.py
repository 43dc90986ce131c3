"""Backtest worker: ``python -m services.backtest.worker RUN_FOLDER``.

Runs one BacktestRunConfig with NautilusTrader's BacktestNode in its own process, then writes
the run's artefacts into ``RUN_FOLDER/results.partial`` and renames that folder to ``results``
only when everything is written: a reader either sees complete results or none. On failure it
writes ``error.json`` (the message a user sees) and exits non-zero; the traceback goes to stderr
(the run's ``worker.log``), never to the UI.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from services.backtest.layout import (
    DAILY_RETURNS,
    DAY_COLUMN,
    DISK_FULL_MESSAGE,
    ERROR_FILE,
    EXIT_DISK_FULL,
    PARTIAL,
    PROGRESS_FILE,
    RESULTS,
    RETURN_COLUMN,
)
from services.backtest.priority import lower_own_priority
from services.backtest.progress import write_progress


def _money_amount(value) -> float:
    """'12.5 USDT' or Money -> 12.5; lists of Money (commission lists) are summed."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return 0.0
    if isinstance(value, (list, tuple)):
        return sum(_money_amount(v) for v in value)
    text = str(value).strip().strip("[]")
    if not text:
        return 0.0
    return sum(float(part.split()[0]) for part in text.split(","))


def _utc(series: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series):
        return pd.to_datetime(series.astype("int64"), unit="ns", utc=True)
    return pd.to_datetime(series, utc=True)


def _fills_frame(report: pd.DataFrame) -> pd.DataFrame:
    if report.empty:
        return pd.DataFrame(columns=["ts", "client_order_id", "side", "quantity", "price",
                                     "commission", "liquidity_side", "order_type", "trade_id",
                                     "position_id"])
    report = report.reset_index()
    return pd.DataFrame({
        "ts": _utc(report["ts_event"]),
        "client_order_id": report["client_order_id"].astype(str),
        "side": report["order_side"].astype(str),
        "quantity": report["last_qty"].astype(float),
        "price": report["last_px"].astype(float),
        "commission": report["commission"].map(_money_amount),
        "liquidity_side": report["liquidity_side"].astype(str),
        "order_type": report["order_type"].astype(str),
        "trade_id": report["trade_id"].astype(str),
        "position_id": report["position_id"].astype(str),
    }).sort_values("ts", kind="stable").reset_index(drop=True)


def _positions_frame(report: pd.DataFrame) -> pd.DataFrame:
    columns = ["position_id", "entry", "opened", "closed", "quantity", "avg_px_open",
               "avg_px_close", "realized_pnl", "realized_return", "commissions", "duration"]
    if report.empty:
        return pd.DataFrame(columns=columns)
    report = report.reset_index()
    closed = report[report["ts_closed"].notna()]
    frame = pd.DataFrame({
        "position_id": closed["position_id"].astype(str),
        "entry": closed["entry"].astype(str),
        "opened": _utc(closed["ts_opened"]),
        "closed": _utc(closed["ts_closed"]),
        "quantity": closed["peak_qty"].astype(float),
        "avg_px_open": closed["avg_px_open"].astype(float),
        "avg_px_close": closed["avg_px_close"].astype(float),
        "realized_pnl": closed["realized_pnl"].map(_money_amount),
        "realized_return": closed["realized_return"].astype(float),
        "commissions": closed["commissions"].map(_money_amount),
    })
    frame["duration"] = frame["closed"] - frame["opened"]
    return frame.sort_values("closed", kind="stable").reset_index(drop=True)


def _orders_frame(report: pd.DataFrame) -> pd.DataFrame:
    if report.empty:
        return pd.DataFrame(columns=["client_order_id", "ts_init", "ts_last", "side", "type",
                                     "quantity", "filled_qty", "avg_px", "status",
                                     "time_in_force"])
    report = report.reset_index()
    return pd.DataFrame({
        "client_order_id": report["client_order_id"].astype(str),
        "ts_init": _utc(report["ts_init"]),
        "ts_last": _utc(report["ts_last"]),
        "side": report["side"].astype(str),
        "type": report["type"].astype(str),
        "quantity": report["quantity"].astype(float),
        "filled_qty": report["filled_qty"].astype(float),
        "avg_px": pd.to_numeric(report["avg_px"], errors="coerce"),
        "status": report["status"].astype(str),
        "time_in_force": report["time_in_force"].astype(str),
    })


def _account_frame(report: pd.DataFrame) -> pd.DataFrame:
    if report.empty:
        return pd.DataFrame(columns=["ts", "total", "locked", "free", "currency"])
    report = report.reset_index(names="ts")
    return pd.DataFrame({
        "ts": _utc(report["ts"]),
        "total": report["total"].astype(float),
        "locked": report["locked"].astype(float),
        "free": report["free"].astype(float),
        "currency": report["currency"].astype(str),
    })


def _order_warnings(engine) -> list[str]:
    """Denied and rejected orders, which otherwise leave a run silently without trades."""
    warnings = []
    for status, who in (("DENIED", "the risk engine"), ("REJECTED", "the simulated venue")):
        orders = [o for o in engine.cache.orders() if o.status_string() == status]
        if orders:
            reason = getattr(orders[0].last_event, "reason", "") or "no reason given"
            warnings.append(f"{len(orders):,} orders were {status.lower()} by {who}, "
                            f"e.g. {orders[0].client_order_id}: {reason}")
    return warnings


def run(folder: Path) -> dict:
    """Run the backtest described in ``folder`` and write its results; return the summary."""
    from services.backtest import nautilus_fixes

    fixes = nautilus_fixes.install()
    for warning in fixes.warnings:
        print(f"WARNING {warning}", file=sys.stderr, flush=True)  # stderr is the run's worker.log
    from nautilus_trader.backtest.config import BacktestRunConfig
    from nautilus_trader.backtest.node import BacktestNode

    from services.backtest.statistics import compute_statistics, daily_returns, mark_to_market
    from services.catalog import CatalogService

    meta = json.loads((folder / "run.json").read_text())
    config = BacktestRunConfig.parse((folder / "config.json").read_bytes())
    progress = folder / PROGRESS_FILE
    write_progress(progress, "loading data", 0.0)

    t0, cpu0 = time.perf_counter(), time.process_time()
    node = BacktestNode(configs=[config])
    results = node.run()
    engine = node.get_engine(config.id)
    if engine is None or not results:
        raise RuntimeError("NautilusTrader returned no result for the run")
    run_seconds, run_cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    write_progress(progress, "writing results", 1.0)

    venue = engine.list_venues()[0]
    trader = engine.trader
    fills = _fills_frame(trader.generate_fills_report())
    positions = _positions_frame(trader.generate_positions_report())
    orders = _orders_frame(trader.generate_orders_report())
    account = _account_frame(trader.generate_account_report(venue))
    account_obj = engine.portfolio.account(venue)
    final_balances = {str(c): float(m.as_decimal()) for c, m in account_obj.balances_total().items()}

    start, end = pd.Timestamp(meta["start"]), pd.Timestamp(meta["end"])
    catalog = CatalogService(meta["catalog"])
    closes = catalog.bars(meta["bar_type"], start, end, columns=["close"])["close"]
    equity = mark_to_market(closes, fills, meta["starting_balance"], meta["multiplier"])
    statistics = compute_statistics(equity, positions, float(fills["commission"].sum()),
                                    meta["starting_balance"], fills=fills,
                                    multiplier=meta["multiplier"])
    summary = {
        "run_id": meta["run_id"],
        "orders": int(len(orders)),
        "fills": int(len(fills)),
        "positions": int(len(positions)),
        "final_balances": final_balances,
        "currency": meta["currency"],
        "multiplier": meta["multiplier"],
        # How the instrument's prices and sizes are written, for tables and reports.
        "price_precision": meta.get("price_precision"),
        "size_precision": meta.get("size_precision"),
        "data_holes": meta.get("data_holes", []),
        "iterations": int(results[0].iterations),
        "engine_seconds": run_seconds,
        "engine_cpu_seconds": run_cpu_seconds,
        "warnings": [*fixes.warnings, *meta.get("warnings", []), *_order_warnings(engine)],
        "nautilus_fixes": list(fixes.installed),
        "statistics": statistics,
    }
    node.dispose()

    staging = folder / PARTIAL
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    fills.to_parquet(staging / "fills.parquet")
    positions.to_parquet(staging / "positions.parquet")
    orders.to_parquet(staging / "orders.parquet")
    account.to_parquet(staging / "account.parquet")
    equity.to_parquet(staging / "equity.parquet")
    # What a sweep's overfitting statistics read: a few hundred numbers instead of every bar.
    daily_returns(equity["equity"], meta["starting_balance"]).rename(RETURN_COLUMN) \
        .rename_axis(DAY_COLUMN).to_frame().to_parquet(staging / DAILY_RETURNS)
    (staging / "statistics.json").write_text(json.dumps(statistics, indent=2))
    (staging / "summary.json").write_text(json.dumps(summary, indent=2))
    os.replace(staging, folder / RESULTS)
    return summary


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0])
    lower_own_priority()  # already set when the local runtime started it
    try:
        run(folder)
    except BaseException as e:  # the worker's job is to report any failure, then exit
        # Half-written results go first: they may be what filled the disk.
        shutil.rmtree(folder / PARTIAL, ignore_errors=True)
        disk_full = isinstance(e, OSError) and e.errno == errno.ENOSPC
        message = DISK_FULL_MESSAGE if disk_full else (
            f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        try:
            traceback.print_exc()
            (folder / ERROR_FILE).write_text(json.dumps({"error": message}))
        except OSError:
            pass  # the exit code still tells the service what happened
        return EXIT_DISK_FULL if disk_full else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

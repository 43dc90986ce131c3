"""The overfitting statistics of a real sweep: the worker's daily returns, the CLI's JSON, the
same figures from the equity of runs made before the daily returns were written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from services.backtest.statistics import daily_returns
from services.research import probabilistic_sharpe, run_returns
from services.workbench import Workbench
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

TREND = "TRENDUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"


def test_sweep_json_has_the_trials_dsr_pbo_and_each_runs_psr(tmp_path, hourly_catalog_path):
    # Act: 6 combinations over 60 days of hourly bars, no scheduler: the CLI runs them.
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "backtest", "sweep", "--state-dir",
         str(tmp_path / "state"), "--catalog", str(hourly_catalog_path), "--strategy",
         "ema_cross", "--bar-type", TREND, "--start", "2024-01-01", "--end", "2024-03-01",
         "--grid", "fast_ema_period=3,6,12", "--grid", "slow_ema_period=36,72",
         "--param", "trade_size=5000", "--partitions", "8", "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)

    # Assert
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["trials"] == 6
    dsr, pbo = payload["deflated_sharpe"], payload["pbo"]
    assert dsr["trials"] == 6 and 0 <= dsr["value"] <= 1 and dsr["reading"].startswith("DSR ")
    assert pbo["partitions"] == 8 and pbo["splits"] == 70 and 0 <= pbo["value"] <= 1
    assert payload["min_track_record"]["reading"]
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(hourly_catalog_path))
    try:
        for run in payload["runs"]:
            # The PSR from the run's own equity, through the research layer's entry point.
            equity = pd.read_parquet(Path(wb.backtests.get(run["run_id"]).run_folder) / "results"
                                     / "equity.parquet")["equity"]
            returns, ppy = run_returns(equity, run["statistics"]["starting_balance"])
            assert run["psr"] == pytest.approx(probabilistic_sharpe(returns, ppy).value,
                                               rel=1e-9)
        assert dsr["best_run"] == max(payload["runs"],
                                      key=lambda r: r["statistics"]["sharpe"])["run_id"]
    finally:
        wb.close()


def test_runs_without_stored_daily_returns_give_the_same_statistics(tmp_path,
                                                                    hourly_catalog_path):
    # Arrange: a sweep run here; its workers wrote daily_returns.parquet.
    from services.backtest.sweep import SweepSpec

    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(hourly_catalog_path),
                        max_parallel=2, scheduler=True)
    try:
        sweep_id = wb.backtests.submit_sweep(SweepSpec(
            strategy="ema_cross", bar_type=TREND, start="2024-01-01", end="2024-03-01",
            grid={"fast_ema_period": ["3,6"], "slow_ema_period": ["36,72"]},
            fixed={"trade_size": "5000"}))
        info = wb.backtests.wait_sweep(sweep_id, timeout=600)
        assert info.status == "Completed"
        stored = wb.backtests.sweep_statistics(sweep_id, partitions=4)
    finally:
        wb.close()
    for run in info.runs:
        results = Path(run.run_folder) / "results"
        written = pd.read_parquet(results / "daily_returns.parquet")["return"]
        equity = pd.read_parquet(results / "equity.parquet")["equity"]
        balance = json.loads((results / "statistics.json").read_text())["starting_balance"]
        expected = daily_returns(equity, balance)
        pd.testing.assert_series_equal(written, expected, check_names=False, check_freq=False)
        (results / "daily_returns.parquet").unlink()  # as a run made before they were written

    # Act: a fresh process's workbench (no cached returns) reads them from the equity.
    again = Workbench.open(state_dir=tmp_path / "state", catalog=str(hourly_catalog_path))
    try:
        recomputed = again.backtests.sweep_statistics(sweep_id, partitions=4)
    finally:
        again.close()

    # Assert
    assert recomputed.deflated_sharpe == stored.deflated_sharpe
    assert recomputed.pbo.value == stored.pbo.value
    assert {r: p.value for r, p in recomputed.psr.items()} == {
        r: p.value for r, p in stored.psr.items()}

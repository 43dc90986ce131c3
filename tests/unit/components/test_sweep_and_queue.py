"""SweepView and RunQueue driven through their parameters over real services (no browser)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from components import RunQueue, SweepView
from tests.conftest import wait_for_status

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
RUN_TIMEOUT_S = 240


def _small_sweep(view: SweepView) -> None:
    view.strategy, view.bar_type = "ema_cross", BTC_BARS
    view.start, view.end = dt.date(2024, 3, 4), dt.date(2024, 3, 5)
    view._values.fast_ema_period = "5,10"
    view._values.slow_ema_period = "30"


def test_sweep_view_runs_a_sweep_ranks_it_and_draws_a_heatmap(workbench):
    # Arrange
    view = SweepView(workbench=workbench)
    _small_sweep(view)

    # Act
    view.param.trigger("submit")
    sweep_id = view.sweep_id
    info = workbench.backtests.wait_sweep(sweep_id, timeout=RUN_TIMEOUT_S)
    view.poll()

    # Assert: two completed runs; the best by the chosen metric is linked; a heatmap exists.
    assert sweep_id and "submitted: 2 runs" in view.message
    assert info.status == "Completed", [r.error for r in info.runs]
    board = workbench.backtests.leaderboard(sweep_id, "sharpe")
    assert view.best_run == board["run_id"].iloc[0]
    assert f"./results?run={view.best_run}" in view._best.object
    assert list(view._leaderboard.value["run_id"]) == list(board["run_id"])
    assert "total_return" in view.param.metric.objects
    view.metric = "total_return"
    best_by_return = workbench.backtests.leaderboard(sweep_id, "total_return")["run_id"].iloc[0]
    assert view.best_run == best_by_return
    assert view.x == "fast_ema_period" and view.y == "slow_ema_period"
    (metric_map,) = view._heatmap.object.children  # one parameter varies: no stability map
    cells = metric_map.select_one({"name": "cells"}).data_source.data
    assert sorted(cells["x"]) == ["10", "5"] and list(cells["y"]) == ["30", "30"]
    by_fast = dict(zip(cells["x"], cells["value"], strict=True))
    returns = {str(r.parameters["fast_ema_period"]): r.total_return for r in info.runs}
    assert by_fast == pytest.approx(returns, rel=1e-12)
    assert "No local stability" in view._stability.object
    assert view._queue.sweep_id == sweep_id and len(view._queue.runs) == 2


def test_sweep_view_shows_what_is_wrong_with_a_bad_sweep(workbench):
    view = SweepView(workbench=workbench)
    _small_sweep(view)
    view._values.fast_ema_period = "50..40"

    view.param.trigger("submit")

    assert "Fix these and run again" in view.message and "the range is empty" in view.message
    assert workbench.backtests.list_sweeps() == []


def test_sweep_view_says_when_the_docker_runtime_is_not_attached(workbench):
    view = SweepView(workbench=workbench)
    _small_sweep(view)
    view.runtime = "docker"

    view.param.trigger("submit")

    assert "docker runtime is not attached" in view.message
    assert workbench.backtests.list_runs() == []


def test_run_queue_pauses_resumes_and_cancels_the_selected_run(workbench):
    # Arrange: a long run in flight.
    from services.backtest import BacktestSpec

    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=BTC_BARS, start="2024-01-01", end="2024-12-31",
        parameters={"fast_ema_period": 50, "slow_ema_period": 200}))
    wait_for_status(workbench, run_id, "Running")
    queue = RunQueue(workbench=workbench)
    assert queue.selected == run_id
    assert queue.runs.iloc[0]["status"] == "Running"

    # Act / Assert
    queue.param.trigger("pause")
    assert workbench.backtests.get(run_id).status == "Paused"
    assert queue.runs.iloc[0]["status"] == "Paused"
    assert queue._buttons["pause"].disabled and not queue._buttons["resume"].disabled
    queue.param.trigger("resume")
    assert workbench.backtests.get(run_id).status == "Running"
    queue.param.trigger("resume")
    assert "only a Paused run can be resumed" in queue.message
    queue.param.trigger("cancel")
    assert workbench.backtests.get(run_id).status == "Cancelled"
    assert queue.runs.iloc[0]["status"] == "Cancelled"
    assert queue._buttons["cancel"].disabled


def test_run_queue_shows_progress_of_a_running_run(workbench):
    from services.backtest import BacktestSpec

    run_id = workbench.backtests.submit(BacktestSpec(
        strategy="ema_cross", bar_type=BTC_BARS, start="2024-01-01", end="2024-12-31",
        parameters={"fast_ema_period": 50, "slow_ema_period": 200}))
    queue = RunQueue(workbench=workbench)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        queue.param.trigger("refresh")
        row = queue.runs.iloc[0]
        if row["events"] and row["sim_time"] and row["progress"] > 0:
            break
        time.sleep(0.2)
    workbench.backtests.cancel(run_id)

    assert row["run_id"] == run_id and row["status"] == "Running"
    assert 0 < row["progress"] < 100
    assert row["sim_time"].startswith("2024-") and int(row["events"].replace(",", "")) > 0
    assert row["memory"] > 50 and row["parameters"].startswith("fast_ema_period=50")


def test_the_leaderboard_reads_each_metric_as_the_cards_do():
    # Arrange
    import pandas as pd

    from components.sweep_view import board_formats

    board = pd.DataFrame({"open": [""], "run_id": ["r1"], "status": ["Completed"],
                          "fast_ema_period": [10], "sharpe": [4.516725],
                          "total_return": [0.001035], "num_trades": [116],
                          "expectancy": [-4.59], "smoothed": [3.7], "psr": [0.93]})

    # Act
    titles, formatters = board_formats(board, "sharpe")

    # Assert: ratios, percentages, counts and money each get their format; parameters none.
    code = {name: f.js_code for name, f in formatters.items() if hasattr(f, "js_code")}
    assert "rd(Number(v))" in code["sharpe"] and "rd(Number(v))" in code["smoothed"]
    assert "*100" in code["total_return"] and "*100" in code["psr"]
    assert "fx(v,0)" in code["num_trades"] and "fx(v,2)" in code["expectancy"]
    assert "fast_ema_period" not in formatters
    assert (titles["sharpe"], titles["total_return"], titles["num_trades"],
            titles["smoothed"]) == ("Sharpe", "Total return", "Trades", "Smoothed Sharpe")

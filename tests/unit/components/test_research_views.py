"""The research views over real services (no browser): the ResultsViewer's Robustness tab, the
Sweeps page's statistics, stability and walk-forward mode, and a 10,000-run sweep paged on the
server."""

from __future__ import annotations

import time

import pytest

from components import ResultsViewer, SweepView
from components.results_viewer import ROBUSTNESS_TAB
from services.backtest.sweep import SweepSpec
from services.workbench import Workbench

BTC_BARS = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
RUN_TIMEOUT_S = 300


def test_the_robustness_tab_simulates_the_runs_trades_only_when_opened(runs_workbench,
                                                                       completed_run):
    # Arrange
    viewer = ResultsViewer(workbench=runs_workbench)
    viewer.run_id = completed_run
    results = runs_workbench.backtests.results(completed_run)
    assert viewer._robustness.results is None  # opening a run does not simulate it

    # Act
    viewer._tabs.active = ROBUSTNESS_TAB
    boot = viewer._robustness.figures
    viewer._robustness.method = "shuffle"
    shuffled = viewer._robustness.figures

    # Assert: 1,000 seeded paths; a shuffle keeps the trades, so every path ends on the run's
    # own return (one position at a time, flat at the end).
    assert boot.monte_carlo.paths == 1000 and boot.monte_carlo.trades == len(results.positions)
    total = results.statistics["total_return"]
    assert shuffled.monte_carlo.final_return.p5 == pytest.approx(total, rel=1e-6, abs=1e-12)
    assert shuffled.monte_carlo.final_return.p95 == pytest.approx(total, rel=1e-6, abs=1e-12)
    bands, histograms = viewer._robustness._charts.object.children
    assert "1,000 shuffled paths" in bands.title.text and len(histograms.children) == 3
    assert shuffled.monte_carlo.reading in viewer._robustness._text.object
    assert "PSR" in viewer._robustness._text.object


def test_a_run_with_too_few_trades_says_so_in_one_line(runs_workbench, short_spec):
    # Arrange: slow averages on a week of bars: a handful of trades.
    run_id = runs_workbench.backtests.submit(short_spec(
        parameters={"fast_ema_period": 200, "slow_ema_period": 800, "trade_size": "100"}))
    info = runs_workbench.backtests.wait(run_id, timeout=RUN_TIMEOUT_S)
    assert info.status == "Completed" and info.num_trades < 10
    viewer = ResultsViewer(workbench=runs_workbench)
    viewer.run_id = run_id

    # Act
    viewer._tabs.active = ROBUSTNESS_TAB

    # Assert
    figures = viewer._robustness.figures
    assert figures.monte_carlo is None and viewer._robustness._charts.object is None
    assert (f"Monte Carlo: The run has {info.num_trades} closed trades; a Monte Carlo of trades "
            "needs at least 10.") in figures.notes[0]


def _grid_sweep(view: SweepView, fast: str, slow: str) -> None:
    view.form.strategy, view.form.bar_type = "ema_cross", BTC_BARS
    view.form.start, view.form.end = "2024-03-04", "2024-03-05"
    view.form.values.fast_ema_period = fast
    view.form.values.slow_ema_period = slow


def test_the_sweep_shows_its_statistics_and_ranks_by_the_smoothed_metric(workbench):
    # Arrange: a 2 x 2 grid over 25 days (the statistics need 20 days or more).
    view = SweepView(workbench=workbench)
    _grid_sweep(view, "5,10", "30,60")
    view.form.start, view.form.end = "2024-03-01", "2024-03-25"
    view.param.trigger("submit")
    info = workbench.backtests.wait_sweep(view.sweep_id, timeout=RUN_TIMEOUT_S)
    assert info.status == "Completed"
    view.poll()

    # Act
    view.rank_by = "smoothed"
    view.partitions = 4  # 25 days are too few for 16 partitions of 2 days or more

    # Assert: the statistics of 4 trials, and the board in smoothed order.
    assert view.statistics.trials == 4 and view.statistics.pbo.splits == 6
    assert "**4 trials**" in view._statistics.object
    assert "Deflated Sharpe ratio" in view._statistics.object
    assert "Probability of backtest overfitting" in view._statistics.object
    board = view._leaderboard.value
    assert list(board["smoothed"]) == sorted(board["smoothed"], reverse=True)
    stability = workbench.backtests.stability(view.sweep_id, "sharpe")
    assert view.best_run == board["run_id"].iloc[0]
    assert board.set_index("run_id")["psr"].notna().all()
    assert stability.reading == view._stability.object
    assert len(view._heatmap.object.children) == 2  # the metric and its worst drop


def test_walk_forward_mode_runs_an_analysis_and_shows_its_folds(workbench):
    # Arrange: four days, train 2, test 1: two folds of two combinations.
    view = SweepView(workbench=workbench, mode="Walk-forward")
    _grid_sweep(view, "5,10", "30")
    view.form.start, view.form.end = "2024-03-04", "2024-03-07"
    view.train_days, view.test_days = 2, 1
    shown = view._walk_forwards
    # Before any analysis: this mode's section only, no empty folds table, nothing to stop.
    assert view._walk_forward_section.visible and not view._sweep_results.visible
    assert not shown._details.visible and "No walk-forward analyses yet" in shown._summary.object
    assert shown._buttons["stop"].disabled

    # Act
    view.param.trigger("submit")
    walk_forward_id = shown.walk_forward_id
    final = workbench.walk_forwards.wait(walk_forward_id, timeout=RUN_TIMEOUT_S)
    deadline = time.monotonic() + 30
    while shown.result is None or shown.result.info.status != "Completed":
        assert time.monotonic() < deadline, "the live state never showed the analysis done"
        time.sleep(0.1)  # the live state's feeder shows it within a second

    # Assert
    assert "submitted: 2 folds x 2 combinations" in view.message
    assert final.status == "Completed", [f.error for f in final.folds]
    assert shown.result.info.status == "Completed"
    folds = shown._folds.value
    assert list(folds["fold"]) == [1, 2]
    assert list(folds["test_start"]) == ["2024-03-06 00:00", "2024-03-07 00:00"]
    assert all(p.startswith("fast_ema_period=") for p in folds["parameters"])
    assert "efficiency" in shown._readings.object and shown._equity.object is not None
    assert shown._buttons["pause"].disabled and shown._buttons["resume"].disabled
    assert shown._details.visible
    assert "2 folds chosen by Sharpe," in shown._summary.object  # the metric's label
    view.mode = "Sweep"
    assert not view._walk_forward_section.visible and view._sweep_results.visible


def test_walk_forward_mode_refuses_folds_that_do_not_fit(workbench):
    view = SweepView(workbench=workbench, mode="Walk-forward")
    _grid_sweep(view, "5,10", "30")
    view.train_days, view.test_days = 10, 5

    view.param.trigger("submit")

    assert "The folds do not fit the range" in view.message
    assert workbench.walk_forwards.list() == [] and workbench.backtests.list_runs() == []


def test_a_10000_run_sweep_is_paged_on_the_server(tmp_path, sample_catalog_path):
    # Arrange: no scheduler, so the 10,000 runs stay queued.
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(sample_catalog_path))
    try:
        sweep_id = wb.backtests.submit_sweep(SweepSpec(
            strategy="ema_cross", bar_type=BTC_BARS, start="2024-03-04", end="2024-03-05",
            grid={"fast_ema_period": ["2..101"], "slow_ema_period": ["200..299"]}))

        # Act
        view = SweepView(workbench=wb)
        queue = view._queue
        deadline = time.monotonic() + 60
        while queue.total != 10_000:  # the live state's first snapshot of the sweep
            assert time.monotonic() < deadline, queue.total
            time.sleep(0.1)
        first = list(queue.runs["run_id"])
        queue.param.trigger("next_page")

        # Assert: one page in the table, the selector and the browser's data.
        assert view.sweep_id == sweep_id
        assert len(first) == 15 and len(queue.runs) == 15
        assert set(first).isdisjoint(queue.runs["run_id"])
        assert len(queue.param.selected.objects) == 15
        assert queue._pager.object == "Runs 16-30 of 10,000"
        assert len(view._leaderboard.value) == 10_000
        model = view._leaderboard.get_root()
        assert len(model.source.data["run_id"]) == 10
        assert "No run has completed" in view._statistics.object
    finally:
        wb.close()

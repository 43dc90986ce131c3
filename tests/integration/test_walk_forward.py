"""Walk-forward analyses on real NautilusTrader backtests through the queue: the folds' choices,
test runs, efficiency and stitched equity checked against the runs themselves; pause, resume
and stop across a scheduler restart; the CLI, also when it exits before the analysis is done;
bad input refused before anything is queued."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from datetime import timedelta

import numpy as np
import pytest

from services.backtest.scheduler import live_lease
from services.backtest.walk_forward import WalkForwardSpec
from services.errors import ValidationError
from services.workbench import Workbench
from tests.conftest import REPO_ROOT, close_workbench

pytestmark = pytest.mark.integration

TREND = "TRENDUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"
GAPPY = "GAPPYUSDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL"
BTC = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
GRID = {"fast_ema_period": ["3,6,12"], "slow_ema_period": ["36,72"]}
FIXED = {"trade_size": "5000"}  # about half the starting balance per trade at a price near 100
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def wf_workbench(tmp_path_factory, hourly_catalog_path, new_database_url):
    """A Workbench with two local workers over the hourly catalog."""
    wb = Workbench.open(state_dir=tmp_path_factory.mktemp("walk-forward"),
                        catalog=str(hourly_catalog_path), max_parallel=2, scheduler=True,
                        database_url=new_database_url())
    yield wb
    close_workbench(wb)


def _spec(**changes) -> WalkForwardSpec:
    values = dict(strategy="ema_cross", bar_type=TREND, grid=GRID, fixed=FIXED,
                  start="2024-01-01", end="2024-04-10", train_days=30, test_days=20)
    return WalkForwardSpec(**{**values, **changes})


def _annual(total_return: float, days: float) -> float:
    return (1 + total_return) ** (365.25 / days) - 1


def test_each_fold_tests_the_best_of_its_train_sweep_on_the_window_after_it(wf_workbench):
    # Arrange: 100 days, train 30, test 20 -> folds testing days 30-50, 50-70, 70-90.
    wb = wf_workbench

    # Act
    walk_forward_id = wb.walk_forwards.submit(_spec())
    info = wb.walk_forwards.wait(walk_forward_id, timeout=TIMEOUT_S)
    result = wb.walk_forwards.result(walk_forward_id)

    # Assert: every fold's choice is its train sweep's best Sharpe, read from the runs.
    assert info.status == "Completed", [f.error for f in info.folds]
    assert [f.test_start.isoformat() for f in info.folds] == [
        "2024-01-31T00:00:00+00:00", "2024-02-20T00:00:00+00:00", "2024-03-11T00:00:00+00:00"]
    balance, growth, in_annual, out_annual = None, 1.0, [], []
    for fold in info.folds:
        train = wb.backtests.list_runs(sweep_id=fold.sweep_id)
        assert len(train) == fold.trials == 6 and {r.status for r in train} == {"Completed"}
        # (The first train window starts a minute before the first bar, which closes at 01:00.)
        assert {r.end for r in train} == {fold.train_end}
        assert len({r.start for r in train}) == 1
        assert fold.train_start <= train[0].start < fold.train_start + timedelta(hours=1)
        sharpe = {r.run_id: wb.backtests.run_statistics(r)["sharpe"] for r in train}
        best = max(sharpe, key=sharpe.get)
        chosen = wb.backtests.get(best)
        assert fold.chosen_run_id == best and fold.in_sample == sharpe[best]
        assert fold.parameters == chosen.parameters
        test = wb.backtests.get(fold.test_run_id)
        assert test.status == "Completed" and test.parameters == chosen.parameters
        assert (test.start, test.end) == (fold.test_start, fold.test_end)
        test_stats = wb.backtests.run_statistics(test)
        assert fold.out_of_sample == test_stats["sharpe"]
        balance = test_stats["starting_balance"]
        growth *= 1 + test_stats["total_return"]
        in_annual.append(_annual(wb.backtests.run_statistics(chosen)["total_return"], 30))
        out_annual.append(_annual(test_stats["total_return"], 20))

    # The efficiency and the stitched curve follow from the runs' own figures.
    if np.mean(in_annual) > 0:
        assert result.efficiency.value == pytest.approx(np.mean(out_annual) / np.mean(in_annual),
                                                        rel=1e-9)
    else:
        assert result.efficiency.value is None
    assert result.equity.iloc[-1] == pytest.approx(balance * growth, rel=1e-9)
    assert result.equity.index.is_monotonic_increasing
    assert result.equity.index[0] >= info.folds[0].test_start
    assert result.equity.index[-1] == info.folds[-1].test_end
    assert result.out_of_sample.trials == 18 and result.out_of_sample.days >= 59
    assert result.out_of_sample.psr is not None
    assert result.stability.folds == 3 and len(result.stability.parameters) == 2
    for fold in result.folds:  # each train sweep's statistics, 6 trials each
        assert fold.statistics.trials == 6 and fold.statistics.deflated_sharpe.trials == 6
    queued_by = [e for e in wb.audit.entries(action_prefix="walk_forward.test")
                 if e.target == walk_forward_id]
    assert {e.actor for e in queued_by} == {"system:scheduler"} and len(queued_by) == 3


def test_stop_cancels_the_analysis_and_queues_no_later_test_run(wf_workbench):
    # Arrange
    wb = wf_workbench
    walk_forward_id = wb.walk_forwards.submit(_spec(end="2024-04-30"))
    deadline = time.monotonic() + 60
    while wb.walk_forwards.get(walk_forward_id).count("Running") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # Act
    wb.walk_forwards.stop(walk_forward_id)
    info = wb.walk_forwards.wait(walk_forward_id, timeout=120)
    runs_then = info.runs
    time.sleep(2.0)  # several scheduler passes

    # Assert
    after = wb.walk_forwards.get(walk_forward_id)
    assert info.status == after.status == "Stopped"
    assert after.runs == runs_then and after.count("Queued", "Running", "Paused") == 0
    assert after.count("Cancelled") > 0


def test_a_paused_analysis_stays_paused_across_a_scheduler_restart_and_resumes(
        tmp_path, sample_catalog_path):
    # Arrange: one worker, 1-minute bars (runs of several seconds), 2 folds x 2 combinations.
    spec = WalkForwardSpec(strategy="ema_cross", bar_type=BTC, start="2024-03-01",
                           end="2024-04-10", train_days=20, test_days=10,
                           grid={"fast_ema_period": ["10,20"], "slow_ema_period": ["200"]})
    first = Workbench.open(state_dir=tmp_path / "state", catalog=str(sample_catalog_path),
                           max_parallel=1, scheduler=True)
    walk_forward_id = first.walk_forwards.submit(spec)
    deadline = time.monotonic() + 120
    while not any(r.phase == "running" for r in first.backtests.list_runs()):
        assert time.monotonic() < deadline, "no run got going"
        time.sleep(0.1)

    # Act: pause, then the scheduler stops (its paused worker lives on) and another starts.
    paused = first.walk_forwards.pause(walk_forward_id)
    first.close()
    second = Workbench.open(state_dir=tmp_path / "state", catalog=str(sample_catalog_path),
                            max_parallel=1, scheduler=True)
    try:
        time.sleep(3.0)  # several passes of the new scheduler
        held = second.walk_forwards.get(walk_forward_id)
        resumed = second.walk_forwards.resume(walk_forward_id)
        final = second.walk_forwards.wait(walk_forward_id, timeout=TIMEOUT_S)
    finally:
        close_workbench(second)

    # Assert: nothing ran while paused, across the restart; then everything did.
    assert paused.status == "Paused" and paused.count("Running") == 0
    assert paused.count("Paused") == 1 and paused.count("Queued") == 3
    assert held.status == "Paused" and held.counts == paused.counts
    assert all(f.status == "Training" for f in held.folds)
    assert resumed.status == "Running"
    assert final.status == "Completed", [f.error for f in final.folds]
    assert all(f.status == "Done" for f in final.folds) and final.count("Completed") == 6


def _cli(state, catalog, *args: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "backtest", "walk-forward", "--state-dir", str(state),
         "--catalog", str(catalog), "--strategy", "ema_cross", "--bar-type", TREND,
         "--param", "trade_size=5000", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_cli_runs_its_walk_forward_without_a_scheduler_and_prints_json(
        tmp_path, hourly_catalog_path):
    # Act: a fresh installation: no scheduler runs, the CLI dispatches its own analysis.
    done = _cli(tmp_path / "state", hourly_catalog_path, "--start", "2024-01-01", "--end",
                "2024-03-01", "--train", "20", "--test", "10", "--grid", "fast_ema_period=3,6",
                "--grid", "slow_ema_period=36", "--json")

    # Assert
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["status"] == "Completed" and payload["walk_forward_id"].startswith("wf-")
    assert len(payload["folds"]) == 4  # test windows end on days 30, 40, 50, 60
    for fold in payload["folds"]:
        assert {"train_start", "train_end", "test_start", "test_end", "parameters", "in_sample",
                "out_of_sample"} <= set(fold)
        assert fold["parameters"]["fast_ema_period"] in (3, 6) and fold["trials"] == 2
    assert payload["folds"][1]["train_start"] == "2024-01-11T00:00:00+00:00"
    assert {"value", "reading"} <= set(payload["efficiency"])
    assert payload["oos_statistics"]["trials"] == 8
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(hourly_catalog_path))
    try:
        assert live_lease(wb.backtests.repository) is None  # handed back
    finally:
        wb.close()


def test_when_the_cli_exits_early_the_next_scheduler_runs_the_later_folds(
        tmp_path, hourly_catalog_path):
    # Arrange / Act: the CLI gives up after 2 s with one worker: most runs are still queued.
    early = _cli(tmp_path / "state", hourly_catalog_path, "--start", "2024-01-01", "--end",
                 "2024-03-01", "--train", "20", "--test", "10", "--grid",
                 "fast_ema_period=3,6", "--grid", "slow_ema_period=36", "--max-parallel", "1",
                 "--timeout", "2")
    wb = Workbench.open(state_dir=tmp_path / "state", catalog=str(hourly_catalog_path))
    walk_forward_id = wb.walk_forwards.list()[0].walk_forward_id
    left = wb.walk_forwards.get(walk_forward_id)
    wb.close()
    scheduler = Workbench.open(state_dir=tmp_path / "state", catalog=str(hourly_catalog_path),
                               max_parallel=2, scheduler=True)
    try:
        final = scheduler.walk_forwards.wait(walk_forward_id, timeout=TIMEOUT_S)
    finally:
        close_workbench(scheduler)

    # Assert
    assert early.returncode == 1 and "goes on" in early.stderr, early.stderr
    assert not left.is_final and left.count("Queued") > 0
    assert final.status == "Completed", [f.error for f in final.folds]
    assert all(f.test_run_id and f.status == "Done" for f in final.folds)


def test_bad_walk_forwards_are_refused_in_one_line_with_nothing_queued(wf_workbench,
                                                                         hourly_catalog_path,
                                                                         tmp_path):
    wb = wf_workbench
    before = (len(wb.walk_forwards.list()), len(wb.backtests.list_runs(limit=10_000)))
    cases = {
        "The folds do not fit the range": _spec(train_days=90, test_days=30),
        "holds no bars of GAPPY": _spec(bar_type=GAPPY, test_days=10),
        "step: 5 days is shorter than the test window": _spec(step_days=5),
        "unknown parameter of template 'ema_cross'": _spec(grid={"fast": ["1,2"]}),
        "is not a metric runs can be ranked by": _spec(metric="colour"),
    }
    for expected, spec in cases.items():
        with pytest.raises(ValidationError) as caught:
            wb.walk_forwards.submit(spec)
        assert expected in str(caught.value), (expected, str(caught.value))
    assert (len(wb.walk_forwards.list()), len(wb.backtests.list_runs(limit=10_000))) == before

    # The CLI says it in one line and exits 2.
    refused = _cli(tmp_path / "state", hourly_catalog_path, "--start", "2024-01-01", "--end",
                   "2024-01-20", "--train", "15", "--test", "10", "--grid",
                   "fast_ema_period=3,6")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "The folds do not fit the range" in refused.stderr


def test_folds_whose_train_runs_make_no_trades_say_so_and_queue_no_test_run(wf_workbench):
    # Arrange: a 1,000- and 2,000-bar slow EMA never forms on 30 days of hourly bars (720).
    spec = _spec(end="2024-03-01", grid={"fast_ema_period": ["3"],
                                         "slow_ema_period": ["1000,2000"]})

    # Act
    walk_forward_id = wf_workbench.walk_forwards.submit(spec)
    info = wf_workbench.walk_forwards.wait(walk_forward_id, timeout=TIMEOUT_S)

    # Assert
    assert info.status == "Finished with failures"
    assert info.runs == 2 and all(f.test_run_id is None for f in info.folds)
    (fold,) = info.folds
    assert fold.error == ("Fold 1: none of its 2 completed train runs has a sharpe (they made "
                          "no trades, or the metric is undefined for them): no parameters to "
                          "choose, so it has no test run.")


def test_a_one_point_grid_runs_and_says_no_overfitting_statistic_is_possible(wf_workbench):
    spec = _spec(end="2024-03-01", grid={"fast_ema_period": ["6"], "slow_ema_period": ["36"]})

    walk_forward_id = wf_workbench.walk_forwards.submit(spec)
    info = wf_workbench.walk_forwards.wait(walk_forward_id, timeout=TIMEOUT_S)
    result = wf_workbench.walk_forwards.result(walk_forward_id)

    assert info.status == "Completed"
    (fold,) = result.folds
    assert fold.statistics.deflated_sharpe is None and fold.statistics.pbo is None
    assert fold.statistics.notes[0].startswith("A sweep of 1 run has no overfitting statistic")
    assert math.isfinite(fold.out_of_sample_return)

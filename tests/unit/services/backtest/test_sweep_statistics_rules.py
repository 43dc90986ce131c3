"""Tests of services/backtest/sweep_statistics.py: the returns of a sweep's runs side by side, the
trials counted from the sweep, and a note for every figure that cannot be computed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from services.backtest.records import RunInfo
from services.backtest.sweep_statistics import returns_frame, sweep_statistics
from services.errors import ValidationError
from services.research import (
    ReturnsMatrix,
    deflated_sharpe,
    minimum_track_record,
    probabilistic_sharpe,
    probability_of_overfitting,
)

PPY = 365.0
BASE = RunInfo(
    run_id="r0", status="Completed", strategy="ema_cross", instrument_id="X.SIM",
    bar_type="X.SIM-1-HOUR-LAST-EXTERNAL", start=None, end=None, label="", parameters={},
    created_at=datetime(2024, 1, 1, tzinfo=UTC), started_at=None, finished_at=None,
    phase=None, progress=None, error=None, total_return=None, sharpe=None, max_drawdown=None,
    num_trades=None, final_equity=None, currency="USD", run_folder="/nowhere")


def _runs(*statuses: str) -> list[RunInfo]:
    return [replace(BASE, run_id=f"r{k}", status=s) for k, s in enumerate(statuses)]


def _days(start: str, count: int) -> np.ndarray:
    return pd.date_range(start, periods=count, freq="D", tz="UTC").as_unit("ns").asi8


def _returns(runs: list[RunInfo], days: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=days, freq="D", tz="UTC", name="day")
    return pd.DataFrame(rng.normal(0.001, 0.01, (days, len(runs))), index=index,
                        columns=[r.run_id for r in runs])


def test_returns_frame_aligns_runs_on_their_days():
    # Arrange: r0 has Jan 1-3, r1 has Jan 2-4.
    runs = _runs("Completed", "Completed")
    stored = {"r0": (_days("2024-01-01", 3), np.array([0.1, 0.2, 0.3])),
              "r1": (_days("2024-01-02", 3), np.array([1.0, 2.0, 3.0]))}

    # Act
    frame = returns_frame(runs, lambda run: stored[run.run_id])

    # Assert
    assert list(frame.index.strftime("%m-%d")) == ["01-01", "01-02", "01-03", "01-04"]
    assert str(frame.index.tz) == "UTC"
    np.testing.assert_array_equal(frame["r0"].to_numpy(), [0.1, 0.2, 0.3, np.nan])
    np.testing.assert_array_equal(frame["r1"].to_numpy(), [np.nan, 1.0, 2.0, 3.0])


def test_the_completed_runs_are_the_trials_and_the_others_are_noted():
    # Arrange: four completed runs, one failed, one cancelled; 200 days.
    runs = _runs("Completed", "Completed", "Failed", "Completed", "Cancelled", "Completed")
    completed = [r for r in runs if r.status == "Completed"]
    returns = _returns(completed, 200)

    # Act
    figures = sweep_statistics("sweep-1", runs, returns, PPY, partitions=8)

    # Assert: what the research statistics give on the same returns, with 4 trials.
    matrix = ReturnsMatrix.from_frame(returns, PPY)
    assert figures.trials == 4 and figures.runs == 6 and figures.partitions == 8
    assert figures.deflated_sharpe == deflated_sharpe(matrix, trials=4)
    reference = probability_of_overfitting(matrix, 8)
    assert figures.pbo.value == reference.value and figures.pbo.splits == reference.splits == 70
    best = figures.deflated_sharpe.best_run
    assert figures.best_run == best
    assert figures.min_track_record == minimum_track_record(returns[best], PPY)
    assert figures.psr["r3"].value == pytest.approx(
        probabilistic_sharpe(returns["r3"], PPY).value, rel=1e-12)
    assert figures.notes == ("2 of the 6 runs have not completed (queued, running, failed or "
                             "cancelled): they are not counted as trials.",)
    assert figures.to_dict()["trials"] == 4


def test_a_sweep_of_one_run_says_there_is_no_overfitting_statistic():
    runs = _runs("Completed")
    returns = _returns(runs, 60)

    figures = sweep_statistics("sweep-1", runs, returns, PPY)

    assert figures.deflated_sharpe is None and figures.pbo is None
    assert figures.notes[0].startswith("A sweep of 1 run has no overfitting statistic")
    assert figures.psr["r0"].value == pytest.approx(
        probabilistic_sharpe(returns["r0"], PPY).value, rel=1e-12)
    assert figures.best_run == "r0" and figures.min_track_record is not None


def test_too_few_days_for_the_partitions_is_a_note_and_the_rest_is_computed():
    runs = _runs("Completed", "Completed", "Completed")

    figures = sweep_statistics("sweep-1", runs, _returns(runs, 25), PPY, partitions=16)

    assert figures.pbo is None and figures.deflated_sharpe is not None
    assert figures.notes == ("PBO with 16 partitions needs at least 32 common days of returns; "
                             "the runs have 25. Use fewer partitions (an even number) or "
                             "backtest a longer date range.",)


def test_runs_without_trades_are_trials_without_a_sharpe_ratio():
    runs = _runs("Completed", "Completed", "Completed")
    returns = _returns(runs, 100)
    returns["r2"] = 0.0  # flat equity: no trades

    figures = sweep_statistics("sweep-1", runs, returns, PPY, partitions=4)

    assert figures.trials == 3 and figures.deflated_sharpe.trials == 3
    assert figures.deflated_sharpe.excluded == ("r2",) and "r2" not in figures.psr


def test_nothing_completed_yet_is_one_note():
    figures = sweep_statistics("sweep-1", _runs("Queued", "Running"), pd.DataFrame(), None)

    assert figures.trials == 0 and figures.psr == {}
    assert figures.notes[-1] == "No run has completed: there is nothing to assess yet."


def test_bad_partitions_are_refused():
    runs = _runs("Completed", "Completed")

    with pytest.raises(ValidationError, match="partitions must be an even number"):
        sweep_statistics("sweep-1", runs, _returns(runs, 60), PPY, partitions=7)

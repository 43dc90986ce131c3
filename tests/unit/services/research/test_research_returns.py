"""Tests of services/research/returns.py: a sweep's returns matrix and its refusals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from services.errors import ValidationError
from services.research import ReturnsMatrix, minimum_track_record, probabilistic_sharpe
from services.research.returns import MIN_OBSERVATIONS


def _frame(columns: dict, days: int = 60) -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=days, freq="D", tz="UTC")
    return pd.DataFrame(columns, index=index)


def test_runs_without_trades_are_left_out_and_named():
    # Arrange: two trading runs, one flat (no trades), one with no data at all, one whose
    # "returns" are text.
    rng = np.random.default_rng(1)
    frame = _frame({"a": rng.normal(0, 0.01, 60), "b": rng.normal(0, 0.01, 60),
                    "flat": np.zeros(60), "empty": np.full(60, np.nan), "text": ["x"] * 60})

    # Act
    matrix = ReturnsMatrix.from_frame(frame, 365.0)

    # Assert
    assert matrix.runs == ("a", "b")
    assert matrix.excluded == ("flat", "empty", "text")
    assert matrix.values.shape == (60, 2) and not matrix.values.flags.writeable
    assert matrix.excluded_note() == "; 3 of the 5 runs made no trades"


def test_days_a_kept_run_lacks_are_dropped_and_counted():
    # Arrange: run b has no return on three days.
    rng = np.random.default_rng(2)
    b = rng.normal(0, 0.01, 60)
    b[[0, 10, 59]] = np.nan
    frame = _frame({"a": rng.normal(0, 0.01, 60), "b": b})

    # Act
    matrix = ReturnsMatrix.from_frame(frame, 365.0)

    # Assert
    assert matrix.observations == 57 and matrix.dropped_days == 3
    assert list(matrix.index) == [t for k, t in enumerate(frame.index) if k not in (0, 10, 59)]
    assert np.array_equal(matrix.values[:, 1], np.delete(b, [0, 10, 59]))


def test_a_run_that_varies_only_on_days_the_others_lack_is_flat():
    # Arrange: c trades on its first day only, a day run b has no return for.
    rng = np.random.default_rng(3)
    b = rng.normal(0, 0.01, 60)
    b[0] = np.nan
    c = np.zeros(60)
    c[0] = 0.05
    frame = _frame({"a": rng.normal(0, 0.01, 60), "b": b, "c": c})

    # Act
    matrix = ReturnsMatrix.from_frame(frame, 365.0)

    # Assert
    assert matrix.runs == ("a", "b") and matrix.excluded == ("c",)


def test_moments_are_the_bias_corrected_sample_moments():
    # Arrange
    rng = np.random.default_rng(4)
    values = rng.standard_t(5, (80, 3)) * 0.01 + 0.001
    frame = _frame({k: values[:, k] for k in range(3)}, days=80)

    # Act
    matrix = ReturnsMatrix.from_frame(frame, 252.0)

    # Assert
    m = matrix.moments
    assert m.sharpe == pytest.approx(values.mean(axis=0) / values.std(axis=0, ddof=1), rel=1e-12)
    assert m.skew == pytest.approx(stats.skew(values, bias=False), rel=1e-10)
    assert m.excess_kurtosis == pytest.approx(stats.kurtosis(values, bias=False), rel=1e-10)
    assert matrix.annual_sharpe == pytest.approx(m.sharpe * math.sqrt(252), rel=1e-12)


def test_from_equity_uses_the_run_statistics_daily_returns():
    # Arrange: hourly equity of two runs over 30 days, from a starting balance of 1,000.
    index = pd.date_range("2024-03-01 00:00", periods=30 * 24, freq="1h", tz="UTC")
    rng = np.random.default_rng(5)
    equities = {name: pd.Series(1000 * np.exp(np.cumsum(rng.normal(0, 0.002, index.size))),
                                index=index) for name in ("a", "b")}
    # Each day's return: the day's last equity over the previous day's (the first over 1,000).
    closes = {name: e.to_numpy().reshape(30, 24)[:, -1] for name, e in equities.items()}
    by_hand = {name: c / np.r_[1000.0, c[:-1]] - 1 for name, c in closes.items()}

    # Act
    matrix = ReturnsMatrix.from_equity(equities, 1000.0)

    # Assert: 30 days in 30 calendar days: 365.25 days a year.
    assert matrix.values[:, 0] == pytest.approx(by_hand["a"], rel=1e-12)
    assert matrix.values[:, 1] == pytest.approx(by_hand["b"], rel=1e-12)
    assert matrix.periods_per_year == pytest.approx(365.25)


@pytest.mark.parametrize(("frame", "message"), [
    (_frame({"a": np.random.default_rng(0).normal(0, 0.01, 60)}),
     "A sweep of 1 run has no overfitting statistic"),
    (pd.DataFrame(), "No runs were given"),
    (_frame({"a": np.random.default_rng(0).normal(0, 0.01, 60), "b": np.zeros(60),
             "c": np.zeros(60)}),
     ("Only 1 of 3 runs made trades (2 have flat equity and no Sharpe ratio); the statistic "
     "needs at least 2")),
    (_frame({"a": np.random.default_rng(0).normal(0, 0.01, MIN_OBSERVATIONS - 1),
             "b": np.random.default_rng(1).normal(0, 0.01, MIN_OBSERVATIONS - 1)},
            days=MIN_OBSERVATIONS - 1),
     (f"The runs share {MIN_OBSERVATIONS - 1} days with returns; the statistic needs at least "
     f"{MIN_OBSERVATIONS}")),
])
def test_matrices_no_statistic_can_use_are_refused_in_one_line(frame, message):
    with pytest.raises(ValidationError) as raised:
        ReturnsMatrix.from_frame(frame, 365.0)
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("ppy", [0, -1.0, float("nan"), None, "365"])
def test_bad_periods_per_year_are_refused(ppy):
    rng = np.random.default_rng(0)
    frame = _frame({"a": rng.normal(0, 0.01, 60), "b": rng.normal(0, 0.01, 60)})
    with pytest.raises(ValidationError, match="periods_per_year must be a positive number"):
        ReturnsMatrix.from_frame(frame, ppy)
    with pytest.raises(ValidationError, match="periods_per_year must be a positive number"):
        probabilistic_sharpe(frame["a"], ppy)
    with pytest.raises(ValidationError, match="periods_per_year must be a positive number"):
        minimum_track_record(frame["a"], ppy)

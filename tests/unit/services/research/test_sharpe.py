"""Tests of services/research/sharpe.py: PSR, minimum track record length, DSR.

Expected values are worked out in the tests from the published formulas (with numpy and
scipy.stats, never with the code under test), or are the published numerical examples.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from services.backtest.statistics import compute_statistics
from services.errors import ValidationError
from services.research import (
    deflated_sharpe,
    expected_maximum_sharpe,
    minimum_track_record,
    probabilistic_sharpe,
    probabilistic_sharpes,
    run_returns,
)
from services.research.returns import MIN_OBSERVATIONS
from services.research.sharpe import psr_value

PPY = 365.0


def _psr_by_hand(returns: np.ndarray, benchmark_per_period: float = 0.0) -> float:
    """Bailey & López de Prado (2012), eq. 9, with scipy's bias-corrected moments."""
    sr = returns.mean() / returns.std(ddof=1)
    skew = stats.skew(returns, bias=False)
    kurtosis = stats.kurtosis(returns, fisher=False, bias=False)  # Pearson: 3 for normal
    z = (sr - benchmark_per_period) * math.sqrt(len(returns) - 1) \
        / math.sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr**2)
    return stats.norm.cdf(z)


@pytest.fixture
def skewed_returns() -> np.ndarray:
    """60 daily returns, mostly small gains with a few large losses (negative skew)."""
    rng = np.random.default_rng(11)
    gains = rng.normal(0.004, 0.003, 60)
    gains[[7, 23, 41, 55]] = [-0.012, -0.01, -0.015, -0.008]
    return gains


# -- the formula ----------------------------------------------------------------------------------
def test_psr_formula_matches_the_paper_on_given_moments():
    # Arrange: SR 0.1 per day over 252 days, skew -0.5, excess kurtosis 2 (Pearson 5).
    z = 0.1 * math.sqrt(251) / math.sqrt(1 + 0.5 * 0.1 + (5 - 1) / 4 * 0.1**2)

    # Act
    value = psr_value(0.1, 0.0, 252, -0.5, 2.0)

    # Assert
    assert value == pytest.approx(stats.norm.cdf(z), abs=1e-12)


def test_psr_of_normal_returns_is_lo_s_test():
    # Arrange: with skew 0 and Pearson kurtosis 3 the variance of the SR is (1 + SR^2 / 2) / (T-1).
    sr, benchmark, t = 0.08, 0.02, 500
    expected = stats.norm.cdf((sr - benchmark) / math.sqrt((1 + sr**2 / 2) / (t - 1)))

    # Act / Assert
    assert psr_value(sr, benchmark, t, 0.0, 0.0) == pytest.approx(expected, abs=1e-12)


def test_negative_skew_and_fat_tails_lower_the_psr_of_a_positive_sharpe():
    # Act
    normal = psr_value(0.1, 0.0, 252, 0.0, 0.0)
    skewed = psr_value(0.1, 0.0, 252, -2.0, 0.0)
    fat = psr_value(0.1, 0.0, 252, 0.0, 20.0)

    # Assert
    assert skewed < normal and fat < normal


# -- PSR of a run ---------------------------------------------------------------------------------
def test_psr_of_returns_uses_sample_moments_and_annualises_the_sharpe(skewed_returns):
    # Arrange
    expected = _psr_by_hand(skewed_returns)
    sharpe = skewed_returns.mean() / skewed_returns.std(ddof=1) * math.sqrt(PPY)

    # Act
    psr = probabilistic_sharpe(skewed_returns, PPY)

    # Assert
    assert psr.value == pytest.approx(expected, abs=1e-10)
    assert psr.sharpe == pytest.approx(sharpe, rel=1e-12)
    assert psr.skew == pytest.approx(stats.skew(skewed_returns, bias=False), rel=1e-10)
    assert psr.excess_kurtosis == pytest.approx(stats.kurtosis(skewed_returns, bias=False),
                                                rel=1e-10)
    assert psr.observations == 60 and psr.benchmark == 0.0
    assert psr.value >= 0.95
    assert psr.reading.startswith(f"PSR {psr.value * 100:.2f} %: the Sharpe ratio of "
                                  f"{sharpe:.2f} is above 0.00")


def test_psr_against_an_annualised_benchmark(skewed_returns):
    # Arrange: a benchmark of 2.0 a year is 2 / sqrt(365) a day.
    expected = _psr_by_hand(skewed_returns, 2.0 / math.sqrt(PPY))

    # Act
    psr = probabilistic_sharpe(skewed_returns, PPY, benchmark=2.0)

    # Assert
    assert psr.value == pytest.approx(expected, abs=1e-10)
    assert psr.value < probabilistic_sharpe(skewed_returns, PPY).value


def test_psr_of_a_weak_run_reads_not_distinguishable():
    # Arrange: a tiny edge buried in noise.
    returns = np.random.default_rng(3).normal(0.0002, 0.02, 120)

    # Act
    psr = probabilistic_sharpe(returns, PPY)

    # Assert
    assert psr.value == pytest.approx(_psr_by_hand(returns), abs=1e-10)
    assert psr.value < 0.95
    assert "not distinguishable from 0.00 at 95 % confidence" in psr.reading


def test_psr_uses_the_same_sharpe_as_the_run_statistics(utc):
    # Arrange: 40 days of hourly mark-to-market equity and no trades recorded as positions.
    index = pd.date_range("2024-01-01 00:00", periods=40 * 24, freq="1h", tz="UTC")
    rng = np.random.default_rng(5)
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0.0002, 0.003, index.size)))
    frame = pd.DataFrame({"close": equity, "position": 1.0, "equity": equity}, index=index)
    positions = pd.DataFrame(columns=["realized_pnl", "entry", "opened", "closed"])
    statistics = compute_statistics(frame, positions, 0.0, 10_000.0)

    # Act
    returns, ppy = run_returns(frame["equity"], 10_000.0)
    psr = probabilistic_sharpe(returns, ppy)

    # Assert
    assert psr.sharpe == pytest.approx(statistics["sharpe"], rel=1e-12)
    assert psr.skew == pytest.approx(statistics["skew"], rel=1e-9)
    assert psr.excess_kurtosis == pytest.approx(statistics["kurtosis"], rel=1e-9)
    assert psr.observations == 40


@pytest.mark.parametrize(("returns", "message"), [
    (np.full(MIN_OBSERVATIONS - 1, 0.01), (f"has {MIN_OBSERVATIONS - 1} daily returns; a Sharpe "
                                          f"statistic needs at least {MIN_OBSERVATIONS}")),
    (np.zeros(60), "do not vary (it made no trades)"),
    (np.r_[np.full(10, np.nan), np.ones(15) * 0.01], "has 15 daily returns"),
])
def test_psr_refuses_returns_without_a_sharpe_ratio(returns, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        probabilistic_sharpe(returns, PPY)


def test_psr_of_every_run_of_a_sweep(matrix_of, skewed_returns):
    # Arrange
    other = np.random.default_rng(8).normal(0.001, 0.01, 60)
    matrix = matrix_of(np.column_stack([skewed_returns, other, np.zeros(60)]),
                       names=["a", "b", "flat"])

    # Act
    psrs = probabilistic_sharpes(matrix)

    # Assert: the flat run has none; the others as computed by hand.
    assert set(psrs) == {"a", "b"}
    assert psrs["a"].value == pytest.approx(_psr_by_hand(skewed_returns), abs=1e-10)
    assert psrs["b"].value == pytest.approx(_psr_by_hand(other), abs=1e-10)


# -- minimum track record length -------------------------------------------------------------------
def test_minimum_track_record_is_where_the_psr_reaches_the_confidence(skewed_returns):
    # Arrange: eq. 11 of the 2012 paper, then the PSR of a track record that long.
    sr = skewed_returns.mean() / skewed_returns.std(ddof=1)
    skew = stats.skew(skewed_returns, bias=False)
    kurtosis = stats.kurtosis(skewed_returns, fisher=False, bias=False)
    spread = 1 - skew * sr + (kurtosis - 1) / 4 * sr**2
    expected = 1 + spread * (stats.norm.ppf(0.95) / sr) ** 2
    psr_at_expected = stats.norm.cdf(sr * math.sqrt(expected - 1) / math.sqrt(spread))

    # Act
    record = minimum_track_record(skewed_returns, PPY)

    # Assert
    assert record.days == pytest.approx(expected, rel=1e-10)
    assert psr_at_expected == pytest.approx(0.95, abs=1e-12)
    assert record.years == pytest.approx(expected / PPY, rel=1e-10)
    assert record.sufficient == (60 >= expected)
    assert f"needs {math.ceil(expected):,} days" in record.reading


def test_minimum_track_record_of_a_short_weak_run_is_too_short():
    # Arrange
    returns = np.random.default_rng(3).normal(0.003, 0.02, 120)

    # Act
    record = minimum_track_record(returns, PPY, confidence=0.9)

    # Assert
    assert record.days > 120 and not record.sufficient
    assert record.reading.endswith("the run has 120: too short.")


def test_minimum_track_record_of_a_sharpe_below_the_benchmark_is_none(skewed_returns):
    # Act
    record = minimum_track_record(skewed_returns, PPY, benchmark=100.0)

    # Assert
    assert record.days is None and record.years is None and not record.sufficient
    assert "is not above 100.00" in record.reading


def test_minimum_track_record_refuses_a_confidence_outside_zero_and_one(skewed_returns):
    with pytest.raises(ValidationError, match="confidence must be between 0 and 1"):
        minimum_track_record(skewed_returns, PPY, confidence=95)


# -- expected maximum and DSR ----------------------------------------------------------------------
def test_expected_maximum_sharpe_is_the_euler_mascheroni_approximation():
    # Arrange: eq. 7 of the DSR paper, and a direct simulation of the maximum of 100 N(0, 1).
    gamma = 0.5772156649015329
    formula = (1 - gamma) * stats.norm.ppf(1 - 1 / 100) \
        + gamma * stats.norm.ppf(1 - 1 / (100 * math.e))
    simulated = np.random.default_rng(0).standard_normal((20_000, 100)).max(axis=1).mean()

    # Act
    value = expected_maximum_sharpe(100)
    scaled = expected_maximum_sharpe(100, variance=0.25)

    # Assert: the approximation is within 2 % of the true expected maximum (2.5076).
    assert value == pytest.approx(formula, rel=1e-12)
    assert value == pytest.approx(simulated, rel=0.02)
    assert scaled == pytest.approx(0.5 * formula, rel=1e-12)
    with pytest.raises(ValidationError, match="at least 2 trials, not 1"):
        expected_maximum_sharpe(1)


def test_dsr_reproduces_the_numerical_example_of_the_paper():
    # Arrange: Bailey & López de Prado (2014), section "A numerical example": 100 trials whose
    # annualised Sharpe ratios have variance 1/2, the best 2.5 a year over 5 years of daily
    # returns (T = 1,250), skew -3 and kurtosis 10. The paper finds SR0 = 0.1132 (daily) and
    # DSR = 0.9004.
    days_per_year = 250

    # Act
    threshold = expected_maximum_sharpe(100, variance=0.5 / days_per_year)
    dsr = psr_value(2.5 / math.sqrt(days_per_year), threshold, 1250, -3.0, 10.0 - 3.0)

    # Assert
    assert threshold == pytest.approx(0.1132, abs=5e-5)
    assert dsr == pytest.approx(0.9004, abs=2e-4)


def test_dsr_of_a_sweep_deflates_the_best_run_by_the_trials(matrix_of):
    # Arrange: 8 runs of 250 days, one with a real edge.
    rng = np.random.default_rng(21)
    values = rng.normal(0.0, 0.01, (250, 8))
    values[:, 5] += 0.002
    sharpes = values.mean(axis=0) / values.std(axis=0, ddof=1)
    best = int(np.argmax(sharpes))
    gamma = np.euler_gamma
    emax = (1 - gamma) * stats.norm.ppf(1 - 1 / 8) + gamma * stats.norm.ppf(1 - 1 / (8 * math.e))
    threshold = math.sqrt(np.var(sharpes, ddof=1)) * emax
    expected = _psr_by_hand(values[:, best], threshold)

    # Act
    dsr = deflated_sharpe(matrix_of(values))

    # Assert
    assert best == 5 and dsr.best_run == "run-5"
    assert dsr.value == pytest.approx(expected, abs=1e-10)
    assert dsr.expected_maximum == pytest.approx(threshold * math.sqrt(PPY), rel=1e-10)
    assert dsr.sharpe == pytest.approx(sharpes[5] * math.sqrt(PPY), rel=1e-12)
    assert dsr.sharpe_variance == pytest.approx(np.var(sharpes, ddof=1) * PPY, rel=1e-10)
    assert dsr.trials == 8 and dsr.observations == 250 and dsr.excluded == ()
    assert dsr.value < probabilistic_sharpe(values[:, 5], PPY).value
    assert "the best of 8 random strategies (expected" in dsr.reading


def test_dsr_counts_runs_without_trades_as_trials_and_says_so(matrix_of):
    # Arrange: 5 runs, one with a flat equity (no trades).
    rng = np.random.default_rng(4)
    values = np.column_stack([rng.normal(0.0005, 0.01, (300, 4)), np.zeros(300)])
    sharpes = values[:, :4].mean(axis=0) / values[:, :4].std(axis=0, ddof=1)
    gamma = np.euler_gamma
    emax = (1 - gamma) * stats.norm.ppf(1 - 1 / 5) + gamma * stats.norm.ppf(1 - 1 / (5 * math.e))
    expected = _psr_by_hand(values[:, int(np.argmax(sharpes))],
                            math.sqrt(np.var(sharpes, ddof=1)) * emax)

    # Act
    dsr = deflated_sharpe(matrix_of(values, names=["a", "b", "c", "d", "idle"]))

    # Assert
    assert dsr.trials == 5 and dsr.excluded == ("idle",)
    assert dsr.value == pytest.approx(expected, abs=1e-10)
    assert "1 of the 5 runs made no trades" in dsr.reading
    assert dsr.to_dict()["excluded"] == ["idle"]


def test_dsr_with_a_recorded_trial_count_larger_than_the_matrix(matrix_of):
    # Arrange
    values = np.random.default_rng(6).normal(0.001, 0.01, (200, 4))

    # Act
    fewer = deflated_sharpe(matrix_of(values))
    more = deflated_sharpe(matrix_of(values), trials=400)

    # Assert: more trials, a higher bar to clear.
    assert more.trials == 400 and more.expected_maximum > fewer.expected_maximum
    assert more.value < fewer.value
    with pytest.raises(ValidationError, match=r"trials \(3\) cannot be fewer than the 4 runs"):
        deflated_sharpe(matrix_of(values), trials=3)

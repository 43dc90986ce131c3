"""Tests of the full run metrics in services/backtest/statistics.py.

Period returns, drawdown spells, the return distribution (VaR/CVaR, skew, kurtosis, Omega, tail
ratio), the buy-and-hold comparison, the trade metrics, and what ``compute_statistics`` merges.
Every series is tiny and made by hand; every expected value is worked out in the test from the
inputs, never copied from what the code prints.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from services.backtest.metric_labels import METRIC_GROUPS, format_statistic
from services.backtest.statistics import (
    _benchmark_metrics,
    _distribution_metrics,
    _trade_metrics,
    compute_statistics,
    daily_returns,
    drawdown_periods,
    longest_drawdown_days,
    mark_to_market,
    period_returns,
    periods_per_year,
)

START = 1000.0


@pytest.fixture
def series(utc):
    """``series(["2024-01-01", ...], [1000.0, ...])`` -> a float Series on a UTC index."""

    def make(times: list[str], values: list[float]) -> pd.Series:
        return pd.Series([float(v) for v in values],
                         index=pd.DatetimeIndex([utc(t) for t in times]))

    return make


@pytest.fixture
def days():
    """``days(3)`` -> ["2024-01-01", "2024-01-02", "2024-01-03"]: consecutive calendar days."""

    def make(n: int, first: str = "2024-01-01") -> list[str]:
        return [f"{t:%Y-%m-%d}" for t in pd.date_range(first, periods=n, freq="D")]

    return make


@pytest.fixture
def priced_frame(series):
    """The frame ``compute_statistics`` reads, with the instrument's closes given by hand.

    ``drawdown`` is measured as ``mark_to_market`` measures it: against the running peak, the
    starting balance being the first peak.
    """

    def make(times, equity, closes=None, position=None) -> pd.DataFrame:
        eq = series(times, equity)
        frame = pd.DataFrame({
            "close": [float(c) for c in closes] if closes is not None else [1.0] * len(times),
            "position": position if position is not None else [0.0] * len(times),
            "equity": eq,
        }, index=eq.index)
        frame["drawdown"] = eq / np.maximum(eq.cummax(), START) - 1.0
        return frame

    return make


@pytest.fixture
def fills(utc):
    """``fills(("2024-01-01", "BUY", 2, 100.0, 1.0), ...)`` -> the fills frame."""

    def make(*rows):
        return pd.DataFrame(
            [{"ts": utc(ts), "side": side, "quantity": qty, "price": price, "commission": fee}
             for ts, side, qty, price, fee in rows],
            columns=["ts", "side", "quantity", "price", "commission"],
        )

    return make


@pytest.fixture
def positions(utc):
    """``positions(("BUY", "2024-01-01 10:00", "2024-01-01 12:00", 25.0), ...)`` -> closed
    positions with the columns the worker writes for the trade metrics."""

    def make(*rows):
        return pd.DataFrame(
            [{"entry": entry, "opened": utc(opened), "closed": utc(closed), "realized_pnl": pnl}
             for entry, opened, closed, pnl in rows],
            columns=["entry", "opened", "closed", "realized_pnl"],
        )

    return make


def iso(text: str) -> str:
    """The ISO form the statistics use for a UTC time: ``2024-01-02T00:00:00+00:00``."""
    return pd.Timestamp(text, tz="UTC").isoformat()


def equity_from_returns(first_equity: float, returns: list[float]) -> list[float]:
    """Compound ``returns[1:]`` onto ``first_equity``: equity whose daily returns are given."""
    values = [first_equity]
    for r in returns[1:]:
        values.append(values[-1] * (1.0 + r))
    return values


def sample_stdev(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def sample_cov(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / (len(xs) - 1)


# -- period returns ------------------------------------------------------------------------


def test_monthly_returns_across_a_month_boundary_first_month_from_the_starting_balance(series):
    # Arrange: each month's last equity counts; the UTC month ends at midnight
    equity = series(
        ["2024-01-15", "2024-01-31 23:00",  # January closes at 1100
         "2024-02-01 00:00", "2024-02-29 12:00",  # February closes at 1045
         "2024-03-15"],  # March closes at 940.5
        [1050.0, 1100.0, 1000.0, 1045.0, 940.5],
    )

    # Act
    monthly = period_returns(equity, START, "ME")

    # Assert
    assert monthly.tolist() == pytest.approx([
        1100.0 / START - 1.0,  # +10 %: January from the starting balance, not from 1050
        1045.0 / 1100.0 - 1.0,  # -5 %
        940.5 / 1045.0 - 1.0,  # -10 %
    ])
    assert [f"{t:%Y-%m}" for t in monthly.index] == ["2024-01", "2024-02", "2024-03"]


def test_a_month_without_data_is_skipped_and_the_next_measured_from_the_last_close(series):
    # Arrange: nothing in February
    equity = series(["2024-01-31", "2024-03-31"], [1200.0, 900.0])

    # Act
    monthly = period_returns(equity, START, "ME")

    # Assert
    assert [f"{t:%Y-%m}" for t in monthly.index] == ["2024-01", "2024-03"]
    assert monthly.tolist() == pytest.approx([1200.0 / START - 1.0, 900.0 / 1200.0 - 1.0])


def test_yearly_returns_first_year_from_the_starting_balance(series):
    # Arrange: 2023 closes at 1250 (its last bar at 23:00 on 31 Dec), 2024 at 1125
    equity = series(["2023-12-30", "2023-12-31 23:00", "2024-01-01", "2024-06-30"],
                    [1200.0, 1250.0, 1000.0, 1125.0])

    # Act
    yearly = period_returns(equity, START, "YE")

    # Assert
    assert [f"{t:%Y}" for t in yearly.index] == ["2023", "2024"]
    assert yearly.tolist() == pytest.approx([1250.0 / START - 1.0,  # +25 %
                                             1125.0 / 1250.0 - 1.0])  # -10 %


def test_period_returns_of_an_empty_series_is_empty():
    # Arrange
    empty = pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC"))

    # Act
    monthly = period_returns(empty, START, "ME")

    # Assert
    assert monthly.empty


# -- drawdown periods ----------------------------------------------------------------------


@pytest.fixture
def three_spells(series, days):
    """Twelve daily equities with three spells under water.

    A: peak 1100 (2 Jan), trough 990 (3 Jan), back at 1100 on 4 Jan: -10 %.
    B: peak 1200 (5 Jan), trough 900 (7 Jan), back at 1200 on 9 Jan: -25 %.
    C: peak 1260 (10 Jan), trough 1197 (11 Jan), still below on 12 Jan, the last bar: -5 %.
    """
    return series(days(12), [1000.0, 1100.0, 990.0, 1100.0, 1200.0, 1140.0, 900.0, 1000.0,
                             1200.0, 1260.0, 1197.0, 1230.0])


def test_drawdown_periods_are_sorted_deepest_first(three_spells):
    # Act
    periods = drawdown_periods(three_spells, START)

    # Assert
    assert periods == [
        {"peak": iso("2024-01-05"), "trough": iso("2024-01-07"), "recovery": iso("2024-01-09"),
         "depth": pytest.approx(900.0 / 1200.0 - 1.0),  # -25 %
         "days": 4.0,  # 5 Jan -> 9 Jan
         "recovery_days": 2.0},  # 7 Jan -> 9 Jan
        {"peak": iso("2024-01-02"), "trough": iso("2024-01-03"), "recovery": iso("2024-01-04"),
         "depth": pytest.approx(990.0 / 1100.0 - 1.0),  # -10 %
         "days": 2.0,  # 2 Jan -> 4 Jan
         "recovery_days": 1.0},  # 3 Jan -> 4 Jan
        {"peak": iso("2024-01-10"), "trough": iso("2024-01-11"), "recovery": None,
         "depth": pytest.approx(1197.0 / 1260.0 - 1.0),  # -5 %
         "days": 2.0,  # never recovered: 10 Jan to the last bar, 12 Jan
         "recovery_days": None},
    ]


def test_drawdown_periods_limit_keeps_the_deepest(three_spells):
    # Act
    periods = drawdown_periods(three_spells, START, limit=2)

    # Assert: B (-25 %) and A (-10 %); C (-5 %) is left out
    assert [p["peak"] for p in periods] == [iso("2024-01-05"), iso("2024-01-02")]


def test_a_loss_on_the_first_bar_is_a_drawdown_from_the_starting_balance(series, days):
    # Arrange: 990 on the first bar is already 1 % under the starting balance
    equity = series(days(4), [990.0, 980.0, 1000.0, 1010.0])

    # Act
    periods = drawdown_periods(equity, START)

    # Assert: the peak is the starting balance, before the first bar: its time is the first bar
    assert periods == [{
        "peak": iso("2024-01-01"), "trough": iso("2024-01-02"), "recovery": iso("2024-01-03"),
        "depth": pytest.approx(980.0 / START - 1.0),  # -2 %, not 980 / 990 - 1
        "days": 2.0, "recovery_days": 1.0,
    }]


def test_equity_back_at_its_peak_ends_the_spell(series, days):
    # Arrange: 1100 again on 3 Jan is a recovery, not still under water
    equity = series(days(4), [1100.0, 1000.0, 1100.0, 1050.0])

    # Act
    periods = drawdown_periods(equity, START)

    # Assert: two spells, 1 Jan -> 3 Jan and 3 Jan -> the end
    assert [(p["peak"], p["recovery"]) for p in periods] == [
        (iso("2024-01-01"), iso("2024-01-03")),  # 1000 / 1100 - 1 = -9.1 %
        (iso("2024-01-03"), None),  # 1050 / 1100 - 1 = -4.5 %
    ]


def test_no_drawdown_and_no_equity_give_no_periods(series, days):
    # Arrange
    rising = series(days(3), [START, 1010.0, 1020.0])
    empty = pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC"))

    # Act / Assert
    assert drawdown_periods(rising, START) == []
    assert drawdown_periods(empty, START) == []
    assert longest_drawdown_days(rising, START) == 0.0
    assert longest_drawdown_days(empty, START) == 0.0


def test_longest_drawdown_is_the_longest_recovered_spell(three_spells):
    # Act
    longest = longest_drawdown_days(three_spells, START)

    # Assert: B lasts 5 Jan -> 9 Jan = 4 days; A 2 days, C 2 days to the end
    assert longest == 4.0


def test_longest_drawdown_counts_an_unrecovered_spell_to_the_last_bar(series):
    # Arrange: a 6-hour recovered spell, then one from 12:00 on 1 Jan never recovered
    equity = series(["2024-01-01 00:00", "2024-01-01 03:00", "2024-01-01 06:00",
                     "2024-01-01 12:00", "2024-01-02 00:00", "2024-01-03 18:00"],
                    [1000.0, 990.0, 1000.0, 1050.0, 1040.0, 1045.0])

    # Act
    longest = longest_drawdown_days(equity, START)

    # Assert: 1 Jan 12:00 -> 3 Jan 18:00 = 2 days + 6 hours
    assert longest == pytest.approx(2.0 + 6.0 / 24.0)


def test_longest_drawdown_from_a_loss_on_the_first_bar(series, days):
    # Arrange: under water from the first bar to the end
    equity = series(days(3), [990.0, 995.0, 999.0])

    # Act
    longest = longest_drawdown_days(equity, START)

    # Assert: first bar (1 Jan) -> last bar (3 Jan)
    assert longest == 2.0


# -- the return distribution ---------------------------------------------------------------


@pytest.fixture
def twenty_returns():
    """Twenty daily returns, in percent, in no particular order."""
    percent = [1.0, -2.0, 0.5, 3.0, -1.0, 0.0, 2.0, -4.0, 1.5, -0.5,
               2.5, -1.5, 0.0, 1.0, -3.0, 4.0, 0.5, -2.5, 5.0, 1.0]
    return [p / 100 for p in percent]


def test_var_and_cvar_are_the_linearly_interpolated_5_percent_quantile_and_the_tail_mean(
        twenty_returns):
    # Arrange: sorted, in percent:
    #   -4.0 -3.0 -2.5 -2.0 -1.5 -1.0 -0.5 0.0 0.0 0.5 0.5 1.0 1.0 1.0 1.5 2.0 2.5 3.0 4.0 5.0
    # Linear interpolation: position (n - 1) * q = 19 * 0.05 = 0.95 between the 1st and the 2nd
    var = -0.04 + 0.95 * (-0.03 - -0.04)  # -3.05 %
    cvar = -0.04  # the only return at or below -3.05 %

    # Act
    metrics = _distribution_metrics(pd.Series(twenty_returns))

    # Assert
    assert metrics["var_95"] == pytest.approx(var)
    assert metrics["var_95"] == pytest.approx(-0.0305)
    assert metrics["cvar_95"] == pytest.approx(cvar)
    assert metrics["best_day"] == 0.05
    assert metrics["worst_day"] == -0.04


def test_cvar_averages_every_return_at_or_below_the_var():
    # Arrange: 21 returns -10 %, -9 %, ..., +10 %: position 20 * 0.05 = 1.0 is exactly the
    # second-worst value, so VaR is -9 % and the tail is {-10 %, -9 %}
    returns = pd.Series([k / 100 for k in range(-10, 11)])

    # Act
    metrics = _distribution_metrics(returns)

    # Assert
    assert metrics["var_95"] == pytest.approx(-0.09)
    assert metrics["cvar_95"] == pytest.approx((-0.10 - 0.09) / 2)


def test_omega_is_gains_over_losses_around_zero(twenty_returns):
    # Arrange
    gains = (1.0 + 0.5 + 3.0 + 2.0 + 1.5 + 2.5 + 1.0 + 4.0 + 0.5 + 5.0 + 1.0) / 100  # 22 %
    losses = (2.0 + 1.0 + 4.0 + 0.5 + 1.5 + 3.0 + 2.5) / 100  # 14.5 %

    # Act
    metrics = _distribution_metrics(pd.Series(twenty_returns))

    # Assert
    assert metrics["omega"] == pytest.approx(gains / losses)
    assert metrics["omega"] == pytest.approx(22.0 / 14.5)


def test_tail_ratio_is_the_95th_over_the_5th_percentile(twenty_returns):
    # Arrange: position 19 * 0.95 = 18.05, between the 19th (4 %) and 20th (5 %) sorted values
    q95 = 0.04 + 0.05 * (0.05 - 0.04)  # 4.05 %
    q05 = -0.04 + 0.95 * (-0.03 - -0.04)  # -3.05 %

    # Act
    metrics = _distribution_metrics(pd.Series(twenty_returns))

    # Assert
    assert metrics["tail_ratio"] == pytest.approx(abs(q95) / abs(q05))
    assert metrics["tail_ratio"] == pytest.approx(4.05 / 3.05)


def test_skew_and_excess_kurtosis_are_the_bias_corrected_sample_estimates(twenty_returns):
    # Arrange: by hand from the central moments (biased, over n), then the usual corrections
    # G1 = sqrt(n (n - 1)) / (n - 2) * m3 / m2^1.5
    # G2 = (n - 1) / ((n - 2)(n - 3)) * ((n + 1) * (m4 / m2^2 - 3) + 6)
    r = twenty_returns
    n = len(r)
    mean = sum(r) / n
    m2 = sum((x - mean) ** 2 for x in r) / n
    m3 = sum((x - mean) ** 3 for x in r) / n
    m4 = sum((x - mean) ** 4 for x in r) / n
    skew = math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2 ** 1.5
    kurtosis = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * (m4 / m2 ** 2 - 3) + 6)

    # Act
    metrics = _distribution_metrics(pd.Series(r))

    # Assert
    assert metrics["skew"] == pytest.approx(skew)
    assert metrics["kurtosis"] == pytest.approx(kurtosis)


def test_skew_of_three_returns_and_kurtosis_of_four():
    # Arrange
    # 0, 0, 3 %: mean 1 %, deviations -1, -1, +2 (%); m2 = 6/3 = 2, m3 = 6/3 = 2 (in %^2, %^3)
    # g1 = 2 / 2^1.5 = 1/sqrt(2); G1 = sqrt(3 * 2) / 1 * 1/sqrt(2) = sqrt(3)
    three = pd.Series([0.0, 0.0, 0.03])
    # 0, 0, 0, 4 %: mean 1 %, deviations -1, -1, -1, +3; m2 = 12/4 = 3, m3 = 24/4 = 6,
    # m4 = 84/4 = 21; g1 = 6 / 3^1.5 = 2/sqrt(3), G1 = sqrt(12) / 2 * 2/sqrt(3) = 2;
    # g2 = 21 / 9 - 3 = -2/3, G2 = 3 / (2 * 1) * (5 * -2/3 + 6) = 3/2 * 8/3 = 4
    four = pd.Series([0.0, 0.0, 0.0, 0.04])

    # Act
    with_three = _distribution_metrics(three)
    with_four = _distribution_metrics(four)

    # Assert
    assert with_three["skew"] == pytest.approx(math.sqrt(3))
    assert with_three["kurtosis"] is None  # needs 4 observations
    assert with_four["skew"] == pytest.approx(2.0)
    assert with_four["kurtosis"] == pytest.approx(4.0)


def test_skew_needs_three_returns():
    # Act
    metrics = _distribution_metrics(pd.Series([0.01, -0.02]))

    # Assert
    assert metrics["skew"] is None
    assert metrics["kurtosis"] is None


@pytest.mark.parametrize("value", [0.0, 0.01, -0.02])
def test_skew_and_kurtosis_of_constant_returns_are_undefined(value):
    # Act
    metrics = _distribution_metrics(pd.Series([value] * 6))

    # Assert
    assert metrics["skew"] is None
    assert metrics["kurtosis"] is None


def test_steady_compounding_has_no_skew_or_kurtosis(series, days):
    # Arrange: equity grows exactly 1 % a day, the first day too (from 1000 / 1.01)
    equity = series(days(6), [START * 1.01 ** k for k in range(6)])
    returns = daily_returns(equity, START / 1.01)

    # Act
    metrics = _distribution_metrics(returns)

    # Assert
    assert returns.tolist() == pytest.approx([0.01] * 6)
    assert metrics["skew"] is None
    assert metrics["kurtosis"] is None


def test_omega_and_tail_ratio_are_undefined_without_losses():
    # Arrange: no losing day, and the 5th percentile is 0
    returns = pd.Series([0.0, 0.0, 0.01, 0.02])

    # Act
    metrics = _distribution_metrics(returns)

    # Assert
    assert metrics["omega"] is None
    assert metrics["tail_ratio"] is None
    assert metrics["var_95"] == 0.0
    assert metrics["cvar_95"] == 0.0


def test_no_returns_leave_every_distribution_metric_undefined():
    # Act
    metrics = _distribution_metrics(pd.Series([], dtype=float))

    # Assert
    assert set(metrics) == {"var_95", "cvar_95", "skew", "kurtosis", "omega", "tail_ratio",
                            "best_day", "worst_day"}
    assert all(v is None for v in metrics.values())


# -- against buy-and-hold ------------------------------------------------------------------


def test_strategy_at_twice_the_benchmark_returns_has_beta_2_correlation_1_alpha_0(
        priced_frame, days):
    # Arrange: the instrument's daily returns (the first day from the first close: 0)
    bench = [0.0, 0.10, -0.05, 0.10, 0.05]
    closes = equity_from_returns(100.0, bench)  # 100, 110, 104.5, 114.95, 120.6975
    strat = [2 * b for b in bench]
    equity = equity_from_returns(START, strat)  # 1000, 1200, 1080, 1296, 1425.6
    frame = priced_frame(days(5), equity, closes)
    returns = daily_returns(frame["equity"], START)
    ppy = 365.25  # data on every one of the 5 calendar days
    # Active return = 2b - b = b
    information_ratio = (sum(bench) / 5) / sample_stdev(bench) * math.sqrt(ppy)

    # Act
    metrics = _benchmark_metrics(frame, returns, ppy)

    # Assert
    assert returns.tolist() == pytest.approx(strat)
    assert metrics["benchmark_return"] == pytest.approx(closes[-1] / closes[0] - 1.0)
    assert metrics["benchmark_return"] == pytest.approx(1.1 * 0.95 * 1.1 * 1.05 - 1.0)
    assert metrics["beta"] == pytest.approx(2.0)
    assert metrics["correlation"] == pytest.approx(1.0)
    assert metrics["alpha"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["information_ratio"] == pytest.approx(information_ratio)


def test_a_constant_daily_edge_over_twice_the_benchmark_is_annualised_alpha(priced_frame,
                                                                              days):
    # Arrange: strategy = 2 x benchmark + 0.1 % every day (the first day too)
    bench = [0.0, 0.10, -0.05, 0.10, 0.05]
    strat = [2 * b + 0.001 for b in bench]
    frame = priced_frame(days(5), equity_from_returns(START * 1.001, strat),
                         equity_from_returns(100.0, bench))
    returns = daily_returns(frame["equity"], START)
    ppy = 365.25

    # Act
    metrics = _benchmark_metrics(frame, returns, ppy)

    # Assert: mean(s) - 2 mean(b) = 0.001 a day
    assert metrics["beta"] == pytest.approx(2.0)
    assert metrics["correlation"] == pytest.approx(1.0)
    assert metrics["alpha"] == pytest.approx(0.001 * 365.25)


def test_uncorrelated_strategy_has_beta_and_correlation_0(priced_frame, days):
    # Arrange: benchmark mean 0; strategy deviations (0, +.1, +.1, -.1, -.1) against benchmark
    # (0, +.1, -.1, +.1, -.1): sum of products .01 - .01 - .01 + .01 = 0, so cov = 0
    bench = [0.0, 0.10, -0.10, 0.10, -0.10]
    strat = [0.02, 0.12, 0.12, -0.08, -0.08]  # mean 0.02
    frame = priced_frame(days(5), equity_from_returns(START * 1.02, strat),
                         equity_from_returns(100.0, bench))
    returns = daily_returns(frame["equity"], START)
    ppy = 365.25
    active = [s - b for s, b in zip(strat, bench, strict=True)]  # .02 .02 .22 -.18 .02
    information_ratio = (sum(active) / 5) / sample_stdev(active) * math.sqrt(ppy)

    # Act
    metrics = _benchmark_metrics(frame, returns, ppy)

    # Assert
    assert sample_cov(strat, bench) == pytest.approx(0.0, abs=1e-15)
    assert metrics["beta"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["correlation"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["alpha"] == pytest.approx(0.02 * ppy)  # beta 0: all of the mean is alpha
    # mean .02, deviations 0 0 .2 -.2 0: stdev sqrt(.08 / 4)
    assert metrics["information_ratio"] == pytest.approx(0.02 / math.sqrt(0.02) * math.sqrt(ppy))
    assert metrics["information_ratio"] == pytest.approx(information_ratio)


def test_benchmark_first_day_return_is_measured_from_the_first_close(priced_frame):
    # Arrange: two bars a day; day 1 closes go 100 -> 110, day 2 ends at 99
    times = ["2024-01-01 10:00", "2024-01-01 20:00", "2024-01-02 10:00", "2024-01-02 20:00"]
    closes = [100.0, 110.0, 105.0, 99.0]
    bench = [110.0 / 100.0 - 1.0, 99.0 / 110.0 - 1.0]  # +10 %, -10 %
    strat = [0.0, 0.05]  # the strategy: flat on day 1, +5 % on day 2
    frame = priced_frame(times, [START, START, 1020.0, START * 1.05], closes)
    returns = daily_returns(frame["equity"], START)
    ppy = 365.25  # data on both of the 2 calendar days
    beta = sample_cov(strat, bench) / sample_stdev(bench) ** 2

    # Act
    metrics = _benchmark_metrics(frame, returns, ppy)

    # Assert
    assert periods_per_year(frame["equity"]) == pytest.approx(ppy)
    assert returns.tolist() == pytest.approx(strat)
    assert metrics["benchmark_return"] == pytest.approx(99.0 / 100.0 - 1.0)
    assert metrics["beta"] == pytest.approx(beta)
    # means .025 and 0; cov = (-.025 * .1 + .025 * -.1) / 1 = -.005; var = (.01 + .01) / 1
    assert metrics["beta"] == pytest.approx(-0.005 / 0.02)
    assert metrics["alpha"] == pytest.approx((0.025 - beta * 0.0) * ppy)


def test_benchmark_metrics_undefined_for_a_flat_instrument_or_a_single_close(priced_frame,
                                                                              days):
    # Arrange
    flat = priced_frame(days(3), [START, 1010.0, 1020.0], [50.0, 50.0, 50.0])
    single = priced_frame(days(1), [1010.0], [50.0])

    # Act
    on_flat = _benchmark_metrics(flat, daily_returns(flat["equity"], START), 365.25)
    on_single = _benchmark_metrics(single, daily_returns(single["equity"], START), 365.25)

    # Assert
    assert on_flat == {"benchmark_return": 0.0, "alpha": None, "beta": None,
                       "correlation": None, "information_ratio": None}
    assert all(v is None for v in on_single.values())


# -- trade metrics -------------------------------------------------------------------------


@pytest.fixture
def eight_trades(positions):
    """W W L W W W L L, longs and shorts, held 1 to 8 hours."""
    return positions(
        ("BUY", "2024-01-01 00:00", "2024-01-01 01:00", 10.0),  # W, 1 h
        ("SELL", "2024-01-01 02:00", "2024-01-01 04:00", 20.0),  # W, 2 h
        ("BUY", "2024-01-01 05:00", "2024-01-01 08:00", -5.0),  # L, 3 h
        ("BUY", "2024-01-01 09:00", "2024-01-01 13:00", 15.0),  # W, 4 h
        ("SELL", "2024-01-01 14:00", "2024-01-01 19:00", 5.0),  # W, 5 h
        ("BUY", "2024-01-02 00:00", "2024-01-02 06:00", 30.0),  # W, 6 h
        ("SELL", "2024-01-02 07:00", "2024-01-02 14:00", -10.0),  # L, 7 h
        ("BUY", "2024-01-02 15:00", "2024-01-02 23:00", -20.0),  # L, 8 h
    )


def test_trade_counts_streaks_extremes_and_payoff(eight_trades, series, days):
    # Arrange
    average_win = (10.0 + 20.0 + 15.0 + 5.0 + 30.0) / 5  # 16
    average_loss = (-5.0 - 10.0 - 20.0) / 3  # -35/3

    # Act
    metrics = _trade_metrics(eight_trades, None, series(days(2), [START, START]))

    # Assert
    assert metrics["long_trades"] == 5
    assert metrics["short_trades"] == 3
    assert metrics["longest_winning_streak"] == 3  # trades 4-6
    assert metrics["longest_losing_streak"] == 2  # trades 7-8
    assert metrics["largest_win"] == 30.0
    assert metrics["largest_loss"] == -20.0
    assert metrics["payoff_ratio"] == pytest.approx(average_win / abs(average_loss))
    assert metrics["payoff_ratio"] == pytest.approx(48 / 35)
    assert metrics["average_holding_hours"] == pytest.approx(
        (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) / 8)  # 4.5
    assert metrics["turnover"] is None  # no fills given


def test_a_break_even_trade_ends_both_streaks(positions, series, days):
    # Arrange: W W 0 W and L 0 L
    trades = positions(*[("BUY", "2024-01-01 00:00", "2024-01-01 01:00", pnl)
                         for pnl in (5.0, 5.0, 0.0, 5.0, -1.0, 0.0, -1.0)])

    # Act
    metrics = _trade_metrics(trades, None, series(days(1), [START]))

    # Assert
    assert metrics["longest_winning_streak"] == 2
    assert metrics["longest_losing_streak"] == 1


def test_turnover_is_traded_notional_over_mean_equity(priced_frame, days, fills, positions):
    # Arrange: buy 2 at 100, sell 2 at 105
    frame = priced_frame(days(4), [START, 1010.0, 1020.0, 1010.0])
    trade = fills(("2024-01-01", "BUY", 2, 100.0, 0.0), ("2024-01-04", "SELL", 2, 105.0, 0.0))
    notional = 2 * 100.0 + 2 * 105.0  # 410
    mean_equity = (START + 1010.0 + 1020.0 + 1010.0) / 4  # 1010

    # Act
    stats = compute_statistics(frame, positions(("BUY", "2024-01-01", "2024-01-04", 10.0)),
                               0.0, START, fills=trade)

    # Assert
    assert stats["turnover"] == pytest.approx(notional / mean_equity)


def test_turnover_without_fills_is_zero_and_without_a_fills_frame_undefined(priced_frame,
                                                                             days, fills,
                                                                             trades):
    # Arrange
    frame = priced_frame(days(2), [START, START])

    # Act
    no_fills = compute_statistics(frame, trades(), 0.0, START, fills=fills())
    not_given = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert no_fills["turnover"] == 0.0
    assert not_given["turnover"] is None


def test_turnover_of_a_contract_counts_its_multiplier(utc, fills, positions):
    # Arrange: 1 contract of multiplier 10 bought at 100 and sold at 102
    closes = pd.Series([100.0, 102.0],
                       index=pd.DatetimeIndex([utc("2024-01-01"), utc("2024-01-02")]))
    trade = fills(("2024-01-01", "BUY", 1, 100.0, 0.0), ("2024-01-02", "SELL", 1, 102.0, 0.0))
    frame = mark_to_market(closes, trade, START, multiplier=10.0)  # equity 1000, 1020
    notional = 1 * 100.0 * 10 + 1 * 102.0 * 10  # 2020
    mean_equity = (START + 1020.0) / 2  # 1010

    # Act
    stats = compute_statistics(frame, positions(("BUY", "2024-01-01", "2024-01-02", 20.0)),
                               0.0, START, fills=trade, multiplier=10.0)

    # Assert
    assert stats["turnover"] == pytest.approx(notional / mean_equity)  # 2.0


def test_zero_trades(priced_frame, days, fills):
    # Arrange: the empty positions frame the worker writes
    frame = priced_frame(days(3), [START, 1010.0, 1005.0])
    none = pd.DataFrame(columns=["position_id", "entry", "opened", "closed", "quantity",
                                 "avg_px_open", "avg_px_close", "realized_pnl",
                                 "realized_return", "commissions", "duration"])

    # Act
    stats = compute_statistics(frame, none, 0.0, START, fills=fills())

    # Assert
    assert stats["num_trades"] == 0
    assert stats["long_trades"] == 0
    assert stats["short_trades"] == 0
    assert stats["longest_winning_streak"] == 0
    assert stats["longest_losing_streak"] == 0
    for key in ("payoff_ratio", "largest_win", "largest_loss", "average_holding_hours"):
        assert stats[key] is None, key
    assert stats["turnover"] == 0.0
    json.dumps(stats, allow_nan=False)


def test_only_losing_trades(priced_frame, days, positions):
    # Arrange
    frame = priced_frame(days(3), [START, 995.0, 980.0])
    losers = positions(("SELL", "2024-01-01", "2024-01-02", -5.0),
                       ("BUY", "2024-01-02", "2024-01-03", -15.0))

    # Act
    stats = compute_statistics(frame, losers, 0.0, START)

    # Assert
    assert stats["profit_factor"] == 0.0  # 0 gross profit / 20 gross loss
    assert stats["payoff_ratio"] is None  # no average win
    assert stats["largest_win"] is None
    assert stats["largest_loss"] == -15.0
    assert stats["longest_winning_streak"] == 0
    assert stats["longest_losing_streak"] == 2
    assert stats["long_trades"] == 1
    assert stats["short_trades"] == 1
    assert stats["average_holding_hours"] == pytest.approx(24.0)
    json.dumps(stats, allow_nan=False)


# -- compute_statistics: what it merges ----------------------------------------------------


def test_compute_statistics_merges_period_returns_and_drawdown_spells(priced_frame,
                                                                     three_spells, trades):
    # Arrange: the twelve January days of three_spells (all in one month and one year)
    frame = priced_frame([f"{t:%Y-%m-%d}" for t in three_spells.index], three_spells.tolist())

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert stats["monthly_returns"] == {"2024-01": pytest.approx(1230.0 / START - 1.0)}
    assert stats["yearly_returns"] == {"2024": pytest.approx(1230.0 / START - 1.0)}
    assert stats["best_month"] == stats["worst_month"] == pytest.approx(0.23)
    # The deepest spell is B: 1200 on 5 Jan, 900 on 7 Jan, back on 9 Jan
    assert stats["max_drawdown"] == pytest.approx(900.0 / 1200.0 - 1.0)
    assert stats["max_drawdown_trough"] == iso("2024-01-07")
    assert stats["max_drawdown_recovery"] == iso("2024-01-09")
    assert stats["max_drawdown_recovery_days"] == 2.0
    assert stats["longest_drawdown_days"] == 4.0
    assert [p["depth"] for p in stats["worst_drawdowns"]] == pytest.approx(
        [900.0 / 1200.0 - 1.0, 990.0 / 1100.0 - 1.0, 1197.0 / 1260.0 - 1.0])


def test_compute_statistics_best_and_worst_month(priced_frame, trades):
    # Arrange: January +10 %, February -5 %, March -10 % (see the period returns test)
    frame = priced_frame(["2024-01-31", "2024-02-29", "2024-03-15"], [1100.0, 1045.0, 940.5])

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert stats["monthly_returns"] == {
        "2024-01": pytest.approx(0.10), "2024-02": pytest.approx(-0.05),
        "2024-03": pytest.approx(-0.10)}
    assert stats["best_month"] == pytest.approx(1100.0 / START - 1.0)
    assert stats["worst_month"] == pytest.approx(940.5 / 1045.0 - 1.0)
    assert stats["yearly_returns"] == {"2024": pytest.approx(940.5 / START - 1.0)}


def test_compute_statistics_keeps_the_five_worst_drawdowns(priced_frame, days, trades):
    # Arrange: six dips of 1 % to 6 % below 1000, each recovered the next day
    equity = [START]
    for dip in (990.0, 980.0, 970.0, 960.0, 950.0, 940.0):
        equity += [dip, START]
    frame = priced_frame(days(len(equity)), equity)

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert [p["depth"] for p in stats["worst_drawdowns"]] == pytest.approx(
        [-0.06, -0.05, -0.04, -0.03, -0.02])
    assert stats["max_drawdown_recovery_days"] == 1.0


@pytest.mark.parametrize(("equity", "last_at_peak"), [
    # Under water on 1 Jan (990 < 1000), back at the starting balance on 2 Jan, deepest on 3 Jan
    ([990.0, 1000.0, 980.0, 985.0], "2024-01-02"),
    # At the peak of 1100 on 2 and 3 Jan, deepest on 4 Jan
    ([1000.0, 1100.0, 1100.0, 990.0], "2024-01-03"),
], ids=["back-at-starting-balance", "plateau-at-peak"])
def test_max_drawdown_peak_is_the_peak_of_the_deepest_spell(priced_frame, days, trades,
                                                            equity, last_at_peak):
    # Arrange
    frame = priced_frame(days(4), equity)

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert: the deepest spell starts at the last bar at the peak before it
    assert stats["worst_drawdowns"][0]["peak"] == iso(last_at_peak)
    assert stats["max_drawdown_peak"] == iso(last_at_peak)


# -- undefined values and JSON ---------------------------------------------------------------


def test_constant_equity_leaves_new_ratios_undefined_never_inf_or_nan(priced_frame, days,
                                                                      trades):
    # Arrange
    frame = priced_frame(days(5), [START] * 5, [100.0] * 5)

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START, fills=None)

    # Assert
    for key in ("skew", "kurtosis", "omega", "tail_ratio", "alpha", "beta", "correlation",
                "information_ratio", "max_drawdown_recovery", "max_drawdown_recovery_days",
                "payoff_ratio", "average_holding_hours", "turnover"):
        assert stats[key] is None, key
    assert stats["var_95"] == 0.0
    assert stats["cvar_95"] == 0.0
    assert stats["best_day"] == stats["worst_day"] == 0.0
    assert stats["benchmark_return"] == 0.0
    assert stats["worst_drawdowns"] == []
    assert stats["longest_drawdown_days"] == 0.0
    assert stats["monthly_returns"] == {"2024-01": 0.0}
    json.dumps(stats, allow_nan=False)  # raises on NaN/inf


def test_one_trade_run_is_json_serialisable(utc, fills, positions):
    # Arrange: buy 5 at 100 on 2 Jan, sell 5 at 104 on 4 Jan; 1.0 commission per fill
    closes = pd.Series([100.0, 100.0, 98.0, 104.0, 103.0],
                       index=pd.DatetimeIndex([utc(f"2024-01-0{d}") for d in range(1, 6)]))
    trade = fills(("2024-01-02", "BUY", 5, 100.0, 1.0), ("2024-01-04", "SELL", 5, 104.0, 1.0))
    frame = mark_to_market(closes, trade, START)
    pnl = 5 * (104.0 - 100.0) - 2 * 1.0  # 18
    one = positions(("BUY", "2024-01-02", "2024-01-04", pnl))
    # equity: 1000, 999, 989, 1018, 1018 -> one spell from the starting balance
    mean_equity = (1000.0 + 999.0 + 989.0 + 1018.0 + 1018.0) / 5

    # Act
    stats = compute_statistics(frame, one, 2.0, START, fills=trade)

    # Assert
    text = json.dumps(stats, allow_nan=False)
    assert json.loads(text) == stats
    assert stats["num_trades"] == 1
    assert stats["long_trades"] == 1
    assert stats["short_trades"] == 0
    assert stats["longest_winning_streak"] == 1
    assert stats["longest_losing_streak"] == 0
    assert stats["average_holding_hours"] == pytest.approx(48.0)
    assert stats["turnover"] == pytest.approx((5 * 100.0 + 5 * 104.0) / mean_equity)
    assert stats["worst_drawdowns"] == [{
        "peak": iso("2024-01-01"), "trough": iso("2024-01-03"), "recovery": iso("2024-01-04"),
        "depth": pytest.approx(989.0 / 1000.0 - 1.0), "days": 3.0, "recovery_days": 1.0}]
    assert stats["benchmark_return"] == pytest.approx(103.0 / 100.0 - 1.0)


def test_every_grouped_metric_is_in_the_statistics_of_a_run(priced_frame, days, positions,
                                                            fills):
    # Arrange
    frame = priced_frame(days(3), [START, 1010.0, 1005.0], [100.0, 101.0, 100.5])
    one = positions(("BUY", "2024-01-01", "2024-01-03", 5.0))
    trade = fills(("2024-01-01", "BUY", 1, 100.0, 0.0), ("2024-01-03", "SELL", 1, 100.5, 0.0))

    # Act
    stats = compute_statistics(frame, one, 0.0, START, fills=trade)

    # Assert
    grouped = {key for group in METRIC_GROUPS.values() for key in group}
    assert grouped - set(stats) == set()
    kinds = {kind for group in METRIC_GROUPS.values() for _, kind in group.values()}
    assert kinds <= {"pct", "ratio", "money", "int", "time"}


# -- format_statistic ----------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("max_drawdown_recovery", "2024-01-09T00:00:00+00:00", "2024-01-09 00:00"),
    ("max_drawdown_peak", "2024-03-05T14:30:00+00:00", "2024-03-05 14:30"),
    ("max_drawdown_trough", "2023-12-31T23:59:59+00:00", "2023-12-31 23:59"),
    ("var_95", -0.0305, "-3.05 %"),
    ("best_month", 0.1, "10.00 %"),
    ("alpha", 7.305, "730.50 %"),
    ("longest_winning_streak", 3, "3"),
    ("long_trades", 1234, "1,234"),
    ("largest_loss", -1234.5, "-1,234.50"),
    ("turnover", 0.40594, "0.406"),
    ("longest_drawdown_days", 4.0, "4.00"),
    ("sharpe", 12.3456, "12.3"),
    ("profit_factor", 1234.5, "1,234"),
])
def test_new_metric_formatting(key, value, expected):
    # Act
    text = format_statistic(key, value)

    # Assert
    assert text == expected


@pytest.mark.parametrize("key", ["max_drawdown_recovery", "var_95", "omega", "long_trades",
                                 "largest_win"])
@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), np.float64("-inf")])
def test_undefined_new_metrics_format_as_n_a(key, value):
    # Act
    text = format_statistic(key, value, "USD")

    # Assert
    assert text == "n/a"

"""Tests of services/backtest/statistics.py on tiny hand-made series.

Every expected value is worked out by hand in the test, from the inputs, never copied from
what the code prints.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from services.backtest.metric_labels import format_statistic
from services.backtest.statistics import (
    METRICS_VERSION,
    compute_statistics,
    daily_returns,
    mark_to_market,
    periods_per_year,
)

START = 1000.0


@pytest.fixture
def closes(utc):
    """Five daily bars, stamped at their close."""
    index = pd.DatetimeIndex([utc(f"2024-01-0{d}") for d in range(1, 6)])
    return pd.Series([100.0, 102.0, 99.0, 105.0, 104.0], index=index)


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


# -- mark_to_market ------------------------------------------------------------------------


def test_long_position_is_marked_at_every_bar_until_it_closes(closes, fills):
    # Arrange: buy 2 at the first close, sell 2 at the fourth; 1 commission per fill.
    # Fills are given out of order on purpose: the function must sort them.
    trade = fills(("2024-01-04", "SELL", 2, 105.0, 1.0),
                  ("2024-01-01", "BUY", 2, 100.0, 1.0))
    cash_while_long = START - 2 * 100.0 - 1.0  # 799
    cash_after_exit = cash_while_long + 2 * 105.0 - 1.0  # 1008

    # Act
    frame = mark_to_market(closes, trade, START)

    # Assert
    assert frame["position"].tolist() == [2.0, 2.0, 2.0, 0.0, 0.0]
    assert frame["equity"].tolist() == pytest.approx([
        cash_while_long + 2 * 100.0,  # 999: bought at the close, only the commission is lost
        cash_while_long + 2 * 102.0,  # 1003
        cash_while_long + 2 * 99.0,  # 997: the open position's loss shows before it closes
        cash_after_exit,  # 1008
        cash_after_exit,  # flat: the price move to 104 no longer matters
    ])
    assert frame["close"].tolist() == closes.tolist()
    # Drawdown from the running peak: 997 against the peak of 1003.
    assert frame["drawdown"].min() == pytest.approx(997.0 / 1003.0 - 1.0)
    assert frame["drawdown"].idxmin() == closes.index[2]


def test_fill_at_a_bar_time_counts_in_that_bar_and_a_later_fill_in_the_next(closes, fills):
    # Arrange
    at_bar = fills(("2024-01-02", "BUY", 1, 102.0, 0.0))
    after_bar = fills(("2024-01-02 00:00:01", "BUY", 1, 102.0, 0.0))

    # Act
    with_at_bar = mark_to_market(closes, at_bar, START)
    with_after_bar = mark_to_market(closes, after_bar, START)

    # Assert
    assert with_at_bar["position"].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert with_after_bar["position"].tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]
    # Third bar: 1000 - 102 cash + 1 * 99 held
    assert with_after_bar["equity"].iloc[2] == pytest.approx(START - 102.0 + 99.0)


def test_commissions_reduce_equity(closes, fills):
    # Arrange: the same round trip without and with 2.5 commission per fill
    free = fills(("2024-01-01", "BUY", 1, 100.0, 0.0), ("2024-01-03", "SELL", 1, 99.0, 0.0))
    charged = fills(("2024-01-01", "BUY", 1, 100.0, 2.5), ("2024-01-03", "SELL", 1, 99.0, 2.5))

    # Act
    without_fees = mark_to_market(closes, free, START)["equity"]
    with_fees = mark_to_market(closes, charged, START)["equity"]

    # Assert
    assert (without_fees - with_fees).tolist() == pytest.approx([2.5, 2.5, 5.0, 5.0, 5.0])
    assert with_fees.iloc[-1] == pytest.approx(START + (99.0 - 100.0) - 2 * 2.5)


def test_short_position_gains_when_the_price_falls_and_loses_when_it_rises(closes, fills):
    # Arrange: sell 3 at 102 (bar 2), buy back 3 at 105 (bar 4); 0.5 commission per fill
    trade = fills(("2024-01-02", "SELL", 3, 102.0, 0.5), ("2024-01-04", "BUY", 3, 105.0, 0.5))
    cash_while_short = START + 3 * 102.0 - 0.5  # 1305.5
    cash_after_exit = cash_while_short - 3 * 105.0 - 0.5  # 990

    # Act
    frame = mark_to_market(closes, trade, START)

    # Assert
    assert frame["position"].tolist() == [0.0, -3.0, -3.0, 0.0, 0.0]
    assert frame["equity"].tolist() == pytest.approx([
        START,
        cash_while_short - 3 * 102.0,  # 999.5
        cash_while_short - 3 * 99.0,  # 1008.5: price fell, the short is up
        cash_after_exit,  # 990: bought back higher
        cash_after_exit,
    ])


def test_contract_multiplier_scales_cash_and_marks(closes, fills):
    # Arrange: 1 contract of multiplier 10 bought at 100, never closed
    trade = fills(("2024-01-01", "BUY", 1, 100.0, 0.0))

    # Act
    frame = mark_to_market(closes, trade, START, multiplier=10.0)

    # Assert: equity = 1000 + 10 * (close - 100)
    assert frame["equity"].tolist() == pytest.approx(
        [START + 10 * (c - 100.0) for c in (100.0, 102.0, 99.0, 105.0, 104.0)])


def test_no_fills_leave_equity_at_the_starting_balance(closes, fills):
    # Act
    frame = mark_to_market(closes, fills(), START)

    # Assert
    assert frame["equity"].tolist() == [START] * 5
    assert frame["position"].tolist() == [0.0] * 5
    assert frame["drawdown"].tolist() == [0.0] * 5


def test_float_rounding_does_not_leave_a_phantom_position(closes, fills):
    # Arrange: 0.1 + 0.1 + 0.1 - 0.3 is 5.55e-17 in binary floating point, not 0
    trade = fills(("2024-01-01", "BUY", 0.1, 100.0, 0.0), ("2024-01-01", "BUY", 0.1, 100.0, 0.0),
                  ("2024-01-01", "BUY", 0.1, 100.0, 0.0), ("2024-01-02", "SELL", 0.3, 102.0, 0.0))

    # Act
    frame = mark_to_market(closes, trade, START)

    # Assert
    assert frame["position"].iloc[1:].tolist() == [0.0, 0.0, 0.0, 0.0]


# -- compute_statistics --------------------------------------------------------------------


@pytest.fixture
def weekday_run(equity_frame):
    """Thu, Fri, Mon, Tue: equity +10 %, -10 %, +10 %; 4 days with data over a 5-day span."""
    return equity_frame(
        ["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"],
        [1000.0, 1100.0, 990.0, 1089.0],
        position=[0.0, 1.0, 1.0, 0.0],
    )


def test_return_and_drawdown_statistics(weekday_run, trades):
    # Act
    stats = compute_statistics(weekday_run, trades(), commissions=3.0, starting_balance=START)

    # Assert
    assert stats["starting_balance"] == START
    assert stats["final_equity"] == 1089.0
    assert stats["bars"] == 4
    assert stats["start"] == "2024-01-04T00:00:00+00:00"
    assert stats["end"] == "2024-01-09T00:00:00+00:00"
    assert stats["total_return"] == pytest.approx(1089.0 / 1000.0 - 1.0)  # 8.9 %
    # Deepest fall: from 1100 (Fri) to 990 (Mon)
    assert stats["max_drawdown"] == pytest.approx(990.0 / 1100.0 - 1.0)  # -10 %
    assert stats["max_drawdown_amount"] == pytest.approx(990.0 - 1100.0)
    assert stats["max_drawdown_peak"] == "2024-01-05T00:00:00+00:00"
    assert stats["max_drawdown_trough"] == "2024-01-08T00:00:00+00:00"
    # Position held on 2 of the 4 bars
    assert stats["time_in_market"] == pytest.approx(2 / 4)
    assert stats["commissions"] == 3.0


def test_daily_return_volatility_sharpe_and_sortino_with_a_known_periods_per_year(weekday_run,
                                                                                 trades):
    # Arrange: by hand. Thu 4 Jan .. Tue 9 Jan is 6 calendar days, 4 of them with data.
    ppy = 365.25 * 4 / 6  # = 243.5 trading days a year
    # The first day's return is measured from the starting balance (1000 -> 1000: 0 %).
    returns = [1000 / START - 1, 1100 / 1000 - 1, 990 / 1100 - 1, 1089 / 990 - 1]
    n = len(returns)
    mean = sum(returns) / n  # (0 + 0.1 - 0.1 + 0.1) / 4
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / (n - 1))
    downside = math.sqrt((0.0 + 0.0 + (-0.1) ** 2 + 0.0) / n)  # only the losing day counts
    cagr = (1089 / 1000) ** (365.25 / 5) - 1  # first to last bar: 5 days = 5 / 365.25 years

    # Act
    stats = compute_statistics(weekday_run, trades(), commissions=0.0, starting_balance=START)

    # Assert
    assert returns == pytest.approx([0.0, 0.1, -0.1, 0.1])
    assert stats["periods_per_year"] == pytest.approx(ppy)
    assert stats["volatility"] == pytest.approx(stdev * math.sqrt(ppy))
    assert stats["sharpe"] == pytest.approx(mean / stdev * math.sqrt(ppy))
    assert stats["sortino"] == pytest.approx(mean / downside * math.sqrt(ppy))
    assert stats["cagr"] == pytest.approx(cagr)
    assert stats["calmar"] == pytest.approx(cagr / 0.1)


def test_cagr_over_two_years(equity_frame, trades):
    # Arrange: 2020-01-01 + 730.5 days (2020 is a leap year: 366 + 364.5) = exactly two
    # 365.25-day years; 1000 -> 1210 is +10 % a year compounded
    frame = equity_frame(["2020-01-01", "2021-01-01", "2021-12-31 12:00"],
                         [1000.0, 1100.0, 1210.0])

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert stats["cagr"] == pytest.approx(math.sqrt(1210 / 1000) - 1)  # 0.10
    assert stats["total_return"] == pytest.approx(0.21)
    assert stats["max_drawdown"] == 0.0
    assert stats["calmar"] is None  # no drawdown: undefined


def test_periods_per_year_of_a_24_7_run_is_365(equity_frame, trades):
    # Arrange: data on each of 3 calendar days -> 365.25 periods a year.
    # Daily returns from the starting balance: 0 %, +10 %, +5 %: no losing day, no Sortino.
    frame = equity_frame(["2024-03-01", "2024-03-02", "2024-03-03"], [1000.0, 1100.0, 1155.0])
    returns = [0.0, 0.10, 0.05]
    mean = sum(returns) / 3
    stdev = math.sqrt(sum((r - mean) ** 2 for r in returns) / (3 - 1))

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert stats["periods_per_year"] == pytest.approx(365.25)
    assert stats["sharpe"] == pytest.approx(mean / stdev * math.sqrt(365.25))
    assert stats["sortino"] is None


def test_trade_statistics(weekday_run, trades):
    # Arrange: two winners (30, 20) and two losers (-10, -20)
    positions = trades(30, -10, 20, -20)

    # Act
    stats = compute_statistics(weekday_run, positions, 0.0, START)

    # Assert
    assert stats["num_trades"] == 4
    assert stats["win_rate"] == pytest.approx(2 / 4)
    assert stats["profit_factor"] == pytest.approx((30 + 20) / (10 + 20))
    assert stats["expectancy"] == pytest.approx((30 - 10 + 20 - 20) / 4)
    assert stats["average_win"] == pytest.approx((30 + 20) / 2)
    assert stats["average_loss"] == pytest.approx((-10 - 20) / 2)


def test_zero_trades(weekday_run):
    # Arrange: what the worker hands over for a run without closed positions
    positions = pd.DataFrame(columns=["realized_pnl"])

    # Act
    stats = compute_statistics(weekday_run, positions, 0.0, START)

    # Assert
    assert stats["num_trades"] == 0
    for key in ("win_rate", "profit_factor", "expectancy", "average_win", "average_loss"):
        assert stats[key] is None, key


def test_one_winning_trade(weekday_run, trades):
    # Act
    stats = compute_statistics(weekday_run, trades(12.5), 0.0, START)

    # Assert
    assert stats["num_trades"] == 1
    assert stats["win_rate"] == 1.0
    assert stats["expectancy"] == 12.5
    assert stats["average_win"] == 12.5
    assert stats["average_loss"] is None
    assert stats["profit_factor"] is None  # no losing trade: undefined, not inf


def test_only_losing_trades(weekday_run, trades):
    # Act
    stats = compute_statistics(weekday_run, trades(-5, -15), 0.0, START)

    # Assert
    assert stats["win_rate"] == 0.0
    # Gross profit 0 over gross loss 20 is a defined ratio of 0 (only "no losing trade" is
    # undefined, see the module docstring).
    assert stats["profit_factor"] == 0.0
    assert stats["expectancy"] == pytest.approx((-5 - 15) / 2)
    assert stats["average_win"] is None
    assert stats["average_loss"] == pytest.approx(-10.0)


def test_constant_equity_gives_undefined_ratios_never_inf_or_nan(equity_frame, trades):
    # Arrange
    frame = equity_frame([f"2024-01-0{d}" for d in range(1, 6)], [START] * 5)

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    for key in ("volatility", "sharpe", "sortino", "calmar", "max_drawdown_peak",
                "max_drawdown_trough"):
        assert stats[key] is None, key
    assert stats["max_drawdown"] == 0.0
    assert stats["max_drawdown_amount"] == 0.0
    assert stats["total_return"] == 0.0
    assert stats["cagr"] == 0.0
    assert stats["time_in_market"] == 0.0
    assert all(math.isfinite(v) for v in stats.values() if isinstance(v, float))
    json.dumps(stats, allow_nan=False)  # raises on NaN/inf


def test_single_bar_has_no_span_for_annualised_figures(equity_frame, trades):
    # Arrange
    frame = equity_frame(["2024-01-01 10:00"], [1010.0])

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert stats["bars"] == 1
    assert stats["total_return"] == pytest.approx(0.01)
    assert stats["cagr"] is None
    assert stats["volatility"] is None
    assert stats["periods_per_year"] == 365.0
    json.dumps(stats, allow_nan=False)


def test_empty_equity(equity_frame, trades):
    # Arrange
    frame = equity_frame([], [])

    # Act
    stats = compute_statistics(frame, trades(), 0.0, START)

    # Assert
    assert stats == {"metrics_version": METRICS_VERSION, "starting_balance": START, "bars": 0}


def test_max_drawdown_counts_from_the_starting_balance(utc, fills):
    # Arrange: buy 2 at the first close of 100 paying 10 commission; closes 100, 95, 97.5
    closes = pd.Series([100.0, 95.0, 97.5],
                       index=pd.DatetimeIndex([utc("2024-01-01"), utc("2024-01-02"),
                                               utc("2024-01-03")]))
    trade = fills(("2024-01-01", "BUY", 2, 100.0, 10.0))
    cash = START - 2 * 100.0 - 10.0  # 790; equity: 990, 980, 985

    # Act
    frame = mark_to_market(closes, trade, START)
    stats = compute_statistics(frame, pd.DataFrame(columns=["realized_pnl"]), 10.0, START)

    # Assert: the deepest point (980) against the highest equity ever (the 1000 at the start)
    assert frame["equity"].tolist() == pytest.approx([cash + 200.0, cash + 190.0, cash + 195.0])
    assert stats["total_return"] == pytest.approx(985.0 / 1000.0 - 1.0)
    assert stats["max_drawdown"] == pytest.approx(980.0 / 1000.0 - 1.0)


# -- daily returns and periods per year ------------------------------------------------------


def test_daily_returns_use_the_last_equity_of_each_utc_day(utc):
    # Arrange: several bars a day; only each day's last one counts
    equity = pd.Series(
        [1000.0, 1050.0, 900.0, 1100.0, 1210.0],
        index=pd.DatetimeIndex([utc("2024-01-01 12:00"), utc("2024-01-01 23:00"),
                                utc("2024-01-02 06:00"), utc("2024-01-02 23:59"),
                                utc("2024-01-03 10:00")]),
    )

    # Act
    returns = daily_returns(equity)

    # Assert: closes per day are 1050, 1100, 1210
    assert returns.tolist() == pytest.approx([1100 / 1050 - 1, 1210 / 1100 - 1])
    assert list(returns.index) == [utc("2024-01-02"), utc("2024-01-03")]


def test_periods_per_year_defaults_to_365_without_a_day_of_span(utc):
    # Arrange
    one_point = pd.Series([1.0], index=pd.DatetimeIndex([utc("2024-01-01")]))
    same_day = pd.Series([1.0, 2.0], index=pd.DatetimeIndex([utc("2024-01-01 01:00"),
                                                              utc("2024-01-01 20:00")]))

    # Act / Assert
    assert periods_per_year(one_point) == 365.0
    assert periods_per_year(same_day) == 365.0


# -- format_statistic ----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["total_return", "sharpe", "final_equity", "num_trades",
                                 "not_a_headline"])
@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), float("-inf"),
                                   np.float64("nan")])
def test_undefined_statistic_formats_as_n_a(key, value):
    # Act
    text = format_statistic(key, value, "USD")

    # Assert
    assert text == "n/a"


@pytest.mark.parametrize(("key", "value", "currency", "expected"), [
    ("total_return", 0.1234, "", "12.34 %"),
    ("max_drawdown", -0.05, "", "-5.00 %"),
    ("sharpe", 1.23456, "", "1.23"),  # ratios: about three significant digits
    ("final_equity", 1234567.891, "USD", "1,234,567.89 USD"),
    ("expectancy", 1234.5, "", "1,234.50"),
    ("num_trades", 1234, "", "1,234"),
    ("not_a_headline", 2.0, "", "2.00"),
    ("total_return", -0.00001, "", "0.00 %"),  # no sign on a zero
])
def test_defined_statistic_formatting(key, value, currency, expected):
    # Act
    text = format_statistic(key, value, currency)

    # Assert
    assert text == expected

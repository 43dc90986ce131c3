"""Comparing an engine's fills with a backtest's over the same bars (figures worked by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.errors import ValidationError
from services.pipeline.drift import (
    ReplayClock,
    bar_seconds,
    compare,
    round_trips,
    snap_to_bars,
)

T = pd.date_range("2024-03-01", periods=5, freq="1min", tz="UTC")
CLOSES = pd.Series([100.0, 102.0, 101.0, 104.0, 103.0], index=T)
MINUTE = pd.Timedelta(minutes=1)


def _fills(*rows):
    return pd.DataFrame(rows, columns=["ts", "side", "quantity", "price", "commission"])


BACKTEST = _fills((T[0], "BUY", 1.0, 100.0, 0.1), (T[3], "SELL", 1.0, 104.0, 0.1))
# The engine bought 0.5 higher and sold 0.5 lower, then bought once more at the end.
ENGINE = _fills((T[0], "BUY", 1.0, 100.5, 0.1), (T[3], "SELL", 1.0, 103.5, 0.1),
                (T[4], "BUY", 1.0, 103.0, 0.1))


@pytest.fixture
def result():
    return compare(ENGINE, BACKTEST, CLOSES, starting_balance=1000.0, multiplier=1.0,
                   step=MINUTE, latency_ms={"median": 1.0})


def test_equity_of_both_is_marked_on_the_same_closes(result):
    # By hand: backtest 1000 - 100.1 + 100 = 999.9, then +2, -1, sold at 104 (-0.1): 1003.8.
    assert result.equity["backtest"].round(6).tolist() == [999.9, 1001.9, 1000.9, 1003.8,
                                                           1003.8]
    # Engine: 1000 - 100.6 + 100 = 999.4 ... sold at 103.5: 1002.8; bought at 103 (+0.1 fee).
    assert result.equity["engine"].round(6).tolist() == [999.4, 1001.4, 1000.4, 1002.8, 1002.7]


def test_pnl_and_its_difference(result):
    assert result.backtest_pnl == pytest.approx(3.8)
    assert result.engine_pnl == pytest.approx(2.7)
    assert result.pnl_difference == pytest.approx(-1.1)
    assert result.pnl_difference_pct == pytest.approx(1.1 / 3.8 * 100)


def test_fills_are_matched_with_their_slippage(result):
    assert (result.matched_fills, result.missed_fills, result.extra_fills) == (2, 0, 1)
    assert result.fills["match"].tolist() == ["matched", "matched", "extra"]
    assert result.fills["slippage"].iloc[:2].tolist() == [0.5, 0.5]  # worse for the engine
    assert result.slippage_total == pytest.approx(1.0)
    assert result.slippage_mean_bps == pytest.approx((0.5 / 100 + 0.5 / 104) / 2 * 1e4)
    assert result.engine_commissions == pytest.approx(0.3)
    assert result.backtest_commissions == pytest.approx(0.2)
    assert result.time_difference_max_s == 0.0
    assert result.latency_ms == {"median": 1.0}


def test_correlation_is_of_per_bar_returns(result):
    engine = np.array([999.4, 1001.4, 1000.4, 1002.8, 1002.7])
    backtest = np.array([999.9, 1001.9, 1000.9, 1003.8, 1003.8])
    expected = np.corrcoef(np.diff(engine) / engine[:-1], np.diff(backtest) / backtest[:-1])[0, 1]
    assert result.correlation == pytest.approx(expected)
    assert result.window_start == T[0] and result.window_end == T[4]
    assert result.window_minutes == 4.0


def test_identical_fills_drift_by_nothing():
    same = compare(BACKTEST, BACKTEST, CLOSES, 1000.0, 1.0, MINUTE)
    assert same.correlation == pytest.approx(1.0)
    assert same.pnl_difference == 0.0 and same.pnl_difference_pct == 0.0
    assert same.slippage_total == 0.0 and same.matched_fills == 2


def test_a_fill_too_late_is_a_miss_and_an_extra():
    late = _fills((T[0], "BUY", 1.0, 100.0, 0.1),
                  (T[3] + 6 * MINUTE, "SELL", 1.0, 104.0, 0.1))
    closes = pd.Series(np.linspace(100, 110, 10), index=pd.date_range(
        T[0], periods=10, freq="1min"))
    found = compare(late, BACKTEST, closes, 1000.0, 1.0, MINUTE)
    assert (found.matched_fills, found.missed_fills, found.extra_fills) == (1, 1, 1)


def test_no_trades_leave_the_correlation_undefined():
    none = _fills()
    found = compare(none, none, CLOSES, 1000.0, 1.0, MINUTE)
    assert found.correlation is None and found.pnl_difference_pct == 0.0


def test_round_trips_close_flat_and_on_reversals():
    fills = _fills((T[0], "BUY", 1.0, 100.0, 0), (T[1], "SELL", 1.0, 102.0, 0),
                   (T[1], "SELL", 1.0, 102.0, 0), (T[3], "BUY", 1.0, 104.0, 0),
                   (T[3], "BUY", 1.0, 104.0, 0))
    trades = round_trips(fills)
    assert trades[["direction", "entry_price", "exit_price"]].values.tolist() == [
        ["LONG", 100.0, 102.0], ["SHORT", 102.0, 104.0]]
    assert trades["exit_time"].tolist() == [T[1], T[3]]


def test_the_replay_clock_maps_wall_time_to_data_time():
    clock = ReplayClock(data_origin=1_000, wall_origin=5_000, speed=600.0)
    assert clock.data_time(5_000 + 10**9) == 1_000 + 600 * 10**9
    assert clock.wall_time(np.array([1_000 + 600 * 10**9])) == pytest.approx(5_000 + 10**9)


def test_data_times_snap_to_the_bar_they_follow():
    bars = pd.DatetimeIndex([T[0], T[1], T[2]])
    step = 60 * 10**9
    start = T[0].value
    # A bar counts from a quarter of a bar before it is due (the origin is read that closely).
    seconds = np.array([0, 44, 45, 59.9, 104.9, 105, 200]) * 1e9
    assert snap_to_bars(start + seconds, bars, step).tolist() == [0, 0, 1, 1, 1, 2, 2]
    assert snap_to_bars(np.array([start - 30 * 10**9]), bars, step).tolist() == [-1]


def test_bar_seconds_refuses_internal_bars():
    assert bar_seconds("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL") == 60
    assert bar_seconds("AAPL.XNAS-5-SECOND-LAST-EXTERNAL") == 5
    with pytest.raises(ValidationError, match="EXTERNAL"):
        bar_seconds("EUR/USD.SIM-1-MINUTE-MID-INTERNAL")

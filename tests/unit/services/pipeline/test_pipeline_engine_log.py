"""Reading fills and the replay's timing from a real paper engine's log (an excerpt of one,
kept as it came from a NautilusTrader 1.231 TradingNode in the engine image)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from services.pipeline.drift import ReplayClock, last_traded_bar, snap_to_bars
from services.pipeline.engine_log import read_engine_trades

LOG = Path(__file__).parent / "data" / "paper_engine.log"
BAR_TYPE = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"
STEP = 60 * 10**9


def _timing(tmp_path, lines: list[str]):
    """The replay timing of the log excerpt changed to ``lines``."""
    log = tmp_path / "engine.log"
    log.write_text("\n".join(lines) + "\n")
    return read_engine_trades(log, strategy_component="EMACross", bar_type=BAR_TYPE).timing


def test_fills_are_read_from_the_strategys_order_filled_events():
    # Act
    trades = read_engine_trades(LOG, strategy_component="EMACross", bar_type=BAR_TYPE)

    # Assert: the four OrderFilled lines of the excerpt, as they read there
    fills = trades.fills
    assert list(fills["trade_id"]) == ["T-23597779ce5881e0-001", "T-9a9b04f58697db46-002",
                                       "T-9a9b04f58697db46-003", "T-27fd2546727bc513-112"]
    assert list(fills["side"]) == ["BUY", "SELL", "SELL", "BUY"]
    assert list(fills["price"]) == [45462.4, 45378.8, 45378.8, 43615.3]
    assert list(fills["quantity"]) == [0.1] * 4
    assert list(fills["commission"]) == [1.818496, 1.815152, 1.815152, 1.744612]
    assert set(fills["commission_currency"]) == {"USDT"}
    assert fills["ts_wall"].iloc[0] == 1796155034809548307
    assert set(fills["liquidity_side"]) == {"TAKER"} and trades.unreadable_fills == 0


def test_the_replay_timing_comes_from_the_first_bar_the_subscription_and_the_stop():
    # Act
    timing = read_engine_trades(LOG, strategy_component="EMACross", bar_type=BAR_TYPE).timing

    # Assert
    assert timing.first_bar_wall == 1796155034016407637  # the stamp of the first Bar(...)
    assert timing.subscribed_wall == 1796155034016643338  # 19:57:14.016643338Z
    assert timing.origin_wall == timing.first_bar_wall
    assert timing.stopping_wall == 1796155096049161979  # TradingNode: STOPPING
    assert timing.end_wall == timing.stopping_wall
    assert timing.bars_logged == 60 + 3  # the first 60 bars, and 3 in the 60 lines of its end
    assert timing.last_bar_wall == 1796155096016802756  # the stamp of the last Bar(...)
    assert timing.last_traded_wall == timing.last_bar_wall


def test_another_component_or_bar_type_is_not_the_strategys():
    trades = read_engine_trades(LOG, strategy_component="Workbench", bar_type=BAR_TYPE)
    assert trades.fills.empty
    other = read_engine_trades(LOG, strategy_component="EMACross",
                               bar_type="ETHUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL")
    assert other.timing.first_bar_wall is None and other.timing.subscribed_wall is None
    assert other.timing.origin_wall is None


def test_a_damaged_fill_line_is_counted_never_guessed(tmp_path):
    # Arrange: one fill line cut short, one repeated (a log re-read after a reattach)
    lines = LOG.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if "OrderFilled(" in line)
    lines[first] = lines[first][: lines[first].index("last_px=")]
    second = next(i for i, line in enumerate(lines) if "OrderFilled(" in line and i > first)
    lines.insert(second, lines[second])
    damaged = tmp_path / "engine.log"
    damaged.write_text("\n".join(lines) + "\n")

    # Act
    trades = read_engine_trades(damaged, strategy_component="EMACross", bar_type=BAR_TYPE)

    # Assert
    assert trades.unreadable_fills == 1
    assert len(trades.fills) == 3  # the duplicate counted once


def test_a_log_without_a_stop_ends_at_its_last_line(tmp_path):
    lines = [line for line in LOG.read_text().splitlines() if "TradingNode: STOPPING" not in line]
    timing = _timing(tmp_path, lines)
    assert timing.stopping_wall is None
    assert timing.end_wall == timing.last_wall == 1796155096557721109


def test_a_strategy_paused_at_the_stop_traded_until_the_stop(tmp_path):
    # Arrange: paused after its last bar and never resumed; the replay went on without it
    lines = LOG.read_text().splitlines()
    stop = next(i for i, line in enumerate(lines) if "TradingNode: STOPPING" in line)
    lines.insert(stop, "2026-12-01T19:58:16.030000000Z [INFO] PAPER-fcaffda57524.EMACross: "
                       "DEGRADED")

    # Act
    timing = _timing(tmp_path, lines)

    # Assert
    assert timing.paused == ((1796155096030000000, None),)
    assert timing.last_traded_wall == timing.stopping_wall == 1796155096049161979


def test_without_logged_bars_the_window_ends_at_the_stop(tmp_path):
    lines = [line for line in LOG.read_text().splitlines() if "EMACross: Bar(" not in line]
    timing = _timing(tmp_path, lines)
    assert timing.last_bar_wall is None
    assert timing.last_traded_wall == timing.stopping_wall


def test_the_window_ends_on_the_bar_the_close_out_filled_on_not_the_one_after():
    # Arrange: the excerpt's engine replayed at 1440x (its bars are 41.7 ms apart); the node
    # began to stop 32.4 ms, 0.78 of a bar, after its last bar, and the strategy's close-out
    # filled on that bar's quote (its OrderFilled carries that bar's stamp).
    trades = read_engine_trades(LOG, strategy_component="EMACross", bar_type=BAR_TYPE)
    timing = trades.timing
    start = pd.Timestamp("2024-03-04", tz="UTC")
    bars = pd.date_range(start, periods=5000, freq="1min")
    clock = ReplayClock(start.value, timing.origin_wall, 1440.0)
    close_out = trades.fills["ts_wall"].iloc[-1]
    assert close_out == timing.last_bar_wall
    filled_on = int(snap_to_bars(clock.data_time(close_out), bars, STEP))

    # Act
    end = last_traded_bar(timing, clock, bars, STEP)

    # Assert: the window ends there; read from the stop it would take one bar more, which the
    # backtest would close out on, a bar after the engine did
    assert end == filled_on
    assert int(snap_to_bars(clock.data_time(timing.stopping_wall), bars, STEP)) == end + 1



def test_pauses_of_the_strategy_are_read_as_intervals(tmp_path):
    # Arrange: the strategy paused (DEGRADED) and resumed, as the command channel does it
    lines = LOG.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "EMACross: Bar(" in line)
    lines[at:at] = ["2026-12-01T19:57:14.100000000Z [INFO] PAPER-fcaffda57524.EMACross: DEGRADED",
                    "2026-12-01T19:57:14.300000000Z [INFO] PAPER-fcaffda57524.EMACross: RUNNING"]

    # Act
    timing = _timing(tmp_path, lines)

    # Assert
    assert timing.paused == ((1796155034100000000, 1796155034300000000),)

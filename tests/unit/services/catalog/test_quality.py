"""Quality checks, each on a small frame built to hold exactly the problem it looks for."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from services.catalog.calendars import get_calendar
from services.catalog.quality import bar_step_ns, check_frame, find_bar_gaps, merge_reports
from services.errors import ValidationError

MINUTE = 60 * 10**9


def _bars(times, close=None, **overrides) -> pd.DataFrame:
    ts = np.array([pd.Timestamp(t).tz_localize(None).value for t in times], dtype=np.int64)
    close = np.asarray(close if close is not None else 100 + np.arange(ts.size) * 0.01, dtype=float)
    frame = pd.DataFrame({"ts_event": ts, "open": close, "high": close + 0.5, "low": close - 0.5,
                          "close": close, "volume": np.ones(ts.size)})
    for column, changes in overrides.items():
        for i, value in changes.items():
            frame.loc[i, column] = value
    return frame


def _check(frame, calendar="24/7", data_type="bars", **kw):
    return check_frame(frame, data_type, series="X", calendar=get_calendar(calendar),
                       step_ns=MINUTE if data_type == "bars" else None, interval="1-MINUTE-LAST", **kw)


def _minutes(start: str, end: str) -> list[pd.Timestamp]:
    return list(pd.date_range(start, end, freq="1min", tz="UTC"))


def test_a_clean_series_has_no_problems():
    report = _check(_bars(_minutes("2024-01-02 00:01", "2024-01-02 03:00")))
    assert report.problem_count == 0 and report.rows == 180


def test_gap_reports_the_missing_hour_exactly():
    # Arrange: bars closing 10:01..11:00 removed -> the hour 10:00-11:00 has no data.
    times = [t for t in _minutes("2024-01-02 08:01", "2024-01-02 14:00")
             if not pd.Timestamp("2024-01-02 10:00", tz="UTC") < t <= pd.Timestamp("2024-01-02 11:00", tz="UTC")]

    # Act
    report = _check(_bars(times))

    # Assert
    assert [(g.start.isoformat(), g.end.isoformat(), g.missing) for g in report.gaps] == [
        ("2024-01-02T10:00:00+00:00", "2024-01-02T11:00:00+00:00", 60)]
    assert report.missing == 60


def test_closed_periods_of_the_calendar_are_not_gaps():
    # CME: Friday 21:59 UTC close ... Sunday 23:00 UTC open (January), daily break 22:00-23:00.
    times = (_minutes("2024-01-11 20:01", "2024-01-11 22:00") + _minutes("2024-01-11 23:01", "2024-01-12 22:00")
             + _minutes("2024-01-14 23:01", "2024-01-15 01:00"))
    assert _check(_bars(times), "cme-globex").gaps == ()
    # The same data against 24/7 is full of gaps.
    assert len(_check(_bars(times), "24/7").gaps) == 2


def test_missing_bars_around_a_closed_period_are_two_gaps():
    times = _minutes("2024-01-12 20:01", "2024-01-12 21:00") + _minutes("2024-01-15 00:01", "2024-01-15 01:00")
    gaps = find_bar_gaps(np.array([t.value for t in times]), MINUTE, get_calendar("cme-globex"))
    assert [(g.start.strftime("%a %H:%M"), g.end.strftime("%a %H:%M"), g.missing) for g in gaps] == [
        ("Fri 21:00", "Fri 22:00", 60), ("Sun 23:00", "Mon 00:00", 60)]


def test_min_gap_hides_short_gaps():
    times = [t for i, t in enumerate(_minutes("2024-01-02 00:01", "2024-01-02 02:00")) if i not in (5, 50, 51, 52)]
    assert [g.missing for g in _check(_bars(times)).gaps] == [1, 3]
    assert [g.missing for g in _check(_bars(times), min_gap=2).gaps] == [3]


def test_duplicates_and_out_of_order_rows_are_counted_in_storage_order():
    times = _minutes("2024-01-02 00:01", "2024-01-02 00:10")
    frame = _bars([times[0], times[1], times[1], times[3], times[2], times[4]])
    report = _check(frame)
    assert report.duplicates == 1
    assert report.out_of_order == 1
    assert report.worst["out_of_order"][0]["ts"] == times[2].isoformat()


def test_ohlc_inconsistencies():
    frame = _bars(_minutes("2024-01-02 00:01", "2024-01-02 00:20"),
                  low={3: 200.0}, high={7: 99.0}, open={9: 500.0})
    report = _check(frame)
    assert report.ohlc_errors == 3
    assert report.worst["ohlc_errors"][0]["open"] == 500.0  # the worst first


def test_non_positive_prices_and_negative_sizes():
    frame = _bars(_minutes("2024-01-02 00:01", "2024-01-02 00:20"), volume={6: -1.0})
    frame.loc[4, ["open", "low", "close"]] = 0.0
    assert _check(frame).non_positive == 2


def test_an_outlier_return_is_found_with_its_time():
    close = 100 + np.random.default_rng(1).normal(0, 0.01, 500).cumsum()
    close[250] *= 1.2
    times = list(pd.date_range("2024-01-02 00:01", periods=500, freq="1min", tz="UTC"))
    report = _check(_bars(times, close=close))
    assert report.outliers == 2  # the jump up and the jump back
    assert {o["ts"] for o in report.worst["outliers"]} == {times[250].isoformat(), times[251].isoformat()}


def test_crossed_quotes_and_tick_gaps():
    ts = [pd.Timestamp("2024-01-02 00:00", tz="UTC") + pd.Timedelta(seconds=10 * i) for i in range(100)]
    ts = ts[:50] + [t + pd.Timedelta(hours=1) for t in ts[50:]]
    frame = pd.DataFrame({"ts_event": [t.value for t in ts], "bid_price": 1.0, "ask_price": 1.1,
                          "bid_size": 1.0, "ask_size": 1.0})
    frame.loc[10, "bid_price"] = 1.2
    report = check_frame(frame, "quotes", series="Q", calendar=get_calendar("24/7"))
    assert report.crossed == 1
    assert [(g.start, g.missing) for g in report.gaps] == [(ts[49], 60)]


def test_identical_trades_are_duplicates_but_same_time_trades_are_not():
    frame = pd.DataFrame({"ts_event": [1, 1, 1, 2], "price": [10.0, 10.0, 10.5, 10.0],
                          "size": [1.0, 1.0, 1.0, 2.0]})
    report = check_frame(frame, "trades", series="T", calendar=get_calendar("24/7"))
    assert report.duplicates == 1


def test_report_is_json_serialisable_and_exportable():
    frame = _bars(_minutes("2024-01-02 00:01", "2024-01-02 00:20"), low={3: 200.0})
    report = _check(frame)
    assert json.loads(json.dumps(report.to_dict()))["ohlc_errors"] == 1
    offenders = report.offenders_frame()
    assert list(offenders["check"]) == ["ohlc_errors"]


def test_reports_of_consecutive_chunks_merge():
    a = _check(_bars(_minutes("2024-01-02 00:01", "2024-01-02 00:10"), low={2: 500.0}))
    b = _check(_bars(_minutes("2024-01-02 00:21", "2024-01-02 00:30")))
    boundary = find_bar_gaps(np.array([a.last.value, b.first.value]), MINUTE, get_calendar("24/7"))
    merged = merge_reports([a, b], boundary)
    assert merged.rows == 20 and merged.ohlc_errors == 1
    assert [(g.start.minute, g.end.minute, g.missing) for g in merged.gaps] == [(10, 20, 10)]


def test_bar_spec_steps():
    assert bar_step_ns("5-MINUTE-LAST") == 5 * MINUTE
    assert bar_step_ns("100-TICK-LAST") is None
    with pytest.raises(ValidationError, match="STEP-AGGREGATION-PRICE"):
        bar_step_ns("1min")

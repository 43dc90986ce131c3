"""Tests of resolve_time_range in services/backtest/config_builder.py."""

from __future__ import annotations

import pandas as pd
import pytest

from services.backtest.config_builder import resolve_time_range
from services.backtest.spec import BacktestSpec
from services.catalog import BacktestableSeries
from services.errors import ValidationError

BAR_TYPE = "EUR/USD.SIM-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def series(utc) -> BacktestableSeries:
    """1-minute bars whose first bar closes 2024-01-02 00:01 and last 2024-01-05 17:00."""
    return BacktestableSeries(
        bar_type=BAR_TYPE, instrument_id="EUR/USD.SIM", data_type="bars",
        first=utc("2024-01-02 00:01"), last=utc("2024-01-05 17:00"), rows=5000,
    )


def _spec(start=None, end=None) -> BacktestSpec:
    return BacktestSpec(strategy="ema_cross", bar_type=BAR_TYPE, start=start, end=end)


def test_open_range_defaults_to_the_data_coverage(series, utc):
    # Act
    start, end = resolve_time_range(_spec(), series)

    # Assert: one minute before the first close, so the first 1-minute bar is included
    assert start == utc("2024-01-02 00:00")
    assert end == utc("2024-01-05 17:00")


def test_range_inside_the_data_is_kept(series, utc):
    # Act
    start, end = resolve_time_range(_spec("2024-01-03T09:30", "2024-01-04T16:00"), series)

    # Assert
    assert (start, end) == (utc("2024-01-03 09:30"), utc("2024-01-04 16:00"))


def test_whole_covered_days_are_accepted_and_clipped_to_the_data(series, utc):
    # Act: "from the 2nd to the 6th" for data from the 2nd 00:01 to the 5th 17:00
    start, end = resolve_time_range(_spec("2024-01-02", "2024-01-06"), series)

    # Assert
    assert start == utc("2024-01-02 00:00")
    assert end == utc("2024-01-05 17:00")


@pytest.mark.parametrize(("start", "end", "fields"), [
    ("2023-12-31", None, ["start"]),
    (None, "2024-01-07", ["end"]),
    ("2023-06-01", "2024-02-01", ["start", "end"]),
    ("2024-02-01", "2024-03-01", ["start", "end"]),
])
def test_dates_outside_the_data_are_named_with_the_coverage(series, start, end, fields):
    # Act
    with pytest.raises(ValidationError) as info:
        resolve_time_range(_spec(start, end), series)

    # Assert
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == fields
    for problem in problems:
        assert f"is outside the data of {BAR_TYPE}" in problem
        assert "2024-01-02 00:01 to 2024-01-05 17:00 UTC" in problem


def test_reversed_range_is_rejected(series):
    # Act
    with pytest.raises(ValidationError) as info:
        resolve_time_range(_spec("2024-01-04", "2024-01-03"), series)

    # Assert
    [problem] = info.value.problems
    assert problem.startswith("end: must be after start")


def test_range_inside_a_covered_day_but_after_the_last_bar_selects_nothing(series):
    # Act: the 5th is a covered day, but its data ends at 17:00
    with pytest.raises(ValidationError) as info:
        resolve_time_range(_spec("2024-01-05T18:00", "2024-01-05T20:00"), series)

    # Assert
    [problem] = info.value.problems
    assert problem.startswith("start/end:")
    assert "selects no data" in problem


def test_unparseable_date_is_reported_before_the_coverage_check(series):
    # Act
    with pytest.raises(ValidationError) as info:
        resolve_time_range(_spec("next tuesday", None), series)

    # Assert
    [problem] = info.value.problems
    assert problem.startswith("start: not an ISO 8601 date")


def test_result_is_utc(series):
    # Act
    start, end = resolve_time_range(_spec("2024-01-03T10:00+01:00"), series)

    # Assert
    assert start == pd.Timestamp("2024-01-03 09:00", tz="UTC")
    assert str(start.tz) == "UTC" and str(end.tz) == "UTC"

"""Dates users type: every representable one parsed exactly, everything else one clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.errors import ValidationError
from services.timestamps import parse_range, parse_utc

IN_RANGE = st.datetimes(min_value=datetime(1678, 1, 1), max_value=datetime(2262, 4, 10))


@settings(max_examples=300, deadline=None)
@given(IN_RANGE, st.integers(-14 * 60, 14 * 60), st.sampled_from(["T", " "]))
def test_iso_text_with_an_offset_is_the_same_instant(moment, offset_minutes, separator):
    zone = timezone(timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=zone)
    text = aware.isoformat(sep=separator)

    parsed = parse_utc(text, "start")

    # Reference: the standard library's arithmetic, independent of pandas.
    expected = aware.astimezone(UTC).replace(tzinfo=None)
    assert parsed.tz is not None and parsed.utcoffset() == timedelta(0)
    assert parsed.tz_localize(None).to_pydatetime() == expected


@settings(max_examples=200, deadline=None)
@given(IN_RANGE)
def test_naive_text_means_utc(moment):
    assert parse_utc(moment.isoformat(), "end").value == pd.Timestamp(moment, tz="UTC").value


@pytest.mark.parametrize("text", ["NaT", "nat", "next tuesday", "2024-13-45", "2024-01-01T25:00",
                                  "1e9", "--"])
def test_text_that_is_no_date_names_the_field_and_the_value(text):
    with pytest.raises(ValidationError) as info:
        parse_utc(text, "start")
    assert str(info.value).startswith("start: ") and repr(text) in str(info.value)


@pytest.mark.parametrize("text", ["2300-01-01", "1500-06-01", "9999-12-31T23:59:59"])
def test_dates_beyond_nanosecond_timestamps_are_refused(text):
    with pytest.raises(ValidationError, match="outside the dates NautilusTrader can hold"):
        parse_utc(text, "end")


def test_empty_means_open_ended():
    assert parse_utc("", "start") is None and parse_utc(None, "start") is None
    assert parse_utc("   ", "start") is None


def test_a_reversed_range_is_refused():
    with pytest.raises(ValidationError, match="start: 2024-03-02T00:00:00\\+00:00 is after end"):
        parse_range("2024-03-02", "2024-03-01")
    assert parse_range("2024-03-01", "2024-03-01")[0] == pd.Timestamp("2024-03-01", tz="UTC")


# -- inclusive ends (the Backtest and Catalog pages' End) ---------------------------------


@pytest.mark.parametrize(("typed", "expected"), [
    ("2024-01-31", "2024-02-01T00:00:00+00:00"),  # the whole day, to its last bar's close
    (" 2024-02-28 ", "2024-02-29T00:00:00+00:00"),  # leap year
    ("2024-12-31", "2025-01-01T00:00:00+00:00"),
    ("2024-01-31T12:00", "2024-01-31T12:00:00+00:00"),  # a time of day: that instant
    ("2024-01-31 00:00", "2024-01-31T00:00:00+00:00"),
    ("2024-01-31T23:00-05:00", "2024-02-01T04:00:00+00:00"),
])
def test_an_end_day_includes_the_whole_day_and_an_end_time_is_that_instant(typed, expected):
    from services.timestamps import inclusive_end

    assert inclusive_end(typed).isoformat() == expected


def test_an_end_given_as_a_date_object_includes_the_day_and_blank_is_none():
    from datetime import date

    from services.timestamps import inclusive_end

    assert inclusive_end(date(2024, 12, 5)).isoformat() == "2024-12-06T00:00:00+00:00"
    assert inclusive_end("") is None and inclusive_end(None) is None


@pytest.mark.parametrize(("typed", "message"), [
    ("2024-13-01", "end: not an ISO 8601 date or time, was '2024-13-01'"),
    ("2262-04-11", "end: '2262-04-11' is outside the dates NautilusTrader can hold"),
])
def test_a_bad_end_is_one_line_naming_it(typed, message):
    from services.timestamps import inclusive_end

    with pytest.raises(ValidationError) as info:
        inclusive_end(typed)
    assert str(info.value).startswith(message)


# -- data windows as every surface reads them (pages, CLI, API) ---------------------------


@pytest.mark.parametrize(("start", "end", "expected"), [
    ("2024-03-01", "2024-03-01", ("2024-03-01", "2024-03-02")),  # one whole day
    ("2024-03-01", "2024-03-07", ("2024-03-01", "2024-03-08")),
    ("2024-03-01T09:30", "2024-03-01T16:00", ("2024-03-01T09:30:00", "2024-03-01T16:00:00")),
    (None, "2024-12-31", (None, "2025-01-01")),
    ("2024-03-01", None, ("2024-03-01", None)),
])
def test_a_window_reads_the_end_day_through_its_end(start, end, expected):
    from services.timestamps import window_texts

    assert window_texts(start, end) == expected


@pytest.mark.parametrize(("start", "end", "problem"), [
    ("2024-12-10", "2024-12-05", "--end 2024-12-05 is before --start 2024-12-10"),
    ("2024-12-05T00:00", "2024-12-04T00:00", "--end 2024-12-04T00:00 is before --start"),
    ("2024-12-05T12:00", "2024-12-05T12:00", "--end 2024-12-05T12:00 is the same instant as"),
])
def test_a_reversed_window_names_the_dates_as_typed(start, end, problem):
    from services.timestamps import read_window

    with pytest.raises(ValidationError) as info:
        read_window(start, end, ("--start", "--end"))
    assert problem in info.value.problems[0]
    assert "2024-12-06" not in info.value.problems[0]  # never the next midnight it became


def test_every_bad_field_of_a_window_is_named_at_once():
    from services.timestamps import read_window

    with pytest.raises(ValidationError) as info:
        read_window("yesterday", "2024-13-01")
    assert [p.split(":")[0] for p in info.value.problems] == ["Start", "End"]

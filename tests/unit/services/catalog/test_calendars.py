"""Trading calendars: who is open when, across time zones and daylight saving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.catalog.calendars import (
    TradingCalendar,
    calendar_names,
    default_calendar_name,
    get_calendar,
    register_calendar,
)
from services.errors import ValidationError


def _open(name: str, *times: str) -> list[bool]:
    ns = np.array([pd.Timestamp(t, tz="UTC").value for t in times])
    return get_calendar(name).is_open(ns).tolist()


def test_crypto_is_always_open():
    assert _open("24/7", "2024-01-06 12:00", "2024-12-25 00:00") == [True, True]


def test_cme_globex_has_a_daily_break_and_weekends_in_chicago_time():
    # January (CST, UTC-6): break 22:00-23:00 UTC; closed Friday 22:00 UTC to Sunday 23:00 UTC.
    assert _open("cme-globex", "2024-01-09 21:59", "2024-01-09 22:00", "2024-01-09 22:59",
                 "2024-01-09 23:00") == [True, False, False, True]
    assert _open("cme-globex", "2024-01-12 21:59", "2024-01-12 22:00", "2024-01-13 12:00",
                 "2024-01-14 22:59", "2024-01-14 23:00") == [True, False, False, False, True]
    # July (CDT, UTC-5): the break moves to 21:00-22:00 UTC.
    assert _open("cme-globex", "2024-07-09 21:00", "2024-07-09 22:00") == [False, True]


def test_fx_closes_friday_17_new_york_and_reopens_sunday():
    assert _open("fx", "2024-01-05 21:59", "2024-01-05 22:00", "2024-01-07 21:59",
                 "2024-01-07 22:00") == [True, False, False, True]
    assert _open("fx-utc", "2024-07-05 21:30", "2024-07-05 22:00") == [True, False]


def test_us_equity_regular_hours():
    assert _open("us-equity", "2024-01-08 14:29", "2024-01-08 14:30", "2024-01-08 20:59",
                 "2024-01-08 21:00", "2024-01-06 15:00") == [False, True, True, False, False]


def test_calendars_are_extensible_with_sessions_and_closures():
    # Arrange
    holiday = (pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-02", tz="UTC"))
    register_calendar(TradingCalendar("test-desk", "Weekdays 08:00-12:00 London, not New Year",
                                      "Europe/London",
                                      (("mon 08:00", "mon 12:00"), ("tue 08:00", "tue 12:00")),
                                      (holiday,)))

    # Act / Assert
    assert "test-desk" in calendar_names()
    assert _open("test-desk", "2024-01-01 09:00", "2024-01-08 09:00", "2024-01-08 12:00",
                 "2024-07-08 07:30") == [False, True, False, True]  # BST: 08:00 local = 07:00 UTC


def test_unknown_calendar_names_the_choices():
    with pytest.raises(ValidationError, match="Unknown trading calendar 'nyse'.*cme-globex"):
        get_calendar("nyse")


def test_open_seconds_counts_only_open_time():
    weekend = np.array([pd.Timestamp("2024-01-12 21:00", tz="UTC").value])
    monday = np.array([pd.Timestamp("2024-01-14 23:30", tz="UTC").value])
    # 1 h before Friday's close + 30 min after Sunday's open.
    assert get_calendar("cme-globex").open_seconds(weekend, monday).tolist() == [5400]


@pytest.mark.parametrize(("cls", "venue", "name"), [
    ("CryptoPerpetual", "BINANCE", "24/7"), ("CurrencyPair", "BINANCE", "24/7"),
    ("CurrencyPair", "SIM", "fx"), ("FuturesContract", "XCME", "CMES"),
    ("FuturesContract", "EUREX", "CMES"), ("Equity", "XNAS", "XNAS"), ("Equity", "LSE", "XNYS"),
    ("Equity", "XLON", "XLON")])
def test_default_calendar_follows_the_instrument(cls, venue, name):
    assert default_calendar_name(cls, venue) == name


def test_an_exchange_holiday_and_an_early_close_are_closed_time():
    # NYSE: Thanksgiving 2024-11-28 closed all day; the day after closes at 13:00 New York.
    assert _open("XNYS", "2024-11-27 15:00", "2024-11-28 15:00", "2024-11-29 17:59",
                 "2024-11-29 18:00", "2024-11-30 15:00") == [True, False, True, False, False]
    wednesday = np.array([pd.Timestamp("2024-11-27 00:00", tz="UTC").value])
    saturday = np.array([pd.Timestamp("2024-11-30 00:00", tz="UTC").value])
    # 6 h 30 min on Wednesday + 3 h 30 min on Friday, nothing on Thursday.
    assert get_calendar("XNYS").open_seconds(wednesday, saturday).tolist() == [10 * 3600]


def test_a_lunch_break_is_closed_time():
    # Tokyo: 09:00-11:30 and 12:30-15:30 local (UTC+9), so 02:45 UTC is the lunch break.
    assert _open("XTKS", "2024-11-27 01:00", "2024-11-27 02:45", "2024-11-27 04:00") == [
        True, False, True]

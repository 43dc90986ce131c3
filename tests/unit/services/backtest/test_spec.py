"""Tests of services/backtest/spec.py: BacktestSpec dates and (de)serialisation."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.backtest.spec import BacktestSpec, VenueSettings
from services.errors import ValidationError

BAR_TYPE = "EUR/USD.SIM-1-MINUTE-LAST-EXTERNAL"


def _spec(**kwargs) -> BacktestSpec:
    return BacktestSpec(strategy="ema_cross", bar_type=BAR_TYPE, **kwargs)


def test_open_range_stays_open():
    # Act
    start, end = _spec(start=None, end="").time_range()

    # Assert
    assert (start, end) == (None, None)


def test_naive_dates_are_read_as_utc(utc):
    # Act
    start, end = _spec(start="2024-03-01", end="2024-03-02T12:30").time_range()

    # Assert
    assert start == utc("2024-03-01 00:00")
    assert end == utc("2024-03-02 12:30")
    assert str(start.tz) == "UTC"


def test_dates_with_an_offset_are_converted_to_utc(utc):
    # Act: 12:00 at +02:00 is 10:00 UTC; 09:00 at -05:00 is 14:00 UTC
    start, end = _spec(start="2024-03-01T12:00+02:00", end="2024-03-01T09:00-05:00").time_range()

    # Assert
    assert start == utc("2024-03-01 10:00")
    assert end == utc("2024-03-01 14:00")
    assert str(start.tz) == "UTC" and str(end.tz) == "UTC"


@pytest.mark.parametrize(("field", "value"), [
    ("start", "yesterday-ish"),
    ("end", "2024-13-45"),
    ("start", "01/02/2024 25:00"),
])
def test_unparseable_date_names_the_field_and_value(field, value):
    # Act
    with pytest.raises(ValidationError) as info:
        _spec(**{field: value}).time_range()

    # Assert
    [problem] = info.value.problems
    assert problem.startswith(f"{field}: not an ISO 8601 date or time")
    assert repr(value) in problem


def test_both_unparseable_dates_are_reported_together():
    # Act
    with pytest.raises(ValidationError) as info:
        _spec(start="soon", end="later").time_range()

    # Assert
    assert [p.split(":")[0] for p in info.value.problems] == ["start", "end"]


@pytest.mark.parametrize(("start", "end"), [
    ("2024-03-02", "2024-03-01"),
    ("2024-03-01T10:00", "2024-03-01T10:00"),  # an empty range is no range
    ("2024-03-01T12:00+02:00", "2024-03-01T09:30Z"),  # 10:00 UTC vs 09:30 UTC
])
def test_end_not_after_start_is_rejected(start, end):
    # Act
    with pytest.raises(ValidationError) as info:
        _spec(start=start, end=end).time_range()

    # Assert
    [problem] = info.value.problems
    assert problem.startswith("end: must be after start")


def test_to_dict_from_dict_round_trip_through_json():
    # Arrange
    spec = _spec(
        parameters={"fast_ema_period": 5, "trade_size": "0.5", "allow_short": True, "x": 1.5},
        start="2024-03-01", end="2024-03-05T12:00", label="baseline",
        venue=VenueSettings(starting_balance="50000", currency="USD", leverage=2.0,
                            random_seed=7),
    )

    # Act
    restored = BacktestSpec.from_dict(json.loads(json.dumps(spec.to_dict())))

    # Assert
    assert restored == spec
    assert isinstance(restored.venue, VenueSettings)


def test_to_dict_turns_decimals_into_text():
    # Arrange
    spec = _spec(parameters={"trade_size": Decimal("0.25")})

    # Act
    data = spec.to_dict()

    # Assert
    assert data["parameters"] == {"trade_size": "0.25"}
    assert data["venue"]["starting_balance"] is None
    json.dumps(data)  # JSON-safe


def test_from_dict_without_venue_uses_empty_venue_settings():
    # Act
    spec = BacktestSpec.from_dict({"strategy": "ema_cross", "bar_type": BAR_TYPE, "venue": None})

    # Assert
    assert spec.venue == VenueSettings()
    assert spec.venue.overrides() == {}


def test_venue_overrides_leave_out_unset_fields_and_the_currency():
    # Arrange
    venue = VenueSettings(starting_balance="5000", currency="EUR", prob_slippage=0.0)

    # Act
    overrides = venue.overrides()

    # Assert: 0.0 is a set value, not "unset"
    assert overrides == {"starting_balance": "5000", "prob_slippage": 0.0}

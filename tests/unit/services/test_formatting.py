"""services/formatting.py against hand-written expectations."""

from __future__ import annotations

import math

import pytest

from services.formatting import (
    format_bytes,
    format_count,
    format_duration,
    format_price,
    format_quantity,
    numeral_format,
)


@pytest.mark.parametrize(("value", "precision", "text"), [
    (45700.899999999994, 1, "45,700.9"),  # float noise of a decoded fixed-point price
    (1.0853999999999999, 5, "1.08540"),
    (185.5, 2, "185.50"),
    (1234567.0, 0, "1,234,567"),
    (-0.001, 2, "0.00"),  # rounds to zero: no sign
    (-12.345, 1, "-12.3"),
    (None, 2, "n/a"),
    (math.nan, 2, "n/a"),
    (math.inf, 2, "n/a"),
])
def test_prices_read_at_their_precision_with_separators(value, precision, text):
    assert format_price(value, precision) == text


@pytest.mark.parametrize(("value", "precision", "text"), [
    (1250.5, 3, "1,250.500"), (0.1, 3, "0.100"), (3, 0, "3"), (2_500_000.0, 0, "2,500,000"),
])
def test_quantities_read_at_the_size_precision(value, precision, text):
    assert format_quantity(value, precision) == text


@pytest.mark.parametrize(("value", "text"), [
    (527040, "527,040"), (0, "0"), (29996.0, "29,996"), (None, "n/a"), (float("nan"), "n/a"),
])
def test_counts_have_thousands_separators(value, text):
    assert format_count(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (36_512_345, "36.5 MB"),
    (999_960, "1.0 MB"), (820_000, "820.0 kB"), (4_400_000_000, "4.4 GB"), (None, "n/a"),
])
def test_sizes_are_decimal_units_to_one_decimal(value, text):
    assert format_bytes(value) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (42, "42s"), (365, "6m05s"), (4620, "1h17m"), (-3, "0s"), (59.6, "1m00s"),
    (3 * 86400 + 4 * 3600 + 59, "3d04h"), (86400, "1d00h"),
    # 2022-02-01 05:31 to 2024-01-01 00:01: 698 days and 18.5 hours, to the nearest day.
    (698 * 86400 + 18 * 3600 + 30 * 60, "699d"), (10 * 86400 + 11 * 3600, "10d"),
    (None, "n/a"),
])
def test_durations_use_two_units_at_most(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("decimals", "pattern"), [(0, "0,0"), (1, "0,0.0"), (5, "0,0.00000")])
def test_numeral_patterns_match_the_python_formatters(decimals, pattern):
    assert numeral_format(decimals) == pattern

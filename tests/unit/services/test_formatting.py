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


@pytest.mark.parametrize(("fraction", "decimals", "text"), [
    (0.1234, 2, "12.34 %"), (-0.05, 2, "-5.00 %"), (-0.0002, 1, "0.0 %"), (0.0, 2, "0.00 %"),
    (12.5, 0, "1,250 %"), (None, 2, "n/a"), (math.nan, 2, "n/a"),
])
def test_percentages_read_from_fractions(fraction, decimals, text):
    from services.formatting import format_percent

    assert format_percent(fraction, decimals) == text


@pytest.mark.parametrize(("value", "currency", "text"), [
    (1234567.891, "USD", "1,234,567.89 USD"), (-4.5899999, "USDT", "-4.59 USDT"),
    (1234.5, "", "1,234.50"), (-0.004, "USD", "0.00 USD"), (math.inf, "USD", "n/a"),
])
def test_money_reads_with_two_decimals_and_its_currency(value, currency, text):
    from services.formatting import format_money

    assert format_money(value, currency) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.50412, "0.504"), (-0.0123, "-0.012"), (4.516725, "4.52"), (-3.49351, "-3.49"),
    (12.3456, "12.3"), (99.96, "100.0"), (1234.5, "1,234"), (0.0, "0.000"), (None, "n/a"),
])
def test_ratios_read_to_about_three_significant_digits(value, text):
    from services.formatting import format_ratio

    assert format_ratio(value) == text


def test_numbers_at_a_number_of_decimals_never_read_minus_zero():
    from services.formatting import format_number

    assert format_number(-0.04, 1) == "0.0"
    assert format_number(-0.06, 1) == "-0.1"
    assert format_number(2500.25, 1) == "2,500.2"  # an exact tie rounds to even

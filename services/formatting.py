"""How numbers read wherever the workbench shows them: counts, sizes, prices, quantities and
durations. Plain Python (no pandas), so the CLI's quick commands can use it too.

Values that are not numbers (None, NaN, infinities) read ``n/a``, never ``nan``; a value that
rounds to zero reads without a sign (``0.00``, not ``-0.00``).
"""

from __future__ import annotations

import math

NOT_AVAILABLE = "n/a"
_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")  # decimal (SI): what file managers show


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fixed(value, decimals: int) -> str:
    number = _number(value)
    if number is None:
        return NOT_AVAILABLE
    decimals = max(int(decimals), 0)
    text = f"{number:,.{decimals}f}"
    # -0.001 at 2 decimals is "-0.00": a sign on a zero reads as a loss that is not there.
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def format_price(value, precision: int) -> str:
    """``value`` at the instrument's price precision, with thousands separators:
    ``format_price(45700.899999999994, 1)`` is ``45,700.9``."""
    return _fixed(value, precision)


def format_quantity(value, precision: int) -> str:
    """``value`` at the instrument's size precision, with thousands separators:
    ``format_quantity(1250.5, 3)`` is ``1,250.500``."""
    return _fixed(value, precision)


def format_number(value, decimals: int) -> str:
    """``value`` with ``decimals`` decimals and thousands separators: ``format_number(-0.04,
    1)`` is ``0.0`` (a monthly return in percent, say)."""
    return _fixed(value, decimals)


def format_percent(fraction, decimals: int = 2) -> str:
    """A fraction as a percentage: ``format_percent(0.1234)`` is ``12.34 %``; -0.0002 at two
    decimals is ``0.00 %``, never ``-0.00 %``."""
    number = _number(fraction)
    return NOT_AVAILABLE if number is None else f"{_fixed(number * 100, decimals)} %"


def format_money(value, currency: str = "", decimals: int = 2) -> str:
    """An amount with its currency: ``1,234,567.89 USD``."""
    number = _number(value)
    return NOT_AVAILABLE if number is None else f"{_fixed(number, decimals)} {currency}".strip()


def ratio_decimals(value: float) -> int:
    """Decimals of a ratio, by magnitude: 3 below 1, 2 below 10, 1 below 100, else none."""
    size = abs(value)
    return 3 if size < 1 else 2 if size < 10 else 1 if size < 100 else 0


def format_ratio(value) -> str:
    """A ratio (Sharpe, profit factor, beta) to about three significant digits, never in
    scientific notation: ``0.504``, ``4.52``, ``12.3``, ``1,235``."""
    number = _number(value)
    return NOT_AVAILABLE if number is None else _fixed(number, ratio_decimals(number))


def format_count(value) -> str:
    """A whole number with thousands separators: ``527,040``."""
    number = _number(value)
    return NOT_AVAILABLE if number is None else f"{round(number):,}"


def format_bytes(value) -> str:
    """A size in decimal units to one decimal (bytes as a whole number): ``36.5 MB``."""
    number = _number(value)
    if number is None:
        return NOT_AVAILABLE
    size, unit = abs(number), 0
    while size >= 1000 and unit < len(_BYTE_UNITS) - 1:
        size, unit = size / 1000, unit + 1
    sign = "-" if number < 0 else ""
    if unit == 0:
        return f"{sign}{size:.0f} B"
    if round(size, 1) >= 1000 and unit < len(_BYTE_UNITS) - 1:  # 999.96 kB reads 1.0 MB
        size, unit = size / 1000, unit + 1
    return f"{sign}{size:.1f} {_BYTE_UNITS[unit]}"


def format_duration(seconds) -> str:
    """A length of time, two units at most: ``42s``, ``6m05s``, ``1h17m``, ``3d04h``, and
    whole days from ten days on (``697d``). Negative values read ``0s``: a duration (time
    left, a hole in data) is never below zero."""
    number = _number(seconds)
    if number is None:
        return NOT_AVAILABLE
    total = max(round(number), 0)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days >= 10:
        return f"{days + (hours >= 12)}d"
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def numeral_format(decimals: int) -> str:
    """The numeral.js pattern that shows a number as :func:`format_price` does (``0,0.00`` for
    2 decimals), for tables that format in the browser and so keep sorting numerically."""
    decimals = max(int(decimals), 0)
    return "0,0" + ("." + "0" * decimals if decimals else "")

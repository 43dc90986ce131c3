"""One reading of the dates and times users type (CLI flags, API fields, specs)."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from services.errors import ValidationError

# pandas' nanosecond timestamps, which NautilusTrader's ts_event/ts_init use, span these years.
FIRST, LAST = pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_utc(value, name: str) -> pd.Timestamp | None:
    """``value`` (ISO 8601 text, a datetime or a Timestamp; naive means UTC) as a nanosecond
    UTC Timestamp; None for None or "". Raises ValidationError naming ``name`` and the value
    for text that is no date, "NaT", and dates outside 1677-09-22 .. 2262-04-11."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError):
        raise ValidationError(f"{name}: not an ISO 8601 date or time, was {value!r} (use e.g. "
                              "2024-01-31 or 2024-01-31T12:00Z)") from None
    if ts is pd.NaT:
        raise ValidationError(f"{name}: not an ISO 8601 date or time, was {value!r} (use e.g. "
                              "2024-01-31 or 2024-01-31T12:00Z, or leave it out)")
    try:
        ts = ts.as_unit("ns")
    except (ValueError, OverflowError):  # OutOfBoundsDatetime
        raise ValidationError(f"{name}: {value!r} is outside the dates NautilusTrader can hold "
                              f"({FIRST:%Y-%m-%d} to {LAST:%Y-%m-%d})") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_range(start, end, names: tuple[str, str] = ("start", "end")
                ) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Both ends parsed with :func:`parse_utc`; a start after the end is refused."""
    first, last = parse_utc(start, names[0]), parse_utc(end, names[1])
    if first is not None and last is not None and first > last:
        raise ValidationError(f"{names[0]}: {first.isoformat()} is after {names[1]} "
                              f"{last.isoformat()}; swap them")
    return first, last


def inclusive_end(value, name: str = "end") -> pd.Timestamp | None:
    """The end of a range as the pages take it, inclusive: a day alone (``2024-01-31``, or a
    ``datetime.date``) means through that whole day, up to the next midnight UTC, when the
    day's last bar closes (bars are stamped at their close); a date with a time of day is that
    instant. None for None or "". Both the Backtest and the Catalog page read their End so."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = value.isoformat()
    end = parse_utc(value, name)
    if end is None or not _DAY.match(value.strip()):
        return end
    try:
        return end + pd.Timedelta(days=1)
    except (OverflowError, ValueError):  # OutOfBoundsDatetime past 2262-04-11
        raise ValidationError(f"{name}: {value!r} is outside the dates NautilusTrader can hold "
                              f"({FIRST:%Y-%m-%d} to {LAST:%Y-%m-%d})") from None


def read_window(start, end, names: tuple[str, str] = ("Start", "End")
                ) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """A data window as users type it on every surface (pages, CLI, API): Start an instant,
    End inclusive (:func:`inclusive_end`). ValidationError with a line per problem, naming the
    field and the text as typed -- not the next midnight the End became."""
    problems, moments = [], []
    for read, text, name in ((parse_utc, start, names[0]), (inclusive_end, end, names[1])):
        try:
            moments.append(read(text, name))
        except ValidationError as error:
            problems.append(error.summary)
            moments.append(None)
    first, last = moments
    if first is not None and last is not None and last <= first:
        # Against the End as typed: End 2024-01-02 and Start 2024-01-03 is "before", though
        # the End (the next midnight) is the Start's instant.
        order = "before" if parse_utc(end, names[1]) < first else "the same instant as"
        problems.append(
            f"{names[1]} {str(end).strip()} is {order} {names[0]} {str(start).strip()}: a day "
            f"alone as {names[1]} runs to the end of that day, so choose the {names[0]}'s day "
            "or a later one.")
    if problems:
        raise ValidationError("Invalid date range", problems)
    return first, last


def spec_text(moment: pd.Timestamp | None) -> str | None:
    """A UTC instant as the specs store it: the day alone at midnight, else day and time."""
    if moment is None:
        return None
    if moment == moment.normalize():
        return moment.date().isoformat()
    return moment.tz_localize(None).isoformat()


def window_texts(start, end, names: tuple[str, str] = ("start", "end")
                 ) -> tuple[str | None, str | None]:
    """:func:`read_window` as the texts the services take (ISO instants)."""
    first, last = read_window(start, end, names)
    return spec_text(first), spec_text(last)

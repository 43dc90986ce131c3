"""Trading calendars: when a market is open, so that closed periods are never counted as gaps.

A calendar is a weekly schedule in the market's own time zone (so daylight saving moves the
sessions with the local clock, as exchanges do) plus optional closures (holidays, outages).
Weekly ones built in: ``24/7`` (crypto), ``fx`` (Sunday 17:00 to Friday 17:00 New York),
``fx-utc`` (Sunday 22:00 to Friday 22:00 UTC), ``cme-globex`` (Sunday 17:00 to Friday 16:00
Chicago with a daily break) and ``us-equity`` (09:30-16:00 New York, weekdays). Exchanges
(``XNYS``, ``XNAS``, ``CMES``, ``XLON``, ...) come from ``exchange_calendars``, holidays and
early closes included; they are the default for equities and futures. Add one with
:func:`register_calendar`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.errors import ValidationError

MINUTES_PER_WEEK = 7 * 24 * 60
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minute_of_week(day: str, hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return _DAYS.index(day.lower()[:3]) * 1440 + int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class TradingCalendar:
    """A weekly schedule of open sessions in ``timezone``, minus ``closures`` (UTC ranges).

    ``sessions`` are ``("sun 17:00", "fri 16:00")`` pairs in local time; a session may wrap
    around the end of the week. An empty tuple means always open.
    """

    name: str
    description: str
    timezone: str = "UTC"
    sessions: tuple[tuple[str, str], ...] = ()
    closures: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = field(default=())

    def __post_init__(self) -> None:
        mask = np.zeros(MINUTES_PER_WEEK, dtype=bool) if self.sessions else np.ones(
            MINUTES_PER_WEEK, dtype=bool)
        for start_text, end_text in self.sessions:
            start = _minute_of_week(*start_text.split())
            end = _minute_of_week(*end_text.split())
            if start < end:
                mask[start:end] = True
            else:  # wraps past Sunday midnight
                mask[start:] = True
                mask[:end] = True
        object.__setattr__(self, "_open_minutes", mask)

    @property
    def always_open(self) -> bool:
        return not self.sessions and not self.closures

    def is_open(self, ts_ns: np.ndarray) -> np.ndarray:
        """Whether the market is open at each UTC instant (int64 nanoseconds), vectorised."""
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        if self.always_open or ts_ns.size == 0:
            return np.ones(ts_ns.shape, dtype=bool)
        if self.sessions:
            # Local wall-clock nanoseconds; 1970-01-01 was a Thursday (day 3 of a Monday week).
            local = pd.DatetimeIndex(ts_ns, tz="UTC").tz_convert(self.timezone).tz_localize(None)
            minute = (local.asi8 // 60_000_000_000 + 3 * 1440) % MINUTES_PER_WEEK
            result = self._open_minutes[minute]
        else:
            result = np.ones(ts_ns.shape, dtype=bool)
        for start, end in self.closures:
            result &= ~((ts_ns >= start.value) & (ts_ns < end.value))
        return result

    def open_seconds(self, start_ns: np.ndarray, end_ns: np.ndarray, step_s: int = 60) -> np.ndarray:
        """Open time, in seconds, within each [start, end) span (sampled every ``step_s``)."""
        start_ns = np.asarray(start_ns, dtype=np.int64)
        end_ns = np.asarray(end_ns, dtype=np.int64)
        if self.always_open:
            return (end_ns - start_ns) / 1e9
        return _sampled_open_seconds(self.is_open, start_ns, end_ns, step_s)

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "timezone": self.timezone,
                "sessions": [list(s) for s in self.sessions],
                "closures": [[a.isoformat(), b.isoformat()] for a, b in self.closures]}


def _sampled_open_seconds(is_open, start_ns: np.ndarray, end_ns: np.ndarray,
                          step_s: int) -> np.ndarray:
    step = step_s * 1_000_000_000
    counts = np.maximum((end_ns - start_ns) // step, 0)
    if counts.sum() == 0:
        return np.zeros(start_ns.shape)
    owner = np.repeat(np.arange(start_ns.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    samples = start_ns[owner] + offsets * step
    open_samples = np.bincount(owner, weights=is_open(samples), minlength=start_ns.size)
    return open_samples * step_s


_CALENDARS: dict[str, TradingCalendar] = {}


def register_calendar(calendar: TradingCalendar) -> TradingCalendar:
    """Make ``calendar`` selectable by name (replaces one of the same name)."""
    _CALENDARS[calendar.name] = calendar
    return calendar


def calendar_names() -> list[str]:
    return sorted(_CALENDARS)


def get_calendar(name: str) -> TradingCalendar:
    try:
        return _CALENDARS[name]
    except KeyError:
        raise ValidationError(f"Unknown trading calendar {name!r}; choose one of "
                              f"{', '.join(calendar_names())}") from None


# Venues whose exchange calendar is the default for their equities and futures.
EXCHANGE_OF_VENUE = {"XNYS": "XNYS", "NYSE": "XNYS", "ARCA": "XNYS", "XNAS": "XNAS",
                     "NASDAQ": "XNAS", "GLBX": "CMES", "XCME": "CMES", "CME": "CMES",
                     "XCBT": "CMES", "XNYM": "CMES", "XLON": "XLON", "XETR": "XETR",
                     "XEUR": "XEUR", "XTKS": "XTKS", "XHKG": "XHKG"}


def default_calendar_name(instrument_class: str | None, venue: str = "") -> str:
    """The calendar a series is checked against unless the user picks another: the exchange's
    own (holidays and early closes) for equities and futures, a weekly one for FX and 24/7 for
    crypto."""
    crypto_venues = {"BINANCE", "BYBIT", "OKX", "COINBASE", "KRAKEN", "BITMEX", "DERIBIT",
                     "HYPERLIQUID", "DYDX"}
    if instrument_class in ("CryptoPerpetual", "CryptoFuture", "CryptoOption"):
        return "24/7"
    if instrument_class == "CurrencyPair":
        return "24/7" if venue.upper() in crypto_venues else "fx"
    if instrument_class in ("FuturesContract", "FuturesSpread", "OptionContract"):
        return EXCHANGE_OF_VENUE.get(venue.upper(), "CMES")
    if instrument_class == "Equity":
        return EXCHANGE_OF_VENUE.get(venue.upper(), "XNYS")
    return "24/7"


register_calendar(TradingCalendar("24/7", "Always open (crypto venues)."))
register_calendar(TradingCalendar(
    "fx", "Spot FX: Sunday 17:00 to Friday 17:00 New York time.",
    "America/New_York", (("sun 17:00", "fri 17:00"),)))
register_calendar(TradingCalendar(
    "fx-utc", "Spot FX on a fixed UTC clock: Sunday 22:00 to Friday 22:00 UTC.",
    "UTC", (("sun 22:00", "fri 22:00"),)))
register_calendar(TradingCalendar(
    "cme-globex",
    "CME Globex futures: Sunday 17:00 to Friday 16:00 Chicago time, daily break 16:00-17:00.",
    "America/Chicago",
    (("sun 17:00", "mon 16:00"), ("mon 17:00", "tue 16:00"), ("tue 17:00", "wed 16:00"),
     ("wed 17:00", "thu 16:00"), ("thu 17:00", "fri 16:00"))))
register_calendar(TradingCalendar(
    "us-equity", "US equities, regular hours: 09:30-16:00 New York time, Monday to Friday.",
    "America/New_York",
    tuple((f"{d} 09:30", f"{d} 16:00") for d in ("mon", "tue", "wed", "thu", "fri"))))


class ExchangeCalendar:
    """An exchange's real sessions from ``exchange_calendars``: holidays, early closes and
    lunch breaks included, so none of them is reported as a gap. Sessions load on first use.

    ``within`` narrows the sessions by a weekly calendar, for what ``exchange_calendars`` leaves
    out (CME Globex's daily 16:00-17:00 Chicago maintenance halt)."""

    FIRST_YEAR = 2000

    def __init__(self, code: str, description: str, within: TradingCalendar | None = None) -> None:
        self.name = code
        self.description = description
        self.within = within
        self.timezone = "UTC"
        self.sessions = ()
        self.closures = ()
        self._bounds: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    always_open = False

    def _intervals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Open intervals [start, end) in UTC nanoseconds, and the open time before each."""
        if self._bounds is None:
            import exchange_calendars

            last = pd.Timestamp.now(tz="UTC").year + 1
            with warnings.catch_warnings():  # its own use of a pandas API deprecated in 3.1
                warnings.simplefilter("ignore")
                calendar = exchange_calendars.get_calendar(
                    self.name, start=f"{self.FIRST_YEAR}-01-01", end=f"{last}-12-31")
            schedule = calendar.schedule
            opens, closes = schedule["open"], schedule["close"]
            starts, ends = [opens], [closes]
            if "break_start" in schedule and schedule["break_start"].notna().any():
                has_break = schedule["break_start"].notna()
                # A session with a break is two intervals: open..break, break end..close.
                ends = [closes.where(~has_break, schedule["break_start"])]
                starts.append(schedule.loc[has_break, "break_end"])
                ends.append(closes[has_break])
            start_ns = np.concatenate([pd.DatetimeIndex(s).asi8 for s in starts])
            end_ns = np.concatenate([pd.DatetimeIndex(e).asi8 for e in ends])
            order = np.argsort(start_ns)
            start_ns, end_ns = start_ns[order], end_ns[order]
            before = np.concatenate([[0], np.cumsum(end_ns - start_ns)[:-1]])
            self._bounds = (start_ns, end_ns, before)
        return self._bounds

    def is_open(self, ts_ns: np.ndarray) -> np.ndarray:
        ts_ns = np.asarray(ts_ns, dtype=np.int64)
        starts, ends, _ = self._intervals()
        index = np.searchsorted(starts, ts_ns, side="right") - 1
        inside = index >= 0
        inside[inside] = ts_ns[inside] < ends[index[inside]]
        if self.within is not None:
            inside &= self.within.is_open(ts_ns)
        return inside

    def _open_before(self, ts_ns: np.ndarray) -> np.ndarray:
        starts, ends, before = self._intervals()
        index = np.searchsorted(starts, ts_ns, side="right") - 1
        result = np.zeros(ts_ns.shape, dtype=np.int64)
        known = index >= 0
        i = index[known]
        result[known] = before[i] + np.clip(ts_ns[known] - starts[i], 0, ends[i] - starts[i])
        return result

    def open_seconds(self, start_ns: np.ndarray, end_ns: np.ndarray, step_s: int = 60) -> np.ndarray:
        """Open time, in seconds, within each [start, end) span (exact unless ``within``)."""
        start_ns = np.asarray(start_ns, dtype=np.int64)
        end_ns = np.asarray(end_ns, dtype=np.int64)
        if self.within is not None:
            return _sampled_open_seconds(self.is_open, start_ns, end_ns, step_s)
        return (self._open_before(end_ns) - self._open_before(start_ns)) / 1e9

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "timezone": "exchange",
                "sessions": "from exchange_calendars (holidays and early closes included)",
                "closures": []}


register_calendar(ExchangeCalendar(  # type: ignore[arg-type]
    "CMES", "CME Globex futures: holidays and early closes, with the daily 16:00-17:00 Chicago "
    "maintenance halt and weekends.", within=get_calendar("cme-globex")))
for _code, _text in (
        ("XNYS", "New York Stock Exchange: regular hours, holidays and early closes."),
        ("XNAS", "Nasdaq: regular hours, holidays and early closes."),
        ("XLON", "London Stock Exchange: regular hours, holidays and early closes."),
        ("XETR", "Xetra (Deutsche Börse): regular hours and holidays."),
        ("XEUR", "Eurex: regular hours and holidays."),
        ("XTKS", "Tokyo Stock Exchange: sessions with the lunch break, and holidays."),
        ("XHKG", "Hong Kong Exchange: sessions with the lunch break, and holidays.")):
    register_calendar(ExchangeCalendar(_code, _text))  # type: ignore[arg-type]

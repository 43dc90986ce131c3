"""Quality checks of one series by content: gaps (calendar-aware), duplicates, out-of-order rows,
OHLC inconsistencies, non-positive prices or sizes, crossed quotes and outlier returns.

Every check is vectorised over numpy arrays, so a million bars take well under a second.
Frames come in storage order (``ts_event`` as int64 nanoseconds plus the series' columns):
order matters for the out-of-order check, so nothing is sorted before it runs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.catalog.calendars import TradingCalendar
from services.errors import ValidationError

WORST_KEPT = 10
MAX_GAPS_LISTED = 10_000
DEFAULT_OUTLIER_Z = 20.0  # robust z-score of a log return (median/MAD); real 1-minute crypto
# moves reach z 12-15 every few days, so lower thresholds flag markets rather than bad data
DEFAULT_TICK_QUIET_S = 300  # ticks: open-market silence longer than this is a gap
_STEP_NS = {"MILLISECOND": 10**6, "SECOND": 10**9, "MINUTE": 60 * 10**9, "HOUR": 3600 * 10**9,
            "DAY": 86400 * 10**9, "WEEK": 7 * 86400 * 10**9}
_BAR_SPEC_RE = re.compile(r"^(\d{1,12})-([A-Z_]+)-([A-Z_]+)$")
MAX_BAR_NS = 366 * 86400 * 10**9  # longer time bars are refused (and would overflow pandas)
PRICE_COLUMNS = {"bars": ["open", "high", "low", "close"], "quotes": ["bid_price", "ask_price"],
                 "trades": ["price"]}
SIZE_COLUMNS = {"bars": ["volume"], "quotes": ["bid_size", "ask_size"], "trades": ["size"]}


def bar_step_ns(bar_spec: str) -> int | None:
    """Length of one bar of ``bar_spec`` ("1-MINUTE-LAST") in ns; None for non-time bars."""
    match = _BAR_SPEC_RE.match(bar_spec)
    if not match:
        raise ValidationError(f"Bar spec {bar_spec!r} is not STEP-AGGREGATION-PRICE, e.g. "
                              "1-MINUTE-LAST or 5-MINUTE-MID")
    step, aggregation = int(match.group(1)), match.group(2)
    if step <= 0:
        raise ValidationError(f"Bar spec {bar_spec!r}: the step must be positive")
    if aggregation not in _STEP_NS:
        return None
    if step * _STEP_NS[aggregation] > MAX_BAR_NS:
        raise ValidationError(f"Bar spec {bar_spec!r}: a bar longer than 366 days holds no more "
                              "than one bar of any catalog; use at most 366-DAY or 52-WEEK")
    return step * _STEP_NS[aggregation]


@dataclass(frozen=True)
class Gap:
    """Market-open time with no data: from ``start`` (last data before) to ``end``."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int  # bars: missing bars; ticks: open minutes without a tick

    def to_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "missing": self.missing}


@dataclass(frozen=True)
class QualityReport:
    """Counts and worst offenders of every check on one series."""

    series: str
    data_type: str
    calendar: str
    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    interval: str | None
    gaps: tuple[Gap, ...]
    missing: int
    duplicates: int
    out_of_order: int
    ohlc_errors: int
    non_positive: int
    crossed: int
    outliers: int
    worst: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def problem_count(self) -> int:
        return (len(self.gaps) + self.duplicates + self.out_of_order + self.ohlc_errors
                + self.non_positive + self.crossed + self.outliers)

    def to_dict(self) -> dict:
        return {
            "series": self.series, "data_type": self.data_type, "calendar": self.calendar,
            "rows": self.rows,
            "first": self.first.isoformat() if self.first is not None else None,
            "last": self.last.isoformat() if self.last is not None else None,
            "interval": self.interval,
            "gap_count": len(self.gaps), "missing": self.missing,
            "gaps": [g.to_dict() for g in self.gaps[:MAX_GAPS_LISTED]],
            "duplicates": self.duplicates, "out_of_order": self.out_of_order,
            "ohlc_errors": self.ohlc_errors, "non_positive": self.non_positive,
            "crossed": self.crossed, "outliers": self.outliers, "worst": self.worst,
        }

    def offenders_frame(self) -> pd.DataFrame:
        """One row per listed offender (check, time, detail): the exportable report."""
        rows = [{"check": "gap", "ts": g.start.isoformat(), "end": g.end.isoformat(),
                 "detail": f"{g.missing} missing"} for g in self.gaps]
        for check, items in self.worst.items():
            if check == "gaps":
                continue
            for item in items:
                rows.append({"check": check, "ts": item.get("ts"), "end": None,
                             "detail": ", ".join(f"{k}={v}" for k, v in item.items() if k != "ts")})
        return pd.DataFrame(rows, columns=["check", "ts", "end", "detail"])

    def summary(self) -> str:
        parts = [f"{len(self.gaps):,} gaps ({self.missing:,} missing)",
                 f"{self.duplicates:,} duplicates", f"{self.out_of_order:,} out of order",
                 f"{self.ohlc_errors:,} OHLC errors", f"{self.non_positive:,} non-positive",
                 f"{self.outliers:,} outliers"]
        if self.data_type == "quotes":
            parts.append(f"{self.crossed:,} crossed quotes")
        return f"{self.rows:,} rows; " + ", ".join(parts)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values. numpy 2.3's hash-based np.unique takes seconds on a million
    int64s; a sort (skipped when already sorted, as stored series are) and a shift take ms."""
    values = np.asarray(values)
    if values.size and (values[1:] < values[:-1]).any():
        values = np.sort(values, kind="stable")
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def find_bar_gaps(ts_ns: np.ndarray, step_ns: int, calendar: TradingCalendar,
                  min_missing: int = 1) -> list[Gap]:
    """Missing bars between the first and the last bar while ``calendar`` is open.

    Bars are stamped at their close, so the bar closing at ``t`` is expected when the market is
    open at ``t - step``. A run of missing bars interrupted by a closed period is two gaps.
    """
    ts = sorted_unique(np.asarray(ts_ns, dtype=np.int64))
    if ts.size < 2:
        return []
    diffs = np.diff(ts)
    holes = np.flatnonzero(diffs > step_ns)
    if holes.size == 0:
        return []
    counts = (diffs[holes] - 1) // step_ns  # bars that would fit strictly inside each hole
    owner = np.repeat(np.arange(holes.size), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    expected_close = ts[holes][owner] + (within + 1) * step_ns
    open_ = calendar.is_open(expected_close - step_ns)
    if not open_.any():
        return []
    # Runs of open missing bars: a run breaks at a closed bar or where the hole changes.
    idx = np.flatnonzero(open_)
    breaks = np.flatnonzero((np.diff(idx) != 1) | (np.diff(owner[idx]) != 0)) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, idx.size]
    missing = ends - starts
    keep = missing >= min_missing
    gap_starts = pd.DatetimeIndex(expected_close[idx[starts[keep]]] - step_ns, tz="UTC")
    gap_ends = pd.DatetimeIndex(expected_close[idx[ends[keep] - 1]], tz="UTC")
    return [Gap(a, b, int(m)) for a, b, m in zip(gap_starts, gap_ends, missing[keep], strict=True)]


def find_tick_gaps(ts_ns: np.ndarray, calendar: TradingCalendar,
                   quiet_s: int = DEFAULT_TICK_QUIET_S) -> list[Gap]:
    """Silences between consecutive ticks with more than ``quiet_s`` of open-market time."""
    ts = sorted_unique(np.asarray(ts_ns, dtype=np.int64))
    if ts.size < 2:
        return []
    diffs = np.diff(ts)
    candidates = np.flatnonzero(diffs > quiet_s * 1_000_000_000)
    if candidates.size == 0:
        return []
    open_s = calendar.open_seconds(ts[candidates], ts[candidates + 1])
    return [Gap(pd.Timestamp(int(ts[i]), tz="UTC"), pd.Timestamp(int(ts[i + 1]), tz="UTC"),
                int(o // 60))
            for i, o in zip(candidates, open_s, strict=True) if o > quiet_s]


def _robust_z(returns: np.ndarray) -> np.ndarray:
    finite = returns[np.isfinite(returns)]
    if finite.size < 10:
        return np.zeros_like(returns)
    median = np.median(finite)
    scale = 1.4826 * np.median(np.abs(finite - median))
    if scale == 0:
        scale = np.std(finite)
    if scale == 0:
        return np.zeros_like(returns)
    return np.abs(returns - median) / scale


def check_frame(frame: pd.DataFrame, data_type: str, *, series: str = "", calendar: TradingCalendar,
                step_ns: int | None = None, interval: str | None = None,
                outlier_z: float = DEFAULT_OUTLIER_Z, min_gap: int = 1,
                tick_quiet_s: int = DEFAULT_TICK_QUIET_S) -> QualityReport:
    """Run every check on ``frame`` (storage order, ``ts_event`` in ns plus value columns)."""
    if data_type not in PRICE_COLUMNS:
        raise ValidationError(f"Quality checks cover bars, quotes and trades, not {data_type!r}")
    if not (isinstance(outlier_z, (int, float)) and math.isfinite(outlier_z) and outlier_z > 0):
        raise ValidationError(f"The outlier threshold must be a positive number (a robust "
                              f"z-score such as {DEFAULT_OUTLIER_Z:g}), was {outlier_z!r}")
    if not (isinstance(min_gap, int) and min_gap >= 1):
        raise ValidationError(f"The smallest gap reported must be a whole number of bars >= 1, "
                              f"was {min_gap!r}")
    if not (isinstance(tick_quiet_s, int) and tick_quiet_s >= 1):
        raise ValidationError(f"The quiet time that counts as a tick gap must be a whole number "
                              f"of seconds >= 1, was {tick_quiet_s!r}")
    ts = frame["ts_event"].to_numpy(dtype=np.int64)
    n = ts.size
    worst: dict[str, list[dict]] = {}
    if n == 0:
        return QualityReport(series, data_type, calendar.name, 0, None, None, interval, (), 0,
                             0, 0, 0, 0, 0, 0, worst)

    # Out of order: a row earlier than the row stored before it.
    backwards = np.flatnonzero(ts[1:] < ts[:-1]) + 1
    worst["out_of_order"] = [{"ts": _iso(ts[i]), "after": _iso(ts[i - 1]), "row": int(i)}
                             for i in backwards[:WORST_KEPT]]

    # Duplicates: bars sharing a timestamp; ticks identical in every column.
    # Only rows sharing a timestamp can be duplicates: count those first (a sort, no hashing).
    duplicates = 0
    worst["duplicates"] = []
    if ts.size - sorted_unique(ts).size:
        key_columns = ["ts_event"] if data_type == "bars" else list(frame.columns)
        dup_mask = frame.duplicated(subset=key_columns, keep="first").to_numpy()
        duplicates = int(dup_mask.sum())
        worst["duplicates"] = [{"ts": _iso(ts[i]), "row": int(i)}
                               for i in np.flatnonzero(dup_mask)[:WORST_KEPT]]

    prices = {c: frame[c].to_numpy(dtype=np.float64) for c in PRICE_COLUMNS[data_type]}
    sizes = {c: frame[c].to_numpy(dtype=np.float64) for c in SIZE_COLUMNS[data_type]
             if c in frame.columns}

    ohlc_errors = 0
    if data_type == "bars":
        o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
        excess = np.maximum.reduce([np.maximum(o, c) - h, lo - np.minimum(o, c), lo - h])
        bad = np.flatnonzero(excess > 0)
        ohlc_errors = int(bad.size)
        order = bad[np.argsort(-excess[bad])][:WORST_KEPT]
        worst["ohlc_errors"] = [{"ts": _iso(ts[i]), "open": o[i], "high": h[i], "low": lo[i],
                                 "close": c[i]} for i in order]

    # Non-positive: prices <= 0, sizes < 0 (trades: size must be > 0; bars may have 0 volume).
    bad_rows = np.zeros(n, dtype=bool)
    for values in prices.values():
        bad_rows |= ~(values > 0)
    for name, values in sizes.items():
        bad_rows |= ~(values > 0) if data_type == "trades" and name == "size" else ~(values >= 0)
    non_positive = int(bad_rows.sum())
    worst["non_positive"] = [
        {"ts": _iso(ts[i]), **{k: float(v[i]) for k, v in {**prices, **sizes}.items()}}
        for i in np.flatnonzero(bad_rows)[:WORST_KEPT]]

    crossed = 0
    if data_type == "quotes":
        crossed_rows = np.flatnonzero(prices["bid_price"] > prices["ask_price"])
        crossed = int(crossed_rows.size)
        worst["crossed"] = [{"ts": _iso(ts[i]), "bid": prices["bid_price"][i],
                             "ask": prices["ask_price"][i]} for i in crossed_rows[:WORST_KEPT]]

    # Outlier returns, on time-sorted, de-duplicated, positive prices.
    order = np.argsort(ts, kind="stable")
    level = {"bars": lambda: prices["close"],
             "quotes": lambda: (prices["bid_price"] + prices["ask_price"]) / 2,
             "trades": lambda: prices["price"]}[data_type]()[order]
    sorted_ts = ts[order]
    keep = level > 0
    level, sorted_ts = level[keep], sorted_ts[keep]
    outliers = 0
    if level.size > 2:
        returns = np.diff(np.log(level))
        z = _robust_z(returns)
        flagged = np.flatnonzero(z > outlier_z)
        outliers = int(flagged.size)
        top = flagged[np.argsort(-z[flagged])][:WORST_KEPT]
        worst["outliers"] = [{"ts": _iso(sorted_ts[i + 1]), "return": float(np.expm1(returns[i])),
                              "z": round(float(z[i]), 1), "price": float(level[i + 1]),
                              "previous": float(level[i])} for i in top]

    if data_type == "bars":
        gaps = find_bar_gaps(ts, step_ns, calendar, min_gap) if step_ns else []
    else:
        gaps = find_tick_gaps(ts, calendar, tick_quiet_s)
    worst["gaps"] = [g.to_dict() for g in sorted(gaps, key=lambda g: -g.missing)[:WORST_KEPT]]
    return QualityReport(
        series=series, data_type=data_type, calendar=calendar.name, rows=n,
        first=pd.Timestamp(int(ts.min()), tz="UTC"), last=pd.Timestamp(int(ts.max()), tz="UTC"),
        interval=interval, gaps=tuple(gaps), missing=int(sum(g.missing for g in gaps)),
        duplicates=duplicates, out_of_order=int(backwards.size), ohlc_errors=ohlc_errors,
        non_positive=non_positive, crossed=crossed, outliers=outliers, worst=_plain(worst))


def _plain(worst: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """numpy scalars -> Python numbers, so the report serialises to JSON as is."""
    return {k: [{f: (v.item() if isinstance(v, np.generic) else v) for f, v in item.items()}
                for item in items] for k, items in worst.items()}


def merge_reports(parts: list[QualityReport], boundary_gaps: list[Gap] | None = None,
                  boundary_issues: dict[str, int] | None = None) -> QualityReport:
    """One report for a series checked in consecutive chunks (a file streamed in pieces).

    ``boundary_gaps`` are the gaps between one chunk's last row and the next chunk's first.
    """
    if not parts:
        raise ValueError("merge_reports needs at least one report")
    first = parts[0]
    gaps = sorted([g for p in parts for g in p.gaps] + list(boundary_gaps or []),
                  key=lambda g: g.start.value)
    extra = boundary_issues or {}
    worst: dict[str, list[dict]] = {}
    for p in parts:
        for check, items in p.worst.items():
            worst.setdefault(check, []).extend(items)
    for check in list(worst):
        if check == "outliers":
            worst[check] = sorted(worst[check], key=lambda x: -x["z"])[:WORST_KEPT]
        elif check == "gaps":
            worst[check] = [g.to_dict() for g in sorted(gaps, key=lambda g: -g.missing)[:WORST_KEPT]]
        else:
            worst[check] = worst[check][:WORST_KEPT]
    firsts = [p.first for p in parts if p.first is not None]
    lasts = [p.last for p in parts if p.last is not None]

    def total(name: str) -> int:
        return sum(getattr(p, name) for p in parts) + extra.get(name, 0)

    return QualityReport(
        series=first.series, data_type=first.data_type, calendar=first.calendar,
        rows=sum(p.rows for p in parts), first=min(firsts) if firsts else None,
        last=max(lasts) if lasts else None, interval=first.interval, gaps=tuple(gaps),
        missing=sum(g.missing for g in gaps), duplicates=total("duplicates"),
        out_of_order=total("out_of_order"), ohlc_errors=total("ohlc_errors"),
        non_positive=total("non_positive"), crossed=total("crossed"), outliers=total("outliers"),
        worst=worst)

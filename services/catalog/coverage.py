"""Coverage of a stored series as segments: stretches of data, and the holes between them.

A hole is market-open time without data: more than ``HOLE_MIN_OPEN_S`` (4 hours) of it, and
more than ``HOLE_MIN_BARS`` bars' worth for bars longer than 80 minutes. Time the series' trading
calendar has closed (an equity's nights and weekends, an exchange's holidays, the FX weekend) is
never part of a hole; shorter silences are the quality check's business
(``services.catalog.quality``), not coverage's.

What coverage needs from the data is each file's *breaks*: consecutive timestamps further apart
than a hole could be. They are read from the file's ``ts_event`` column once per file version
and kept in the catalog's coverage index, ``.workbench-coverage.json`` at its root
(NautilusTrader reads only ``data/``). Listing a big catalog again reads no rows; after an
import, only the new files are read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from services.formatting import format_duration

log = logging.getLogger(__name__)

HOLE_MIN_OPEN_S = 4 * 3600  # nights mis-stamped by a DST hour or a slow half-day stay out
HOLE_MIN_BARS = 3
INDEX_FILE = ".workbench-coverage.json"
_INDEX_VERSION = 1
SAMPLE, IMPORTED, MIXED = "synthetic sample", "imported", "sample + imported"
SEGMENTS_LISTED = 6  # a message names at most this many segments


def hole_min_ns(step_ns: int) -> int:
    """Market-open time without data, in ns, beyond which a silence is a hole."""
    return max(HOLE_MIN_OPEN_S * 10**9, HOLE_MIN_BARS * step_ns)


def break_min_ns(step_ns: int) -> int:
    """Distance between consecutive timestamps beyond which a hole is possible: the hole's
    minimum plus the bar that closes it (a bar stamped ``t`` covers ``t - step`` to ``t``)."""
    return hole_min_ns(step_ns) + step_ns


@dataclass(frozen=True)
class FileSpan:
    """One data file's timestamps as coverage needs them (UTC nanoseconds)."""

    first: int
    last: int
    rows: int
    breaks: tuple[tuple[int, int, int], ...]  # (last before, first after, rows before)


def file_span(ts_ns: np.ndarray, min_gap_ns: int) -> FileSpan | None:
    """The span and breaks (consecutive timestamps more than ``min_gap_ns`` apart) of one
    file's timestamps; None for a file without rows."""
    ts = np.asarray(ts_ns).astype(np.int64, copy=False)
    if not ts.size:
        return None
    if (ts[1:] < ts[:-1]).any():
        ts = np.sort(ts, kind="stable")
    at = np.flatnonzero(np.diff(ts) > min_gap_ns)
    return FileSpan(int(ts[0]), int(ts[-1]), int(ts.size),
                    tuple((int(ts[i]), int(ts[i + 1]), int(i + 1)) for i in at))


@dataclass(frozen=True)
class Segment:
    """A stretch of data without a hole: first and last timestamp (UTC), rows, origin."""

    first: pd.Timestamp
    last: pd.Timestamp
    rows: int
    origin: str  # SAMPLE, IMPORTED or MIXED

    def describe(self) -> str:
        return f"{self.first:%Y-%m-%d %H:%M}\u2013{self.last:%Y-%m-%d %H:%M}"


@dataclass(frozen=True)
class Hole:
    """Market-open time without data between two segments."""

    after: pd.Timestamp  # the last timestamp before it
    until: pd.Timestamp  # the first timestamp after it
    open_seconds: float  # how much of it the market was open
    resumes: pd.Timestamp | None = None  # where data covers time again: the start of the bar
    # stamped ``until`` (``until`` itself for ticks)

    @property
    def end(self) -> pd.Timestamp:
        return self.until if self.resumes is None else self.resumes

    def describe(self) -> str:
        return (f"{self.after:%Y-%m-%d %H:%M}\u2013{self.until:%Y-%m-%d %H:%M} "
                f"({format_duration(self.open_seconds)} of open market)")


@dataclass(frozen=True)
class SeriesCoverage:
    """A series' data as segments separated by holes, against its trading calendar."""

    key: str
    data_type: str
    calendar: str
    segments: tuple[Segment, ...]
    holes: tuple[Hole, ...]  # holes[i] lies between segments[i] and segments[i + 1]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)

    @property
    def origin(self) -> str:
        """SAMPLE or IMPORTED when every segment is, else MIXED."""
        origins = {s.origin for s in self.segments}
        return origins.pop() if len(origins) == 1 else MIXED

    def holes_within(self, start: pd.Timestamp, end: pd.Timestamp) -> tuple[Hole, ...]:
        """Holes with time inside the range [start, end]."""
        return tuple(h for h in self.holes if h.after < end and h.end > start)

    def describe(self) -> str:
        """The segments as text: ``2021-12-31 23:01–2022-02-01 05:31 and 2024-01-01
        00:01–2025-01-01 00:00`` (at most SEGMENTS_LISTED, then how many more)."""
        parts = [s.describe() for s in self.segments[:SEGMENTS_LISTED]]
        more = len(self.segments) - len(parts)
        if more:
            return ", ".join(parts) + f" and {more:,} more"
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]

    def summary(self) -> str:
        """``continuous`` or ``2 segments, longest hole 697d``."""
        if not self.holes:
            return "continuous" if self.segments else "no data"
        return f"{len(self.segments):,} segments, longest hole {self._longest()}"

    def holes_summary(self) -> str:
        """``none``, or how many holes and the longest: ``1 (697d)``, ``3 (longest 2d04h)``."""
        if not self.holes:
            return "none"
        return (f"1 ({self._longest()})" if len(self.holes) == 1
                else f"{len(self.holes):,} (longest {self._longest()})")

    def _longest(self) -> str:
        return format_duration(max(h.open_seconds for h in self.holes))


def _origin(first: int, last: int, sample: tuple[int, int] | None) -> str:
    if sample is None or last < sample[0] or first > sample[1]:
        return IMPORTED
    return SAMPLE if sample[0] <= first and last <= sample[1] else MIXED


def build_coverage(key: str, data_type: str, spans: list[FileSpan], calendar, step_ns: int,
                   sample: tuple[int, int] | None = None) -> SeriesCoverage:
    """Segments and holes of a series from its files' spans.

    ``calendar`` (a TradingCalendar or ExchangeCalendar) decides which time was open; a bar
    stamped at its close ``t`` (``step_ns`` long; 0 for ticks) covers ``t - step`` to ``t``.
    ``sample`` is the range the workbench's generator wrote under this key, if any: segments
    inside it are SAMPLE, outside it IMPORTED.
    """
    spans = sorted(spans, key=lambda s: s.first)
    if not spans:
        return SeriesCoverage(key, data_type, calendar.name, (), ())
    minimum = break_min_ns(step_ns)
    before, after, rows_before = [], [], []
    seen, last = 0, None
    for span in spans:
        if last is not None and span.first - last > minimum:  # between two files
            before.append(last), after.append(span.first), rows_before.append(seen)
        for b, a, r in span.breaks:
            before.append(b), after.append(a), rows_before.append(seen + r)
        seen += span.rows
        last = span.last if last is None else max(last, span.last)
    b_ns, a_ns = np.array(before, dtype=np.int64), np.array(after, dtype=np.int64)
    open_s = (np.asarray(calendar.open_seconds(b_ns, a_ns - step_ns), dtype=np.float64)
              if b_ns.size else np.zeros(0))
    is_hole = open_s > hole_min_ns(step_ns) / 1e9
    hole_at = np.flatnonzero(is_hole)
    firsts = [spans[0].first, *a_ns[hole_at].tolist()]
    lasts = [*b_ns[hole_at].tolist(), last]
    cuts = [0, *np.asarray(rows_before, dtype=np.int64)[hole_at].tolist(), seen]

    def ts(ns: int) -> pd.Timestamp:
        return pd.Timestamp(int(ns), tz="UTC")

    segments = tuple(Segment(ts(f), ts(la), int(cuts[i + 1] - cuts[i]), _origin(f, la, sample))
                     for i, (f, la) in enumerate(zip(firsts, lasts, strict=True)))
    holes = tuple(Hole(ts(b_ns[i]), ts(a_ns[i]), float(open_s[i]), ts(a_ns[i] - step_ns))
                  for i in hole_at)
    return SeriesCoverage(key, data_type, calendar.name, segments, holes)


class CoverageIndex:
    """The file spans of one catalog, persisted at its root and shared between threads.

    Entries are per series folder and file version (size, modification time); a folder's entry
    is replaced whole when it is read, so files deleted or rewritten leave nothing behind. A
    catalog the workbench may not write (read-only, remote without credentials) keeps the index
    in memory only.
    """

    def __init__(self, fs, root: str, protocol: str) -> None:
        self._fs = fs
        self._protocol = protocol
        self._path = f"{root}/{INDEX_FILE}"
        self._lock = threading.Lock()
        self._folders: dict[str, dict[str, dict]] | None = None
        self._writable = True

    def spans(self, folder: str, files: list[dict], min_gap_ns: int,
              read_ts: Callable[[str], np.ndarray]) -> list[FileSpan]:
        """Spans of ``files`` (fsspec detail dicts of one series folder ``folder``), read with
        ``read_ts(path)`` only for files the index does not hold in this version."""
        with self._lock:
            known = self._load().get(folder, {})
        entries, changed = {}, False
        for info in files:
            name = info["name"].rsplit("/", 1)[-1]
            version = [info.get("size"), str(info.get("mtime") or info.get("LastModified"))]
            entry = known.get(name)
            if entry is None or entry["version"] != version or entry["min_gap"] != min_gap_ns:
                span = file_span(read_ts(info["name"]), min_gap_ns)
                entry = {"version": version, "min_gap": min_gap_ns,
                         "span": None if span is None else [span.first, span.last, span.rows,
                                                            [list(b) for b in span.breaks]]}
                changed = True
            entries[name] = entry
        if changed or entries.keys() != known.keys():
            with self._lock:
                self._folders[folder] = entries
                self._save()
        return [FileSpan(s[0], s[1], s[2], tuple(tuple(b) for b in s[3]))
                for s in (e["span"] for e in entries.values()) if s is not None]

    def _load(self) -> dict[str, dict[str, dict]]:
        if self._folders is None:
            self._folders = {}
            try:
                if self._fs.exists(self._path):
                    stored = json.loads(self._fs.cat_file(self._path))
                    if stored.get("version") == _INDEX_VERSION:
                        self._folders = dict(stored["folders"])
            except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
                # A torn or foreign file: coverage is read from the data again and saved over it.
                log.info("ignoring the coverage index %s (%s); rebuilding it", self._path, e)
        return self._folders

    def _save(self) -> None:
        if not self._writable:
            return
        text = json.dumps({"version": _INDEX_VERSION, "folders": self._folders},
                          separators=(",", ":")).encode()
        partial = f"{self._path}.partial-{uuid.uuid4().hex[:8]}"
        try:
            if self._protocol == "file":
                # Written aside and renamed: a reader never sees half an index.
                with open(partial, "wb") as out:
                    out.write(text)
                os.replace(partial, self._path)
            else:
                self._fs.pipe_file(self._path, text)
        except Exception as e:  # noqa: BLE001 - any backend's refusal: the index stays in memory
            self._writable = False
            if self._protocol == "file" and os.path.exists(partial):
                os.unlink(partial)
            log.info("cannot save the coverage index %s (%s); keeping it in memory", self._path,
                     getattr(e, "strerror", None) or e)

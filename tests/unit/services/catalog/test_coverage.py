"""Coverage segments and holes (services/catalog/coverage.py), against hand-computed spans.

Bars are stamped at their close: a 1-minute bar stamped 10:00 covers 09:59-10:00. A hole is
more than 4 hours of market-open time without data (and more than three bars).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from services.catalog.calendars import get_calendar
from services.catalog.coverage import (
    IMPORTED,
    INDEX_FILE,
    MIXED,
    SAMPLE,
    CoverageIndex,
    FileSpan,
    build_coverage,
    file_span,
)

MINUTE = 60 * 10**9
BAR_TYPE = "TEST.SIM-1-MINUTE-LAST-EXTERNAL"


def _ns(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def _minutes(first: str, last: str) -> np.ndarray:
    """Every minute close from ``first`` to ``last`` inclusive (UTC), as int64 ns."""
    return pd.date_range(first, last, freq="1min", tz="UTC").as_unit("ns").asi8


def _coverage(*stretches: tuple[str, str], calendar: str = "24/7", step: int = MINUTE,
              sample=None):
    """Coverage of one file holding every bar of each (first, last) stretch."""
    ts = np.concatenate([_minutes(a, b) for a, b in stretches])
    span = file_span(ts, 4 * 3600 * 10**9 + step)
    return build_coverage(BAR_TYPE, "bars", [span], get_calendar(calendar), step, sample)


# -- holes against the calendar ------------------------------------------------------------


def test_five_open_hours_without_bars_are_a_hole_and_split_the_series():
    # Arrange: bars close 00:01..10:00 (600 bars), then 15:01..16:00 (60 bars): the bars that
    # would cover 10:00-15:00 are missing, 5 hours of a 24/7 market.
    # Act
    coverage = _coverage(("2024-03-04 00:01", "2024-03-04 10:00"),
                         ("2024-03-04 15:01", "2024-03-04 16:00"))

    # Assert
    assert [(s.first, s.last, s.rows) for s in coverage.segments] == [
        (pd.Timestamp("2024-03-04 00:01", tz="UTC"), pd.Timestamp("2024-03-04 10:00", tz="UTC"), 600),
        (pd.Timestamp("2024-03-04 15:01", tz="UTC"), pd.Timestamp("2024-03-04 16:00", tz="UTC"), 60)]
    [hole] = coverage.holes
    assert (hole.after, hole.until) == (pd.Timestamp("2024-03-04 10:00", tz="UTC"),
                                        pd.Timestamp("2024-03-04 15:01", tz="UTC"))
    assert hole.open_seconds == 5 * 3600
    assert coverage.rows == 660
    assert coverage.summary() == "2 segments, longest hole 5h00m"
    assert coverage.holes_summary() == "1 (5h00m)"


def test_four_open_hours_without_bars_are_not_a_hole():
    # Arrange: missing bars cover 10:00-14:00 exactly, 4 hours: not more than the minimum.
    # Act
    coverage = _coverage(("2024-03-04 00:01", "2024-03-04 10:00"),
                         ("2024-03-04 14:01", "2024-03-04 16:00"))

    # Assert
    assert len(coverage.segments) == 1 and coverage.holes == ()
    assert coverage.segments[0].rows == 600 + 120
    assert coverage.summary() == "continuous"
    assert coverage.holes_summary() == "none"


def test_nights_and_weekends_of_an_equity_are_not_holes_but_a_missing_trading_day_is():
    # Arrange: US regular hours in January are 14:30-21:00 UTC; bars close 14:31..21:00.
    # Friday 2024-01-05, then Tuesday 2024-01-09: Monday's 6.5 open hours are missing.
    days = ("2024-01-04", "2024-01-05", "2024-01-09", "2024-01-10")
    stretches = [(f"{d} 14:31", f"{d} 21:00") for d in days]

    # Act
    coverage = _coverage(*stretches, calendar="us-equity")

    # Assert
    [hole] = coverage.holes
    assert (hole.after, hole.until) == (pd.Timestamp("2024-01-05 21:00", tz="UTC"),
                                        pd.Timestamp("2024-01-09 14:31", tz="UTC"))
    assert hole.open_seconds == 6.5 * 3600
    assert [s.rows for s in coverage.segments] == [2 * 390, 2 * 390]


def test_an_exchange_holiday_is_not_a_hole_where_a_weekly_calendar_sees_one():
    # Arrange: Nasdaq closed early on Wednesday 2024-07-03 (17:00 UTC) and all of Thursday
    # 2024-07-04; it reopened Friday 13:30 UTC (summer time).
    stretches = [("2024-07-03 13:31", "2024-07-03 17:00"), ("2024-07-05 13:31", "2024-07-05 20:00")]

    # Act
    exchange = _coverage(*stretches, calendar="XNAS")
    weekly = _coverage(*stretches, calendar="us-equity")

    # Assert: the exchange calendar knows both; the weekly one counts Wednesday afternoon
    # (17:00-20:00 UTC, 3 h) and Thursday (6.5 h) as open.
    assert exchange.holes == () and exchange.calendar == "XNAS"
    [hole] = weekly.holes
    assert hole.open_seconds == (3 + 6.5) * 3600


def test_ticks_silent_over_the_fx_weekend_are_one_segment_and_on_a_weekday_two():
    # Arrange: quotes every 15 s; Friday 2024-01-05 to 21:59:45 UTC, again from Sunday 22:00
    # (New York 17:00 both), then silent Monday 08:00-13:00 UTC (5 open hours).
    ts = np.concatenate([
        pd.date_range("2024-01-05 20:00", "2024-01-05 21:59:45", freq="15s", tz="UTC").as_unit("ns").asi8,
        pd.date_range("2024-01-07 22:00", "2024-01-08 08:00", freq="15s", tz="UTC").as_unit("ns").asi8,
        pd.date_range("2024-01-08 13:00", "2024-01-08 14:00", freq="15s", tz="UTC").as_unit("ns").asi8])
    span = file_span(ts, 4 * 3600 * 10**9)

    # Act
    coverage = build_coverage("EUR/USD.SIM:quotes", "quotes", [span], get_calendar("fx"), 0)

    # Assert
    [hole] = coverage.holes
    assert (hole.after, hole.until) == (pd.Timestamp("2024-01-08 08:00", tz="UTC"),
                                        pd.Timestamp("2024-01-08 13:00", tz="UTC"))
    assert [s.rows for s in coverage.segments] == [480 + 2401, 241]


def test_a_hole_between_two_files_splits_the_series_with_each_file_s_rows():
    # Arrange: one file in January 2022, one in 2024 (the 23-month hole of a real import).
    old = FileSpan(_ns("2021-12-31 23:01"), _ns("2022-02-01 05:31"), 45_031, ())
    new = FileSpan(_ns("2024-01-01 00:01"), _ns("2025-01-01 00:00"), 527_040, ())

    # Act: files given out of order
    coverage = build_coverage(BAR_TYPE, "bars", [new, old], get_calendar("24/7"), MINUTE)

    # Assert
    assert [s.rows for s in coverage.segments] == [45_031, 527_040]
    [hole] = coverage.holes
    assert hole.open_seconds == (_ns("2024-01-01 00:00") - _ns("2022-02-01 05:31")) / 1e9
    assert coverage.describe() == ("2021-12-31 23:01\u20132022-02-01 05:31 and "
                                   "2024-01-01 00:01\u20132025-01-01 00:00")
    assert hole.describe() == "2022-02-01 05:31\u20132024-01-01 00:01 (699d of open market)"


def test_breaks_inside_a_file_keep_the_rows_before_and_after_them():
    # Arrange: 3 bars, a 6-hour silence, 2 bars; then the same in a second file.
    first = _minutes("2024-03-04 00:01", "2024-03-04 00:03")
    second = _minutes("2024-03-04 06:04", "2024-03-04 06:05")
    files = [file_span(np.concatenate([first, second]), 4 * 3600 * 10**9 + MINUTE),
             file_span(np.concatenate([first, second]) + 86_400 * 10**9,
                       4 * 3600 * 10**9 + MINUTE)]

    # Act
    coverage = build_coverage(BAR_TYPE, "bars", files, get_calendar("24/7"), MINUTE)

    # Assert: 00:03 -> 06:04 is a hole in each file; 06:05 -> next day's 00:01 is a hole
    # between the files.
    assert [s.rows for s in coverage.segments] == [3, 2, 3, 2]
    assert [s.first.strftime("%d %H:%M") for s in coverage.segments] == [
        "04 00:01", "04 06:04", "05 00:01", "05 06:04"]


def test_file_span_sorts_rows_stored_out_of_order():
    # Act
    span = file_span(np.array([_ns("2024-01-01 12:00"), _ns("2024-01-01 00:00"),
                               _ns("2024-01-01 01:00")], dtype=np.uint64), 4 * 3600 * 10**9)

    # Assert
    assert (span.first, span.last, span.rows) == (_ns("2024-01-01 00:00"),
                                                   _ns("2024-01-01 12:00"), 3)
    assert span.breaks == ((_ns("2024-01-01 01:00"), _ns("2024-01-01 12:00"), 2),)
    assert file_span(np.array([], dtype=np.int64), 1) is None


def test_many_segments_are_listed_up_to_six_then_counted():
    # Arrange: eight days of one bar each, 24/7: every day is a hole.
    files = [FileSpan(_ns(f"2024-03-0{d} 12:00"), _ns(f"2024-03-0{d} 12:00"), 1, ())
             for d in range(1, 9)]

    # Act
    coverage = build_coverage(BAR_TYPE, "bars", files, get_calendar("24/7"), MINUTE)

    # Assert
    assert len(coverage.segments) == 8
    assert coverage.describe().endswith("2024-03-06 12:00\u20132024-03-06 12:00 and 2 more")
    assert coverage.holes_summary() == "7 (longest 23h59m)"  # 12:00 to the next 11:59


def test_holes_within_a_range_are_those_that_overlap_it():
    coverage = _coverage(("2024-03-04 00:01", "2024-03-04 10:00"),
                         ("2024-03-04 15:01", "2024-03-04 16:00"),
                         ("2024-03-05 00:01", "2024-03-05 01:00"))
    t = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731

    assert len(coverage.holes) == 2
    assert coverage.holes_within(t("2024-03-04 00:00"), t("2024-03-04 09:00")) == ()
    assert coverage.holes_within(t("2024-03-04 09:00"), t("2024-03-04 11:00")) == coverage.holes[:1]
    assert coverage.holes_within(t("2024-03-04 00:00"), t("2024-03-06")) == coverage.holes
    # The bar stamped 15:01 covers 15:00-15:01: a range from 15:00 misses nothing.
    assert coverage.holes_within(t("2024-03-04 15:00"), t("2024-03-04 15:30")) == ()
    assert coverage.holes_within(t("2024-03-04 14:59"), t("2024-03-04 15:30")) == coverage.holes[:1]


# -- origin ------------------------------------------------------------------------------


def test_segments_inside_the_sample_range_are_sample_and_outside_imported():
    # Arrange: what the generator wrote is 2024-03-04 15:01..16:00.
    sample = (_ns("2024-03-04 15:01"), _ns("2024-03-04 16:00"))

    # Act
    coverage = _coverage(("2024-03-04 00:01", "2024-03-04 10:00"),
                         ("2024-03-04 15:01", "2024-03-04 16:00"), sample=sample)
    alone = _coverage(("2024-03-04 15:01", "2024-03-04 16:00"), sample=sample)
    straddling = _coverage(("2024-03-04 14:01", "2024-03-04 16:00"), sample=sample)
    unlabelled = _coverage(("2024-03-04 15:01", "2024-03-04 16:00"))

    # Assert
    assert [s.origin for s in coverage.segments] == [IMPORTED, SAMPLE]
    assert coverage.origin == MIXED
    assert alone.origin == SAMPLE
    assert straddling.origin == MIXED
    assert unlabelled.origin == IMPORTED


# -- the coverage index --------------------------------------------------------------------


class _Reads:
    """read_ts for CoverageIndex that serves arrays by path and counts the reads."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays, self.count = arrays, 0

    def __call__(self, path: str) -> np.ndarray:
        self.count += 1
        return self.arrays[path]


def _local_index(root):
    import fsspec

    return CoverageIndex(fsspec.filesystem("file"), str(root), "file")


def _info(path: str, size: int, mtime: float) -> dict:
    return {"name": path, "size": size, "mtime": mtime}


def test_the_index_reads_each_file_version_once_across_instances(tmp_path):
    # Arrange
    a, b = f"{tmp_path}/data/bar/X/a.parquet", f"{tmp_path}/data/bar/X/b.parquet"
    reads = _Reads({a: _minutes("2024-01-01 00:01", "2024-01-01 00:05"),
                    b: _minutes("2024-01-02 00:01", "2024-01-02 00:03")})
    files = [_info(a, 100, 1.5), _info(b, 200, 2.5)]

    # Act
    first = _local_index(tmp_path).spans("bar/X", files, MINUTE, reads)
    again = _local_index(tmp_path).spans("bar/X", files, MINUTE, reads)  # another process

    # Assert
    assert reads.count == 2
    assert first == again
    assert [s.rows for s in again] == [5, 3]
    stored = json.loads((tmp_path / INDEX_FILE).read_text())
    assert set(stored["folders"]["bar/X"]) == {"a.parquet", "b.parquet"}


def test_a_rewritten_file_is_read_again_and_a_deleted_one_forgotten(tmp_path):
    # Arrange
    a, b = f"{tmp_path}/data/bar/X/a.parquet", f"{tmp_path}/data/bar/X/b.parquet"
    reads = _Reads({a: _minutes("2024-01-01 00:01", "2024-01-01 00:05"),
                    b: _minutes("2024-01-02 00:01", "2024-01-02 00:03")})
    index = _local_index(tmp_path)
    index.spans("bar/X", [_info(a, 100, 1.5), _info(b, 200, 2.5)], MINUTE, reads)
    reads.arrays[a] = _minutes("2024-01-01 00:01", "2024-01-01 00:02")

    # Act: a rewritten with fewer rows (new size and time), b deleted
    spans = _local_index(tmp_path).spans("bar/X", [_info(a, 60, 9.0)], MINUTE, reads)

    # Assert
    assert reads.count == 3
    assert [s.rows for s in spans] == [2]
    stored = json.loads((tmp_path / INDEX_FILE).read_text())
    assert set(stored["folders"]["bar/X"]) == {"a.parquet"}


def test_a_torn_index_is_rebuilt_and_an_unwritable_one_kept_in_memory(tmp_path):
    # Arrange
    a = f"{tmp_path}/data/bar/X/a.parquet"
    reads = _Reads({a: _minutes("2024-01-01 00:01", "2024-01-01 00:05")})
    (tmp_path / INDEX_FILE).write_text('{"version": 1, "fold')

    # Act
    spans = _local_index(tmp_path).spans("bar/X", [_info(a, 100, 1.5)], MINUTE, reads)
    missing = _local_index(tmp_path / "no" / "such" / "folder")
    in_memory = [missing.spans("bar/X", [_info(a, 100, 1.5)], MINUTE, reads) for _ in range(2)]

    # Assert
    assert [s.rows for s in spans] == [5]
    assert "a.parquet" in json.loads((tmp_path / INDEX_FILE).read_text())["folders"]["bar/X"]
    assert in_memory[0] == in_memory[1] == spans
    assert reads.count == 2  # once for the torn index, once for the unwritable one
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("min_gap", [MINUTE, 2 * MINUTE])
def test_an_entry_made_for_another_minimum_gap_is_read_again(tmp_path, min_gap):
    # Arrange
    a = f"{tmp_path}/data/bar/X/a.parquet"
    reads = _Reads({a: _minutes("2024-01-01 00:01", "2024-01-01 00:05")})
    _local_index(tmp_path).spans("bar/X", [_info(a, 100, 1.5)], MINUTE, reads)

    # Act
    _local_index(tmp_path).spans("bar/X", [_info(a, 100, 1.5)], min_gap, reads)

    # Assert
    assert reads.count == (1 if min_gap == MINUTE else 2)

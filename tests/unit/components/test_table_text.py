"""Times and durations as the trades, fills and orders tables show them
(components/results_viewer.py)."""

from __future__ import annotations

import pandas as pd

from components.results_viewer import datetimes_text, durations_text


def test_utc_times_to_the_second_and_blank_when_missing():
    times = pd.Series([pd.Timestamp("2024-01-02 03:04:05.9", tz="UTC"), pd.NaT,
                       pd.Timestamp("2023-12-31 23:59:59", tz="UTC")])

    assert datetimes_text(times).tolist() == ["2024-01-02 03:04:05", "", "2023-12-31 23:59:59"]
    assert datetimes_text(pd.Series([], dtype="datetime64[ns, UTC]")).tolist() == []


def test_durations_in_two_units_whatever_their_order():
    spans = pd.Series(pd.to_timedelta(["1h17m", "42s", "1h17m", "3d4h", "6m5s"]))

    assert durations_text(spans).tolist() == ["1h17m", "42s", "1h17m", "3d04h", "6m05s"]
    assert durations_text(pd.Series([], dtype=object)).tolist() == []

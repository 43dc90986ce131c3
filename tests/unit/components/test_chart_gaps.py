"""The price chart breaks its line inside the holes of the run's data (components/charts.py)."""

from __future__ import annotations

import math

import numpy as np
from bokeh.models import ColumnDataSource

from components.charts import _broken_at_holes


def test_the_close_line_has_a_gap_in_the_middle_of_each_hole():
    # Arrange: closes at 00:00, 00:01 and then two days later; the hole runs 00:01 -> 2 days on.
    minute, day = 60_000.0, 86_400_000.0
    source = ColumnDataSource({"ts": np.array([0.0, minute, 2 * day]),
                               "close": np.array([1.0, 2.0, 3.0])})

    # Act
    broken = _broken_at_holes(source, [["1970-01-01T00:01:00+00:00", "1970-01-03T00:00:00+00:00"]])

    # Assert: one NaN point half-way through the hole, the closes untouched around it.
    assert broken.data["ts"].tolist() == [0.0, minute, minute + (2 * day - minute) / 2, 2 * day]
    closes = broken.data["close"].tolist()
    assert closes[:2] == [1.0, 2.0] and math.isnan(closes[2]) and closes[3] == 3.0


def test_without_holes_the_source_is_the_same():
    source = ColumnDataSource({"ts": np.array([0.0]), "close": np.array([1.0])})

    assert _broken_at_holes(source, []) is source

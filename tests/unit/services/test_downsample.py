"""minmax_decimate: at most ~max_points rows, with every bucket's first, last, min and max."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.backtest.downsample import minmax_decimate


def _by_hand(values: np.ndarray, max_points: int) -> list[int]:
    """The rows to keep, bucket by bucket: the definition the vectorised code must match."""
    n = len(values)
    if n <= max_points:
        return list(range(n))
    size = math.ceil(n / (max_points // 4))
    keep = set()
    for lo in range(0, n, size):
        hi = min(lo + size, n)
        keep.update((lo, hi - 1))
        chunk = values[lo:hi]
        if not np.isnan(chunk).all():
            keep.update((lo + int(np.nanargmin(chunk)), lo + int(np.nanargmax(chunk))))
    return sorted(keep)


def test_short_series_are_kept_whole():
    frame = pd.DataFrame({"x": [3.0, 1.0, 2.0]})

    assert minmax_decimate(frame, "x", max_points=8) is frame


def test_spike_and_trough_survive():
    # Arrange: a flat million-point curve with one spike and one trough.
    values = np.zeros(1_000_000)
    values[123_457], values[876_543] = 50.0, -80.0
    frame = pd.DataFrame({"x": values, "i": np.arange(len(values))})

    # Act
    shown = minmax_decimate(frame, "x", max_points=4000)

    # Assert
    assert len(shown) <= 4000
    assert shown["x"].max() == 50.0 and shown["x"].min() == -80.0
    assert {0, 123_457, 876_543, 999_999} <= set(shown["i"])
    assert shown["i"].is_monotonic_increasing


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))), min_size=1,
                max_size=300),
       st.integers(min_value=4, max_value=40))
def test_keeps_the_same_rows_as_the_definition(values, max_points):
    frame = pd.DataFrame({"x": values})

    shown = minmax_decimate(frame, "x", max_points)

    assert list(shown.index) == _by_hand(np.array(values, dtype=float), max_points)


@pytest.mark.parametrize("max_points", [4, 5, 7])
def test_more_buckets_than_rows_per_bucket(max_points):
    frame = pd.DataFrame({"x": [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 1.0, 2.0, 3.0]})

    shown = minmax_decimate(frame, "x", max_points)

    assert list(shown.index) == _by_hand(frame["x"].to_numpy(), max_points)

"""Reduce long series for display without losing their extremes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def minmax_decimate(frame: pd.DataFrame, column: str, max_points: int = 4000) -> pd.DataFrame:
    """Keep at most ~``max_points`` rows: per bucket the first, last, minimum and maximum of
    ``column``, so spikes and drawdown troughs survive (plain striding would drop them)."""
    if len(frame) <= max_points:
        return frame
    return frame.iloc[minmax_indices(frame[column].to_numpy(dtype="float64", na_value=np.nan),
                                     max_points)]


def minmax_indices(values: np.ndarray, max_points: int = 4000) -> np.ndarray:
    """The positions ``minmax_decimate`` keeps of ``values`` (float64), in order: per bucket of
    ``ceil(n / (max_points // 4))`` consecutive rows its first, last, minimum and maximum
    (the first of equal extremes; NaN is skipped, and an all-NaN bucket keeps only its ends)."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    size = -(-n // max(max_points // 4, 1))
    starts = np.arange(0, n, size)
    # Equal buckets reshape into rows, so each extreme is one vectorised arg-reduction (a loop
    # over the buckets costs more than the rest of a chart). The last bucket is padded.
    padded = np.full(len(starts) * size, np.nan)
    padded[:n] = values
    rows = padded.reshape(len(starts), size)
    nan = np.isnan(rows)
    lowest = np.where(nan, np.inf, rows).argmin(axis=1)
    highest = np.where(nan, -np.inf, rows).argmax(axis=1)
    ends = np.minimum(starts + size, n) - 1
    return np.unique(np.concatenate([starts, ends, starts + lowest, starts + highest]))

"""Reduce long series for display without losing their extremes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def minmax_decimate(frame: pd.DataFrame, column: str, max_points: int = 4000) -> pd.DataFrame:
    """Keep at most ~``max_points`` rows: per bucket the first, last, minimum and maximum of
    ``column``, so spikes and drawdown troughs survive (plain striding would drop them)."""
    n = len(frame)
    if n <= max_points:
        return frame
    buckets = max(max_points // 4, 1)
    edges = np.linspace(0, n, buckets + 1).astype(int)
    values = frame[column].to_numpy()
    keep = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        chunk = values[lo:hi]
        keep.extend((lo, hi - 1, lo + int(np.nanargmin(chunk)), lo + int(np.nanargmax(chunk))))
    return frame.iloc[np.unique(keep)]

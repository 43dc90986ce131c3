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
    """The positions ``minmax_decimate`` keeps of ``values`` (float64), in order."""
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    buckets = max(max_points // 4, 1)
    edges = np.unique(np.linspace(0, n, buckets + 1).astype(int))
    starts, sizes = edges[:-1], np.diff(edges)
    keep = [starts, edges[1:] - 1]
    # Vectorised over buckets (a Python loop over them costs more than the rest of a chart):
    # each bucket's extreme, then the first row of the bucket that holds it. NaN is skipped,
    # as in nanargmin; an all-NaN bucket keeps only its ends.
    for reduce in (np.fmin, np.fmax):
        extreme = np.repeat(reduce.reduceat(values, starts), sizes)
        hits = np.flatnonzero(values == extreme)
        bucket = np.searchsorted(edges, hits, side="right") - 1
        keep.append(hits[np.unique(bucket, return_index=True)[1]])
    return np.unique(np.concatenate(keep))

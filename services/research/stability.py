"""Parameter stability of a sweep: is the best point on a plateau or a lone spike?

The sweep's points lie on a grid: each varied parameter's distinct values, sorted. The neighbours
of a point are the points one grid step away along any set of parameters (diagonals included:
up to 3^d - 1 of them for d parameters). For each point this computes how much the metric drops
to its neighbours (the worst and the mean drop) and the neighbourhood-smoothed metric, the mean
over the point and its neighbours, which ranks a broad plateau above a lucky spike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from services.backtest.statistics import LOWER_IS_BETTER
from services.errors import ValidationError


@dataclass(frozen=True)
class ParameterStability:
    """Local stability of every point of a sweep over two or more parameters."""

    metric: str
    parameters: tuple[str, ...]
    higher_is_better: bool
    # One row per point with a metric: the parameters, the metric, worst_drop and mean_drop to
    # its neighbours (worse by that much; NaN without neighbours), neighbours (count) and
    # smoothed; best smoothed first.
    table: pd.DataFrame
    excluded: int  # points without a metric value (runs without trades or not completed)
    best: dict  # parameters of the best point by the metric itself
    best_smoothed: dict  # parameters of the best point by the smoothed metric
    reading: str

    def heatmap(self, column: str, x: str, y: str) -> pd.DataFrame:
        """Return ``column`` over parameters ``x`` (columns) and ``y`` (rows); the mean where
        other parameters also vary, as the sweep heatmap draws the metric."""
        for name in (x, y):
            if name not in self.parameters:
                raise ValidationError(f"{name!r} is not one of the parameters "
                                      f"{', '.join(self.parameters)}.")
        if column not in self.table.columns:
            raise ValidationError(f"{column!r} is not a column of the stability table; choose "
                                  f"from {', '.join(self.table.columns)}.")
        return self.table.pivot_table(index=y, columns=x, values=column, aggfunc="mean")


def _neighbour_shifts(grid: np.ndarray) -> np.ndarray:
    """Stack of the grid shifted by every offset in {-1, 0, 1}^d (the zero offset first);
    NaN where the shift leaves the grid."""
    d = grid.ndim
    padded = np.pad(grid, 1, constant_values=np.nan)
    offsets = [o for o in product((-1, 0, 1), repeat=d) if any(o)]
    views = [grid]
    for offset in offsets:
        index = tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, grid.shape, strict=True))
        views.append(padded[index])
    return np.stack(views)


def parameter_stability(points: pd.DataFrame, parameters: Sequence[str], metric: str,
                        higher_is_better: bool | None = None) -> ParameterStability:
    """Return the local stability and the smoothed metric of every point of a sweep.

    Parameters
    ----------
    points : pd.DataFrame
        One row per run, with a column per parameter and one for ``metric`` (a sweep's
        leaderboard); NaN or None where a run has no value.
    parameters : Sequence[str]
        Every parameter the sweep varies (two or more).
    metric : str
        Column to assess.
    higher_is_better : bool, optional
        Direction of the metric; by default that of the workbench's statistics (lower is better
        for e.g. volatility).

    Raises
    ------
    ValidationError
        Fewer than two parameters, a missing column, a parameter with a single value, two runs
        on the same grid point, or no point with a value.
    """
    names = tuple(parameters)
    if len(names) < 2:
        raise ValidationError(f"Parameter stability needs a sweep over 2 or more parameters; got "
                              f"{list(names)}.")
    missing = [c for c in (*names, metric) if c not in points.columns]
    if missing:
        raise ValidationError(f"{', '.join(map(repr, missing))} not among the sweep's columns "
                              f"({', '.join(map(str, points.columns))}).")
    if higher_is_better is None:
        higher_is_better = metric not in LOWER_IS_BETTER
    for name in names:
        values = points[name].dropna().unique()
        if len(values) < 2:
            raise ValidationError(f"Parameter {name!r} takes one value ({values[0] if len(values) else 'none'}); "
                                  "stability needs every listed parameter to vary.")
    duplicated = points.duplicated(subset=list(names), keep=False)
    if duplicated.any():
        first = points.loc[duplicated, list(names)].iloc[0].to_dict()
        raise ValidationError(
            f"{int(duplicated.sum())} runs share grid points (e.g. {first}): list every "
            "parameter the sweep varies.")

    value = pd.to_numeric(points[metric], errors="coerce").astype(float)
    has_value = np.isfinite(value.to_numpy())
    if not has_value.any():
        raise ValidationError(f"No run has a value for {metric!r}: none can be assessed.")
    axes = [np.sort(points[name].unique()) for name in names]
    codes = tuple(np.searchsorted(axis, points[name].to_numpy()) for axis, name in
                  zip(axes, names, strict=True))
    sign = 1.0 if higher_is_better else -1.0
    grid = np.full([len(a) for a in axes], np.nan)
    grid[tuple(c[has_value] for c in codes)] = sign * value.to_numpy()[has_value]

    shifted = _neighbour_shifts(grid)
    centre, around = shifted[0], shifted[1:]
    present = np.isfinite(around)
    count = present.sum(axis=0)
    drops = np.where(present, centre - around, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        worst = np.where(count > 0, np.fmax.reduce(drops, axis=0), np.nan)
        mean = np.where(count > 0, np.nansum(drops, axis=0) / count, np.nan)
        smoothed = (centre + np.nansum(around, axis=0)) / (count + 1)

    at = tuple(c[has_value] for c in codes)
    table = points.loc[has_value, list(names)].copy()
    table[metric] = value[has_value].to_numpy()
    table["worst_drop"] = np.maximum(worst[at], 0.0)
    table["mean_drop"] = mean[at]
    table["neighbours"] = count[at]
    table["smoothed"] = sign * smoothed[at]
    table = table.sort_values("smoothed", ascending=not higher_is_better,
                              kind="stable").reset_index(drop=True)
    best_row = table.loc[(sign * table[metric]).idxmax()]
    smooth_row = table.iloc[0]
    best = {n: best_row[n] for n in names}
    best_smoothed = {n: smooth_row[n] for n in names}
    return ParameterStability(
        metric=metric, parameters=names, higher_is_better=higher_is_better, table=table,
        excluded=int((~has_value).sum()), best=best, best_smoothed=best_smoothed,
        reading=_reading(metric, best, best_row, best_smoothed, smooth_row))


def _point(parameters: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in parameters.items())


def _reading(metric: str, best: dict, best_row: pd.Series, best_smoothed: dict,
             smooth_row: pd.Series) -> str:
    drop = best_row["worst_drop"]
    drop_text = (f"its neighbours are up to {drop:.3g} worse" if np.isfinite(drop)
                 else "it has no neighbours on the grid")
    if best == best_smoothed:
        return (f"The best {metric} ({best_row[metric]:.3g} at {_point(best)}) sits on a plateau: "
                f"it is also best averaged with its neighbours ({smooth_row['smoothed']:.3g}); "
                f"{drop_text}.")
    return (f"The best {metric} ({best_row[metric]:.3g} at {_point(best)}) is a spike: "
            f"{drop_text}; the most robust region is around {_point(best_smoothed)} (smoothed "
            f"{smooth_row['smoothed']:.3g} against {best_row['smoothed']:.3g}).")

"""Parameter stability of a sweep: is the best point on a plateau or a lone spike?

The sweep's points lie on a grid: each varied parameter's distinct values, sorted. The neighbours
of a point are the points one grid step away along any set of parameters (diagonals included:
up to 3^d - 1 of them for d parameters). For each point this computes how much the metric drops
to its neighbours (the worst and the mean drop) and the neighbourhood-smoothed metric: the mean
of the point's own value and of its neighbours' mean, so that the neighbourhood weighs half
whether the point is inside the grid or on its edge. It ranks a broad plateau above a lucky
spike: a lone spike keeps only half its height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from services.backtest.metric_labels import LOWER_IS_BETTER, format_statistic, metric_label
from services.errors import ValidationError

# A best point whose neighbours are on average this share of the grid's range worse (or more)
# reads as a spike; below, as a plateau.
SPIKE_DROP = 0.5


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
        if points[name].isna().any():
            raise ValidationError(f"{int(points[name].isna().sum())} of {len(points)} runs have no "
                                  f"value for parameter {name!r}; list only parameters every run "
                                  "sets.")
        values = points[name].unique()
        if len(values) < 2:
            raise ValidationError(f"Parameter {name!r} takes one value ({values[0]}); stability "
                                  "needs every listed parameter to vary.")
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
        neighbourhood = np.nansum(around, axis=0) / count
        smoothed = np.where(count > 0, (centre + neighbourhood) / 2, centre)

    at = tuple(c[has_value] for c in codes)
    table = points.loc[has_value, list(names)].copy()
    table[metric] = value[has_value].to_numpy()
    table["worst_drop"] = np.maximum(worst[at], 0.0)
    table["mean_drop"] = mean[at]
    table["neighbours"] = count[at]
    table["smoothed"] = sign * smoothed[at]
    table = table.sort_values("smoothed", ascending=not higher_is_better,
                              kind="stable").reset_index(drop=True)
    # Among equal values the first in the table, i.e. the best smoothed, is the best point.
    best_at = int(np.argmax(sign * table[metric].to_numpy()))
    best = _parameters(table, best_at, names)
    best_smoothed = _parameters(table, 0, names)
    spread = float(np.ptp(table[metric].to_numpy()))
    return ParameterStability(
        metric=metric, parameters=names, higher_is_better=higher_is_better, table=table,
        excluded=int((~has_value).sum()), best=best, best_smoothed=best_smoothed,
        reading=_reading(metric, table.iloc[best_at], best, table.iloc[0], best_smoothed,
                         spread))


def _parameters(table: pd.DataFrame, row: int, names: tuple[str, ...]) -> dict:
    """The parameter values of one row, as plain Python values."""
    values = {n: table[n].iloc[row] for n in names}
    return {n: v.item() if isinstance(v, np.generic) else v for n, v in values.items()}


def _point(parameters: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in parameters.items())


def _reading(metric: str, best_row: pd.Series, best: dict, smooth_row: pd.Series,
             best_smoothed: dict, spread: float) -> str:
    text = f"The best {metric_label(metric)} ({best_row[metric]:.3g} at {_point(best)})"
    drop = best_row["mean_drop"]
    if not np.isfinite(drop):
        text += " has no neighbours on the grid"
    else:
        share = drop / spread if spread > 0 else 0.0
        shape = "is a spike" if share >= SPIKE_DROP else "sits on a plateau"
        text += (f" {shape}: its neighbours are on average {drop:.3g} worse "
                 f"({format_statistic('win_rate', share)} of the grid's range)")
    if best == best_smoothed:
        return text + f"; it is also best smoothed ({smooth_row['smoothed']:.3g})."
    return text + (f"; the most robust region is around {_point(best_smoothed)} (smoothed "
                   f"{smooth_row['smoothed']:.3g} against {best_row['smoothed']:.3g}).")

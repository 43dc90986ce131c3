"""Tests of services/research/stability.py: local stability and smoothed metric on a grid.

Every expected number is worked out by hand from the grid drawn in the test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.errors import ValidationError
from services.research import parameter_stability


def _points(grid: list[list[float]], xs, ys, metric: str = "sharpe") -> pd.DataFrame:
    """A leaderboard-like frame: rows ``ys`` (slow), columns ``xs`` (fast) of ``grid``."""
    return pd.DataFrame([{"fast": x, "slow": y, metric: grid[i][j]}
                         for i, y in enumerate(ys) for j, x in enumerate(xs)])


def _row(result, **where) -> pd.Series:
    table = result.table
    mask = np.logical_and.reduce([table[k] == v for k, v in where.items()])
    (index,) = np.flatnonzero(mask)
    return table.iloc[index]


def test_a_lone_spike_drops_to_all_its_neighbours():
    # Arrange: 3 x 3 grid, 10 in the middle, 0 around it.
    points = _points([[0, 0, 0], [0, 10, 0], [0, 0, 0]], xs=[5, 10, 20], ys=[30, 60, 90])

    # Act
    result = parameter_stability(points, ["fast", "slow"], "sharpe")

    # Assert: the centre drops by 10 to each of its 8 neighbours; smoothed (10 + 0) / 2.
    centre = _row(result, fast=10, slow=60)
    assert (centre["worst_drop"], centre["mean_drop"], centre["neighbours"]) == (10, 10, 8)
    assert centre["smoothed"] == 5
    # A corner has 3 neighbours (0, 0, 10): it never drops; they average 10/3 above it.
    corner = _row(result, fast=5, slow=30)
    assert corner["worst_drop"] == 0 and corner["neighbours"] == 3
    assert corner["mean_drop"] == pytest.approx(-10 / 3)
    assert corner["smoothed"] == pytest.approx((0 + 10 / 3) / 2)
    # An edge point has 5 neighbours, one of them the spike: smoothed (0 + 10 / 5) / 2.
    assert _row(result, fast=10, slow=30)["smoothed"] == pytest.approx(1.0)
    assert result.best == result.best_smoothed == {"fast": 10, "slow": 60}
    assert result.reading == ("The best Sharpe (10 at fast=10, slow=60) is a spike: its "
                              "neighbours are on average 10 worse (100.00 % of the grid's "
                              "range); it is also best smoothed (5).")


def test_a_plateau_outranks_a_higher_spike_when_smoothed():
    # Arrange: a 3 x 3 plateau of 5s inside a 6 x 6 grid of 0s, and a spike of 8 in a corner.
    grid = [[0] * 6 for _ in range(6)]
    for i in (1, 2, 3):
        for j in (1, 2, 3):
            grid[i][j] = 5
    grid[5][5] = 8
    points = _points(grid, xs=[2, 4, 6, 8, 10, 12], ys=[10, 20, 30, 40, 50, 60])

    # Act
    result = parameter_stability(points, ["fast", "slow"], "sharpe")

    # Assert: the plateau's middle has 8 neighbours at 5 (no drop): smoothed 5. The spike's 3
    # neighbours are 0: smoothed (8 + 0) / 2 = 4. A plateau corner: (5 + 15 / 8) / 2.
    middle = _row(result, fast=6, slow=30)
    assert (middle["worst_drop"], middle["mean_drop"], middle["smoothed"]) == (0, 0, 5)
    spike = _row(result, fast=12, slow=60)
    assert (spike["worst_drop"], spike["mean_drop"], spike["smoothed"]) == (8, 8, 4)
    assert _row(result, fast=4, slow=20)["smoothed"] == pytest.approx((5 + 15 / 8) / 2)
    assert result.best == {"fast": 12, "slow": 60}
    assert result.best_smoothed == {"fast": 6, "slow": 30}
    assert list(result.table.iloc[0][["fast", "slow"]]) == [6, 30]
    assert result.reading == ("The best Sharpe (8 at fast=12, slow=60) is a spike: its "
                              "neighbours are on average 8 worse (100.00 % of the grid's range); "
                              "the most robust region is around fast=6, slow=30 (smoothed 5 "
                              "against 4).")


def test_the_best_point_of_a_plateau_reads_as_a_plateau():
    # Arrange: a 3 x 3 plateau of 5s ringed by 4s on a 5 x 5 grid.
    grid = [[4] * 5 for _ in range(5)]
    for i in (1, 2, 3):
        for j in (1, 2, 3):
            grid[i][j] = 5
    points = _points(grid, xs=[1, 2, 3, 4, 5], ys=[1, 2, 3, 4, 5])

    # Act
    result = parameter_stability(points, ["fast", "slow"], "sharpe")

    # Assert: among the nine 5s the middle one is best smoothed (its neighbours are all 5s).
    assert result.best == result.best_smoothed == {"fast": 3, "slow": 3}
    assert _row(result, fast=2, slow=2)["smoothed"] == pytest.approx((5 + (3 * 5 + 5 * 4) / 8) / 2)
    assert result.reading.startswith("The best Sharpe (5 at fast=3, slow=3) sits on a plateau: "
                                     "its neighbours are on average 0 worse (0.00 % of")


def test_lower_is_better_metrics_count_rises_as_drops():
    # Arrange: volatility (lower is better) of 0.1 in the middle, 0.4 around it.
    points = _points([[0.4] * 3, [0.4, 0.1, 0.4], [0.4] * 3], xs=[1, 2, 3], ys=[1, 2, 3],
                     metric="volatility")

    # Act
    result = parameter_stability(points, ["fast", "slow"], "volatility")

    # Assert: the middle is best, 0.3 worse at each neighbour, smoothed (0.1 + 0.4) / 2.
    assert not result.higher_is_better
    assert result.best == result.best_smoothed == {"fast": 2, "slow": 2}
    middle = _row(result, fast=2, slow=2)
    assert middle["worst_drop"] == pytest.approx(0.3) == middle["mean_drop"]
    assert middle["smoothed"] == pytest.approx(0.25)
    # A corner: 0.4 and neighbours 0.4, 0.4, 0.1 (mean 0.3): smoothed 0.35, lowest first.
    assert _row(result, fast=1, slow=1)["smoothed"] == pytest.approx(0.35)
    assert list(result.table["smoothed"]) == sorted(result.table["smoothed"])


def test_runs_without_a_metric_are_left_out_and_are_nobody_s_neighbour():
    # Arrange: the middle run made no trades (no Sharpe ratio).
    points = _points([[1, 2, 3], [4, np.nan, 6], [7, 8, 9]], xs=[1, 2, 3], ys=[1, 2, 3])
    points.loc[4, "sharpe"] = None

    # Act
    result = parameter_stability(points, ["fast", "slow"], "sharpe")

    # Assert: 8 points; the corner (1, 1) now has neighbours 2 and 4 only (mean 3).
    assert result.excluded == 1 and len(result.table) == 8
    corner = _row(result, fast=1, slow=1)
    assert corner["neighbours"] == 2
    assert corner["smoothed"] == pytest.approx((1 + 3) / 2)
    assert corner["worst_drop"] == 0 and corner["mean_drop"] == pytest.approx(-2)


def test_three_parameters_have_26_neighbours_inside_the_cube():
    # Arrange: metric = a + b + c on a 3 x 3 x 3 grid.
    points = pd.DataFrame([{"a": a, "b": b, "c": c, "sharpe": float(a + b + c)}
                           for a in range(3) for b in range(3) for c in range(3)])

    # Act
    result = parameter_stability(points, ["a", "b", "c"], "sharpe")

    # Assert: the centre (3) sees 26 neighbours, symmetric about it: mean drop 0, worst 3 (to 0).
    centre = result.table[(result.table[["a", "b", "c"]] == 1).all(axis=1)].iloc[0]
    assert centre["neighbours"] == 26
    assert centre["mean_drop"] == pytest.approx(0.0)
    assert centre["worst_drop"] == 3
    assert centre["smoothed"] == pytest.approx(3.0)


def test_heatmap_of_a_stability_column():
    # Arrange
    points = _points([[0, 0, 0], [0, 10, 0], [0, 0, 0]], xs=[5, 10, 20], ys=[30, 60, 90])
    result = parameter_stability(points, ["fast", "slow"], "sharpe")

    # Act
    heat = result.heatmap("worst_drop", "fast", "slow")

    # Assert
    assert list(heat.columns) == [5, 10, 20] and list(heat.index) == [30, 60, 90]
    assert heat.loc[60, 10] == 10 and heat.loc[30, 5] == 0
    with pytest.raises(ValidationError, match="'nope' is not a column"):
        result.heatmap("nope", "fast", "slow")


@pytest.mark.parametrize(("frame", "parameters", "message"), [
    (pd.DataFrame({"fast": [1, 2], "sharpe": [1.0, 2.0]}), ["fast"],
     "needs a sweep over 2 or more parameters; got ['fast']"),
    (pd.DataFrame({"fast": [1, 2], "slow": [3, 4]}), ["fast", "slow"],
     "'sharpe' not among the sweep's columns"),
    (pd.DataFrame({"fast": [1, 2], "slow": [3, 3], "sharpe": [1.0, 2.0]}), ["fast", "slow"],
     "Parameter 'slow' takes one value (3)"),
    (pd.DataFrame({"fast": [1, 1, 2], "slow": [3, 3, 4], "sharpe": [1.0, 2.0, 3.0]}),
     ["fast", "slow"], "2 runs share grid points (e.g. {'fast': 1, 'slow': 3})"),
    (pd.DataFrame({"fast": [1, 2], "slow": [3, 4], "sharpe": [None, None]}), ["fast", "slow"],
     "No run has a value for 'sharpe'"),
    (pd.DataFrame({"fast": [1, None], "slow": [3, 4], "sharpe": [1.0, 2.0]}), ["fast", "slow"],
     "1 of 2 runs have no value for parameter 'fast'"),
])
def test_bad_input_is_refused_in_one_line(frame, parameters, message):
    with pytest.raises(ValidationError) as raised:
        parameter_stability(frame, parameters, "sharpe")
    assert message in str(raised.value) and "\n" not in str(raised.value)

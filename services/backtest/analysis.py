"""A sweep's runs side by side: the leaderboard, the heatmap over two parameters, the local
stability of a metric over the grid, the metrics they can be ranked by."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from services.backtest.metric_labels import LOWER_IS_BETTER
from services.backtest.records import COMPLETED, NOT_A_METRIC, RunInfo, SweepInfo, is_number
from services.errors import BacktestError, ValidationError
from services.research.stability import ParameterStability, parameter_stability

HEADLINE = ("total_return", "sharpe", "max_drawdown", "num_trades")


def sweep_metrics(info: SweepInfo, statistics: Callable[[RunInfo], dict]) -> list[str]:
    """The metrics a sweep's completed runs can be ranked by (sharpe, total_return, ...)."""
    for run in info.runs:
        if run.status == COMPLETED:
            stats = statistics(run)
            return [k for k, v in stats.items() if k not in NOT_A_METRIC and is_number(v)]
    return list(HEADLINE)


RANK_BY = ("metric", "smoothed")


def leaderboard(info: SweepInfo, metric: str, statistics: Callable[[RunInfo], dict],
                by: str = "metric") -> pd.DataFrame:
    """One row per run: status, the varied parameters, ``metric`` and the headline metrics;
    completed runs best first (higher is better, except for e.g. volatility).

    ``by="smoothed"`` adds each point's neighbourhood-smoothed metric and its worst drop to a
    neighbour (``parameter_stability``) and ranks by the smoothed metric: a plateau before a
    lone spike.
    """
    if by not in RANK_BY:
        raise ValidationError(f"Rank by one of {', '.join(RANK_BY)}, not {by!r}.")
    board = _leaderboard(info, metric, statistics)
    if by == "metric" or board.empty:
        return board
    table = stability_of(board, info, metric).table
    varied = [n for n in _varied(info) if n in table.columns]
    extra = table[[*varied, "smoothed", "worst_drop"]]
    merged = board.merge(extra, on=varied, how="left")
    return merged.sort_values("smoothed", ascending=metric in LOWER_IS_BETTER,
                              na_position="last", kind="stable").reset_index(drop=True)


def stability(info: SweepInfo, metric: str, statistics: Callable[[RunInfo], dict]
              ) -> ParameterStability:
    """Local stability of ``metric`` over the grid of the sweep's completed runs."""
    return stability_of(_leaderboard(info, metric, statistics), info, metric)


def _varied(info: SweepInfo) -> list[str]:
    return list((info.spec.get("grid") or {}).keys())


def stability_of(board: pd.DataFrame, info: SweepInfo, metric: str) -> ParameterStability:
    done = board[board["status"] == COMPLETED]
    if done.empty:
        raise ValidationError("No run of the sweep has completed yet: there is no grid to "
                              "assess.")
    # Parameters given one value do not span the grid.
    varied = [n for n in _varied(info) if done[n].nunique() > 1]
    return parameter_stability(done, varied, metric)


def _leaderboard(info: SweepInfo, metric: str, statistics: Callable[[RunInfo], dict]
                 ) -> pd.DataFrame:
    varied = list((info.spec.get("grid") or {}).keys())
    rows = []
    for run in info.runs:
        stats = statistics(run) if run.status == COMPLETED else {}
        value = stats.get(metric)
        rows.append({
            "run_id": run.run_id, "status": run.status,
            **{name: run.parameters.get(name) for name in varied},
            metric: value if is_number(value) else None,
            **{k: stats.get(k) for k in HEADLINE if k != metric},
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if metric in NOT_A_METRIC or not any(is_number(v) for v in frame[metric]) \
            and any(r.status == COMPLETED for r in info.runs):
        raise BacktestError(f"{metric!r} is not a metric of these runs; choose one of "
                            f"{', '.join(sweep_metrics(info, statistics))}")
    ascending = metric in LOWER_IS_BETTER
    return frame.sort_values(metric, ascending=ascending, na_position="last",
                             kind="stable").reset_index(drop=True)


def heatmap(info: SweepInfo, metric: str, x: str, y: str,
            statistics: Callable[[RunInfo], dict]) -> pd.DataFrame:
    """``metric`` of the completed runs over two varied parameters: rows ``y``, columns ``x``
    (the mean where other parameters also vary)."""
    board = _leaderboard(info, metric, statistics)
    for name in (x, y):
        if name not in board.columns or name in ("run_id", "status", metric):
            raise BacktestError(f"{name!r} is not a parameter this sweep varies; choose from "
                                f"{', '.join(info.spec.get('grid') or {})}")
    if x == y:
        raise BacktestError("Choose two different parameters for the heatmap.")
    done = board[board["status"] == COMPLETED].dropna(subset=[metric])
    return done.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")

"""A sweep's runs side by side: the leaderboard, the heatmap over two parameters, the metrics
they can be ranked by."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from services.backtest.metric_labels import LOWER_IS_BETTER
from services.backtest.records import COMPLETED, NOT_A_METRIC, RunInfo, SweepInfo, is_number
from services.errors import BacktestError

HEADLINE = ("total_return", "sharpe", "max_drawdown", "num_trades")


def sweep_metrics(info: SweepInfo, statistics: Callable[[RunInfo], dict]) -> list[str]:
    """The metrics a sweep's completed runs can be ranked by (sharpe, total_return, ...)."""
    for run in info.runs:
        if run.status == COMPLETED:
            stats = statistics(run)
            return [k for k, v in stats.items() if k not in NOT_A_METRIC and is_number(v)]
    return list(HEADLINE)


def leaderboard(info: SweepInfo, metric: str, statistics: Callable[[RunInfo], dict]
                ) -> pd.DataFrame:
    """One row per run: status, the varied parameters, ``metric`` and the headline metrics;
    completed runs best first (higher is better, except for e.g. volatility)."""
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
    board = leaderboard(info, metric, statistics)
    for name in (x, y):
        if name not in board.columns or name in ("run_id", "status", metric):
            raise BacktestError(f"{name!r} is not a parameter this sweep varies; choose from "
                                f"{', '.join(info.spec.get('grid') or {})}")
    if x == y:
        raise BacktestError("Choose two different parameters for the heatmap.")
    done = board[board["status"] == COMPLETED].dropna(subset=[metric])
    return done.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")

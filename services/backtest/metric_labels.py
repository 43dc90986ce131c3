"""What each backtest metric is called, what kind of number it is, how it is shown and which
way is better. No pandas: the CLI's quick commands (``backtest list``) format with it."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from services.formatting import (
    NOT_AVAILABLE,
    format_count,
    format_money,
    format_percent,
    format_ratio,
)

HEADLINE_LABELS = {
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "volatility": ("Volatility (ann.)", "pct"),
    "sharpe": ("Sharpe", "ratio"),
    "sortino": ("Sortino", "ratio"),
    "calmar": ("Calmar", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "win_rate": ("Win rate", "pct"),
    "profit_factor": ("Profit factor", "ratio"),
    "expectancy": ("Expectancy", "money"),
    "num_trades": ("Trades", "int"),
    "time_in_market": ("Time in market", "pct"),
    "commissions": ("Commissions", "money"),
    "final_equity": ("Final equity", "money"),
}

# Every metric with its label and kind, grouped as the results viewer and report show them.
METRIC_GROUPS = {
    "Returns": {
        "total_return": ("Total return", "pct"), "cagr": ("CAGR", "pct"),
        "best_day": ("Best day", "pct"), "worst_day": ("Worst day", "pct"),
        "best_month": ("Best month", "pct"), "worst_month": ("Worst month", "pct"),
        "final_equity": ("Final equity", "money"),
    },
    "Risk": {
        "volatility": ("Volatility (ann.)", "pct"), "max_drawdown": ("Max drawdown", "pct"),
        "max_drawdown_amount": ("Max drawdown amount", "money"),
        "max_drawdown_peak": ("Max drawdown peak", "time"),
        "max_drawdown_trough": ("Max drawdown trough", "time"),
        "max_drawdown_recovery": ("Recovered", "time"),
        "max_drawdown_recovery_days": ("Time to recover (days)", "ratio"),
        "longest_drawdown_days": ("Longest drawdown (days)", "ratio"),
        "var_95": ("Daily VaR 95 %", "pct"), "cvar_95": ("Daily CVaR 95 %", "pct"),
        "skew": ("Skew", "ratio"), "kurtosis": ("Excess kurtosis", "ratio"),
    },
    "Risk-adjusted": {
        "sharpe": ("Sharpe", "ratio"), "sortino": ("Sortino", "ratio"),
        "calmar": ("Calmar", "ratio"), "omega": ("Omega", "ratio"),
        "tail_ratio": ("Tail ratio", "ratio"),
    },
    "Against buy-and-hold": {
        "benchmark_return": ("Buy-and-hold return", "pct"), "alpha": ("Alpha (ann.)", "pct"),
        "beta": ("Beta", "ratio"), "correlation": ("Correlation", "ratio"),
        "information_ratio": ("Information ratio", "ratio"),
    },
    "Trades": {
        "num_trades": ("Trades", "int"), "long_trades": ("Long", "int"),
        "short_trades": ("Short", "int"), "win_rate": ("Win rate", "pct"),
        "average_win": ("Average win", "money"), "average_loss": ("Average loss", "money"),
        "payoff_ratio": ("Payoff ratio", "ratio"), "profit_factor": ("Profit factor", "ratio"),
        "expectancy": ("Expectancy", "money"), "largest_win": ("Largest win", "money"),
        "largest_loss": ("Largest loss", "money"),
        "longest_winning_streak": ("Longest winning streak", "int"),
        "longest_losing_streak": ("Longest losing streak", "int"),
        "average_holding_hours": ("Average holding (hours)", "ratio"),
        "commissions": ("Commissions", "money"), "turnover": ("Turnover (x equity)", "ratio"),
        "time_in_market": ("Time in market", "pct"),
    },
}
_KINDS = {k: v[1] for group in METRIC_GROUPS.values() for k, v in group.items()} | {
    k: v[1] for k, v in HEADLINE_LABELS.items()}
_LABELS = {k: v[0] for group in METRIC_GROUPS.values() for k, v in group.items()} | {
    k: v[0] for k, v in HEADLINE_LABELS.items()}
METRIC_KEYS = frozenset(_KINDS)  # every metric with a label and a kind


def format_statistic(key: str, value, currency: str = "") -> str:
    """Human text for a statistic: ``n/a`` for undefined values, never ``nan`` or ``inf``."""
    kind = _KINDS.get(key, "ratio")
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NOT_AVAILABLE
    if kind == "time":
        return _as_datetime(value).strftime("%Y-%m-%d %H:%M")
    if kind == "pct":
        return format_percent(value)
    if kind == "int":
        return format_count(value)
    if kind == "money":
        return format_money(value, currency)
    return format_ratio(value)


def metric_kind(key: str) -> str:
    """pct, ratio, money, int or time: how the metric ``key`` reads."""
    return _KINDS.get(key, "ratio")


def metric_label(key: str) -> str:
    """What the metric ``key`` is called ("Sharpe", "Total return"); the key if unknown."""
    return _LABELS.get(key, key)

# Which way is better, for highlighting the best run of a comparison: +1 higher, -1 lower.
# (Drawdowns and VaR are negative returns, so "higher" means shallower.)
LOWER_IS_BETTER = {"volatility", "commissions", "longest_drawdown_days",
                   "max_drawdown_recovery_days", "longest_losing_streak"}
NOT_RANKED = {"metrics_version", "bars", "start", "end", "starting_balance", "periods_per_year", "num_trades",
              "long_trades", "short_trades", "turnover", "average_holding_hours", "beta",
              "correlation", "skew", "kurtosis", "benchmark_return", "time_in_market",
              "max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery",
              "final_equity", "max_drawdown_amount", "average_win", "average_loss",
              "largest_win", "largest_loss", "expectancy"}


# Metrics a sweep's runs can be ranked by: every numeric metric a run records.
RANKABLE_METRICS = tuple(sorted({k for group in METRIC_GROUPS.values()
                                 for k, (_label, kind) in group.items() if kind != "time"}))


def best_index(key: str, values: list) -> int | None:
    """Index of the best of ``values`` for metric ``key`` (None if unranked or no numbers)."""
    if key in NOT_RANKED:
        return None
    numbers = [(v, i) for i, v in enumerate(values)
               if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(numbers) < 2:
        return None
    pick = min if key in LOWER_IS_BETTER else max
    best_value, best_at = pick(numbers)
    if sum(1 for v, _ in numbers if v == best_value) > 1:
        return None  # a tie has no single winner
    return best_at


def _as_datetime(value) -> datetime:
    """A time metric as stored (ISO text, a datetime, or UTC nanoseconds)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1e9, tz=UTC)
    return datetime.fromisoformat(str(value))

"""Mark-to-market equity and run statistics, computed vectorised from a run's fills and prices.

NautilusTrader's own account report moves only when cash moves (a position's PnL appears when
it closes); the equity here is marked at every bar close, so drawdowns inside open positions
show. Every ratio that is undefined (zero volatility, no losing trade, no drawdown) is ``None``,
never ``inf`` or ``NaN``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Bumped when metrics are added or their definitions change; older runs are recomputed.
METRICS_VERSION = 2
_DAY = pd.Timedelta(days=1)
_YEAR_DAYS = 365.25


def mark_to_market(
    closes: pd.Series,
    fills: pd.DataFrame,
    starting_balance: float,
    multiplier: float = 1.0,
) -> pd.DataFrame:
    """Return equity, position and cash at every price in ``closes``.

    Parameters
    ----------
    closes : pd.Series
        Close prices indexed by UTC time (bar close times), sorted.
    fills : pd.DataFrame
        One row per fill with columns ``ts`` (UTC), ``side`` (BUY/SELL), ``quantity``,
        ``price`` and ``commission`` (in the account currency).
    starting_balance : float
        Account balance before the first fill.
    multiplier : float
        Contract multiplier of a linear instrument.

    A fill at the same time as a bar close counts in that bar (bars execute at their close).
    """
    times = closes.index.as_unit("ns").asi8
    if len(fills):
        fills = fills.sort_values("ts", kind="stable")
        signed = np.where(fills["side"].to_numpy() == "BUY", 1.0, -1.0) * fills["quantity"].to_numpy(float)
        cash_flow = -signed * fills["price"].to_numpy(float) * multiplier - fills["commission"].to_numpy(float)
        fill_times = pd.DatetimeIndex(fills["ts"]).as_unit("ns").asi8
        upto = np.searchsorted(fill_times, times, side="right")
        cum_position = np.r_[0.0, np.cumsum(signed)][upto]
        cum_cash = np.r_[0.0, np.cumsum(cash_flow)][upto]
    else:
        cum_position = np.zeros(len(times))
        cum_cash = np.zeros(len(times))
    price = closes.to_numpy(float)
    # Rounding noise of float sums must not leave a "position" of 1e-17 after going flat.
    cum_position = np.where(np.abs(cum_position) < 1e-12, 0.0, cum_position)
    equity = starting_balance + cum_cash + cum_position * price * multiplier
    frame = pd.DataFrame(
        {"close": price, "position": cum_position, "equity": equity}, index=closes.index
    )
    # The starting balance is the first peak: a loss on the first bar is a drawdown too.
    peak = np.maximum(frame["equity"].cummax().to_numpy(), starting_balance)
    frame["drawdown"] = frame["equity"].to_numpy() / peak - 1.0
    return frame


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _ratio(numerator, denominator) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return _finite(numerator / denominator)


def daily_returns(equity: pd.Series, starting_balance: float | None = None) -> pd.Series:
    """Close-to-close returns of the equity on each UTC day that has data; with
    ``starting_balance`` the first day's return is measured from it."""
    daily = equity.resample("1D").last().dropna()
    returns = daily.pct_change()
    if starting_balance and len(daily):
        returns.iloc[0] = daily.iloc[0] / starting_balance - 1.0
    return returns.dropna()


def periods_per_year(equity: pd.Series) -> float:
    """Days with data per calendar year: ~365 for 24/7 markets, ~260 for weekday markets."""
    if len(equity) < 2:
        return 365.0
    days_with_data = equity.resample("1D").last().dropna().size
    calendar_days = (equity.index[-1].normalize() - equity.index[0].normalize()) / _DAY + 1
    if calendar_days < 2:
        return 365.0
    return min(_YEAR_DAYS * days_with_data / calendar_days, 366.0)


def period_returns(equity: pd.Series, starting_balance: float, freq: str) -> pd.Series:
    """Returns per calendar period ("ME" months, "YE" years), the first from the starting balance."""
    closes = equity.resample(freq).last().dropna()
    if closes.empty:
        return closes
    previous = closes.shift(1)
    previous.iloc[0] = starting_balance
    return closes / previous - 1.0


def drawdown_periods(equity: pd.Series, starting_balance: float, limit: int | None = None) -> list[dict]:
    """Spells under water: peak, trough, recovery (None if never recovered), depth, days.

    Sorted deepest first (at most ``limit``). The starting balance counts as the first peak.
    """
    values = equity.to_numpy(float)
    if values.size == 0:
        return []
    times = equity.index
    peak = np.maximum(np.maximum.accumulate(values), starting_balance)
    depth = values / peak - 1.0
    edges = np.diff(np.r_[0, (values < peak).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # ends exclusive
    if starts.size == 0:
        return []
    depths = np.minimum.reduceat(depth, starts)
    order = np.argsort(depths, kind="stable")[:limit]
    periods = []
    for k in order:
        start, stop = starts[k], ends[k]
        trough = start + int(np.argmin(depth[start:stop]))
        peak_at = times[start - 1] if start > 0 else times[0]
        recovery = times[stop] if stop < values.size else None
        periods.append({
            "peak": peak_at.isoformat(), "trough": times[trough].isoformat(),
            "recovery": recovery.isoformat() if recovery is not None else None,
            "depth": float(depths[k]),
            "days": float(((recovery if recovery is not None else times[-1]) - peak_at) / _DAY),
            "recovery_days": float((recovery - times[trough]) / _DAY) if recovery is not None else None,
        })
    return periods


def longest_drawdown_days(equity: pd.Series, starting_balance: float) -> float:
    """Longest time from a peak to its recovery (or to the end, if never recovered)."""
    values = equity.to_numpy(float)
    if values.size == 0:
        return 0.0
    peak = np.maximum(np.maximum.accumulate(values), starting_balance)
    edges = np.diff(np.r_[0, (values < peak).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if starts.size == 0:
        return 0.0
    ns = equity.index.as_unit("ns").asi8
    begin = ns[np.maximum(starts - 1, 0)]
    finish = ns[np.minimum(ends, values.size - 1)]
    return float((finish - begin).max() / 86_400e9)


def _streak(flags: np.ndarray) -> int:
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest


def _varies(values: np.ndarray) -> bool:
    """True if ``values`` really vary: float rounding noise (constant growth) does not count."""
    if values.size < 2:
        return False
    return float(values.max() - values.min()) > 1e-12 * max(float(np.abs(values).max()), 1e-300)


def _distribution_metrics(returns: pd.Series) -> dict:
    """VaR/CVaR (historical, 95 %, as returns), skew, excess kurtosis, Omega, tail ratio."""
    out = dict.fromkeys(("var_95", "cvar_95", "skew", "kurtosis", "omega", "tail_ratio",
                         "best_day", "worst_day"))
    if len(returns) == 0:
        return out
    r = returns.to_numpy(float)
    out["best_day"], out["worst_day"] = float(r.max()), float(r.min())
    var = float(np.quantile(r, 0.05))
    out["var_95"] = var
    out["cvar_95"] = _finite(r[r <= var].mean())
    gains, losses = r[r > 0].sum(), -r[r < 0].sum()
    out["omega"] = _ratio(gains, losses) if losses > 0 else None
    low = abs(float(np.quantile(r, 0.05)))
    out["tail_ratio"] = _ratio(abs(float(np.quantile(r, 0.95))), low) if low > 0 else None
    if len(r) >= 3 and _varies(r):
        out["skew"] = _finite(returns.skew())
    if len(r) >= 4 and _varies(r):
        out["kurtosis"] = _finite(returns.kurt())
    return out


def _benchmark_metrics(equity_frame: pd.DataFrame, returns: pd.Series, ppy: float) -> dict:
    """Against buy-and-hold of the traded instrument (its close prices)."""
    out = dict.fromkeys(("benchmark_return", "alpha", "beta", "correlation", "information_ratio"))
    closes = equity_frame["close"]
    if len(closes) < 2 or closes.iloc[0] <= 0:
        return out
    out["benchmark_return"] = _finite(closes.iloc[-1] / closes.iloc[0] - 1.0)
    daily = closes.resample("1D").last().dropna()
    previous = daily.shift(1)
    previous.iloc[0] = closes.iloc[0]
    bench = (daily / previous - 1.0).reindex(returns.index).dropna()
    strat = returns.reindex(bench.index)
    if len(bench) < 2 or bench.var(ddof=1) == 0:
        return out
    beta = strat.cov(bench) / bench.var(ddof=1)
    out["beta"] = _finite(beta)
    out["alpha"] = _finite((strat.mean() - beta * bench.mean()) * ppy)
    if strat.std(ddof=1) > 0:
        out["correlation"] = _finite(strat.corr(bench))
    active = strat - bench
    if active.std(ddof=1) > 0:
        out["information_ratio"] = _finite(active.mean() / active.std(ddof=1) * math.sqrt(ppy))
    return out


def _trade_metrics(
    positions: pd.DataFrame, fills: pd.DataFrame | None, equity: pd.Series, multiplier: float = 1.0
) -> dict:
    pnl = positions["realized_pnl"].astype(float) if len(positions) else pd.Series(dtype=float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    average_win = _finite(wins.mean()) if len(wins) else None
    average_loss = _finite(losses.mean()) if len(losses) else None
    out = {
        "long_trades": int((positions["entry"] == "BUY").sum()) if "entry" in positions else None,
        "short_trades": int((positions["entry"] == "SELL").sum()) if "entry" in positions else None,
        "payoff_ratio": _ratio(average_win, abs(average_loss)) if average_win and average_loss else None,
        "largest_win": _finite(wins.max()) if len(wins) else None,
        "largest_loss": _finite(losses.min()) if len(losses) else None,
        "longest_winning_streak": _streak(pnl.to_numpy() > 0) if len(pnl) else 0,
        "longest_losing_streak": _streak(pnl.to_numpy() < 0) if len(pnl) else 0,
        "average_holding_hours": None,
        "turnover": None,
    }
    if len(positions) and {"opened", "closed"} <= set(positions.columns):
        held = (pd.to_datetime(positions["closed"], utc=True)
                - pd.to_datetime(positions["opened"], utc=True)).mean()
        out["average_holding_hours"] = _finite(held / pd.Timedelta(hours=1))
    if fills is not None and len(equity) and equity.mean() > 0:
        notional = float((fills["quantity"].astype(float) * fills["price"].astype(float)).sum()) * multiplier
        # Traded notional per unit of average equity over the whole run.
        out["turnover"] = _finite(notional / float(equity.mean()))
    return out


def compute_statistics(
    equity_frame: pd.DataFrame,
    positions: pd.DataFrame,
    commissions: float,
    starting_balance: float,
    fills: pd.DataFrame | None = None,
    multiplier: float = 1.0,
) -> dict:
    """Return every statistic of a run (JSON-safe; ``None`` where undefined).

    ``positions`` holds one row per closed position (trade) with ``realized_pnl`` (and
    ``entry``, ``opened``, ``closed`` for the trade metrics); ``fills`` gives the turnover.
    """
    equity = equity_frame["equity"]
    stats: dict = {"metrics_version": METRICS_VERSION, "starting_balance": float(starting_balance)}
    if equity.empty:
        return stats | {"bars": 0}
    final = float(equity.iloc[-1])
    span_years = (equity.index[-1] - equity.index[0]) / _DAY / _YEAR_DAYS
    total_return = final / starting_balance - 1.0
    cagr = None
    if span_years >= 1 / _YEAR_DAYS and final > 0:
        cagr = _finite((final / starting_balance) ** (1.0 / span_years) - 1.0)

    returns = daily_returns(equity, starting_balance)
    ppy = periods_per_year(equity)
    volatility = sharpe = sortino = None
    if len(returns) >= 2:
        std = returns.std(ddof=1)
        if _varies(returns.to_numpy(float)):
            volatility = _finite(std * math.sqrt(ppy))
            sharpe = _finite(returns.mean() / std * math.sqrt(ppy))
        downside = math.sqrt(float(np.mean(np.minimum(returns.to_numpy(), 0.0) ** 2)))
        if downside > 0:
            sortino = _finite(returns.mean() / downside * math.sqrt(ppy))

    periods = drawdown_periods(equity, starting_balance, limit=5)
    deepest = periods[0] if periods else None
    max_dd = deepest["depth"] if deepest else 0.0
    peak_time = trough_time = None
    peak_equity = final
    if deepest:
        # The peak of the deepest spell: the last bar at the high before it (or the start).
        peak_time, trough_time = pd.Timestamp(deepest["peak"]), pd.Timestamp(deepest["trough"])
        peak_equity = float(equity.loc[trough_time]) / (1.0 + max_dd)

    pnl = positions["realized_pnl"].astype(float) if len(positions) else pd.Series(dtype=float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = float(-losses.sum())

    stats.update({
        "final_equity": final,
        "bars": len(equity),
        "start": equity.index[0].isoformat(),
        "end": equity.index[-1].isoformat(),
        "total_return": _finite(total_return),
        "cagr": cagr,
        "volatility": volatility,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": _ratio(cagr, abs(max_dd)) if max_dd < 0 else None,
        "max_drawdown": max_dd,
        "max_drawdown_amount": (max_dd * peak_equity) if max_dd < 0 else 0.0,
        "max_drawdown_peak": peak_time.isoformat() if peak_time is not None else None,
        "max_drawdown_trough": trough_time.isoformat() if trough_time is not None else None,
        "num_trades": len(pnl),
        "win_rate": _ratio(len(wins), len(pnl)),
        "profit_factor": _ratio(float(wins.sum()), gross_loss) if gross_loss > 0 else None,
        "expectancy": _finite(pnl.mean()) if len(pnl) else None,
        "average_win": _finite(wins.mean()) if len(wins) else None,
        "average_loss": _finite(losses.mean()) if len(losses) else None,
        "time_in_market": _finite((equity_frame["position"] != 0).mean()),
        "commissions": float(commissions),
        "periods_per_year": ppy,
    })
    monthly = period_returns(equity, starting_balance, "ME")
    yearly = period_returns(equity, starting_balance, "YE")
    stats.update({
        "best_month": _finite(monthly.max()) if len(monthly) else None,
        "worst_month": _finite(monthly.min()) if len(monthly) else None,
        "monthly_returns": {f"{t:%Y-%m}": _finite(v) for t, v in monthly.items()},
        "yearly_returns": {f"{t:%Y}": _finite(v) for t, v in yearly.items()},
        "longest_drawdown_days": longest_drawdown_days(equity, starting_balance),
        "max_drawdown_recovery": deepest["recovery"] if deepest else None,
        "max_drawdown_recovery_days": deepest["recovery_days"] if deepest else None,
        "worst_drawdowns": periods,
        **_distribution_metrics(returns),
        **_benchmark_metrics(equity_frame, returns, ppy),
        **_trade_metrics(positions, fills, equity, multiplier),
    })
    return stats

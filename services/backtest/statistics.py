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


def compute_statistics(
    equity_frame: pd.DataFrame,
    positions: pd.DataFrame,
    commissions: float,
    starting_balance: float,
) -> dict:
    """Return the run's headline statistics (JSON-safe; ``None`` where undefined).

    ``positions`` holds one row per closed position (trade) with ``realized_pnl``.
    """
    equity = equity_frame["equity"]
    stats: dict = {"starting_balance": float(starting_balance)}
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
        if std > 0:
            volatility = _finite(std * math.sqrt(ppy))
            sharpe = _finite(returns.mean() / std * math.sqrt(ppy))
        downside = math.sqrt(float(np.mean(np.minimum(returns.to_numpy(), 0.0) ** 2)))
        if downside > 0:
            sortino = _finite(returns.mean() / downside * math.sqrt(ppy))

    drawdown = equity_frame["drawdown"]
    max_dd = float(drawdown.min()) if len(drawdown) else 0.0
    trough_time = drawdown.idxmin() if max_dd < 0 else None
    peak_time, peak_equity = None, final
    if trough_time is not None:
        before = equity.loc[:trough_time]
        if before.max() > starting_balance:
            peak_time, peak_equity = before.idxmax(), float(before.max())
        else:  # the peak is the starting balance, before the first bar
            peak_time, peak_equity = equity.index[0], float(starting_balance)

    pnl = positions["realized_pnl"].astype(float) if len(positions) else pd.Series(dtype=float)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_loss = float(-losses.sum())

    stats.update({
        "final_equity": final,
        "bars": int(len(equity)),
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
        "num_trades": int(len(pnl)),
        "win_rate": _ratio(len(wins), len(pnl)),
        "profit_factor": _ratio(float(wins.sum()), gross_loss) if gross_loss > 0 else None,
        "expectancy": _finite(pnl.mean()) if len(pnl) else None,
        "average_win": _finite(wins.mean()) if len(wins) else None,
        "average_loss": _finite(losses.mean()) if len(losses) else None,
        "time_in_market": _finite((equity_frame["position"] != 0).mean()),
        "commissions": float(commissions),
        "periods_per_year": ppy,
    })
    return stats


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


def format_statistic(key: str, value, currency: str = "") -> str:
    """Human text for a statistic: ``n/a`` for undefined values, never ``nan`` or ``inf``."""
    kind = HEADLINE_LABELS.get(key, ("", "ratio"))[1]
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "pct":
        return f"{value * 100:,.2f} %"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f} {currency}".strip()
    return f"{value:,.3f}"

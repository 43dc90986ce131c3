"""The returns a research statistic works on: one run's daily returns, or a sweep's returns matrix.

The conventions are those of ``services.backtest.statistics``, so every Sharpe ratio here is the
one the rest of the workbench shows: close-to-close returns of the mark-to-market equity on each
UTC day with data (the first day measured from the starting balance), the sample standard
deviation (``ddof=1``), annualised with the run's days with data per year. Skew and excess
kurtosis are the bias-corrected sample estimators pandas uses for the results' Risk panel.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from services.backtest.statistics import daily_returns, periods_per_year
from services.errors import ValidationError

# Fewer daily returns than this give no usable Sharpe statistic: the normal approximation
# behind PSR, DSR and the track-record length is poor on less than about a month.
MIN_OBSERVATIONS = 20


@dataclass(frozen=True)
class Moments:
    """Per-period Sharpe ratio, skew and excess kurtosis of returns (one value per column)."""

    observations: int
    sharpe: np.ndarray  # mean / sample standard deviation, not annualised
    skew: np.ndarray
    excess_kurtosis: np.ndarray


def moments(values: np.ndarray) -> Moments:
    """Return the per-period Sharpe ratio, skew and excess kurtosis of each column of ``values``.

    Parameters
    ----------
    values : np.ndarray
        Returns, shape ``(T,)`` or ``(T, N)``; finite, at least 4 rows, every column varying.

    Skew and kurtosis are pandas' bias-corrected estimators (``Series.skew``, ``Series.kurt``).
    """
    x = np.asarray(values, dtype=float)
    x = x.reshape(len(x), -1)
    n = x.shape[0]
    centred = x - x.mean(axis=0)
    m2 = np.mean(centred**2, axis=0)
    m3 = np.mean(centred**3, axis=0)
    m4 = np.mean(centred**4, axis=0)
    std = np.sqrt(m2 * n / (n - 1))
    skew = math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2**1.5
    kurt = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * (m4 / m2**2) - 3 * (n - 1))
    return Moments(observations=n, sharpe=x.mean(axis=0) / std, skew=skew, excess_kurtosis=kurt)


def varying_columns(values: np.ndarray) -> np.ndarray:
    """True for each column of ``values`` (NaN: no data) that really varies.

    The rule of the run statistics' Sharpe ratio: a spread within float noise of the largest
    value is a flat equity (no trades), whose Sharpe ratio is undefined.
    """
    x = np.asarray(values, dtype=float).reshape(len(values), -1)
    present = ~np.isnan(x)
    enough = present.sum(axis=0) >= 2
    with np.errstate(invalid="ignore"):
        high = np.where(present, x, -np.inf).max(axis=0, initial=-np.inf)
        low = np.where(present, x, np.inf).min(axis=0, initial=np.inf)
        size = np.where(present, np.abs(x), 0.0).max(axis=0, initial=0.0)
        return enough & (high - low > 1e-12 * np.maximum(size, 1e-300))


def run_returns(equity: pd.Series, starting_balance: float) -> tuple[pd.Series, float]:
    """Return a run's daily returns and its periods per year, as its statistics compute them.

    Parameters
    ----------
    equity : pd.Series
        Mark-to-market equity at every bar, indexed by UTC time (``equity.parquet``'s column).
    starting_balance : float
        Account balance before the first fill; the first day's return is measured from it.
    """
    return daily_returns(equity, starting_balance), periods_per_year(equity)


def check_periods_per_year(periods_per_year) -> float:
    """Return ``periods_per_year`` as a float, or raise ValidationError unless it is positive."""
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, numbers.Real) \
            or not math.isfinite(periods_per_year) or periods_per_year <= 0:
        raise ValidationError(f"periods_per_year must be a positive number, not "
                              f"{periods_per_year!r}.")
    return float(periods_per_year)


def check_returns(returns, what: str = "The run") -> np.ndarray:
    """Return ``returns`` as a float array, or raise ValidationError if no statistic fits them."""
    values = np.asarray(returns, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if values.size < MIN_OBSERVATIONS:
        raise ValidationError(
            f"{what} has {values.size} daily returns; a Sharpe statistic needs at least "
            f"{MIN_OBSERVATIONS}. Backtest a longer date range.")
    if not varying_columns(values)[0]:
        raise ValidationError(
            f"{what}'s daily returns do not vary (it made no trades), so it has no Sharpe ratio.")
    return values


@dataclass(frozen=True)
class ReturnsMatrix:
    """Daily returns of a sweep's runs on common days: ``values[t, n]`` is run ``runs[n]`` on day t.

    Runs whose returns do not vary (no trades: their Sharpe is undefined) are left out and named
    in ``excluded``; days on which a kept run has no return are dropped and counted.
    """

    values: np.ndarray  # (T, N), finite, read-only
    runs: tuple[str, ...]
    periods_per_year: float
    index: pd.Index | None = None
    excluded: tuple[str, ...] = ()
    dropped_days: int = 0
    moments: Moments = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "moments", moments(self.values))

    @property
    def observations(self) -> int:
        return self.values.shape[0]

    @property
    def trials(self) -> int:
        return self.values.shape[1]

    @property
    def annual_sharpe(self) -> np.ndarray:
        """Each run's Sharpe ratio as the workbench shows it (annualised)."""
        return self.moments.sharpe * math.sqrt(self.periods_per_year)

    def excluded_note(self) -> str:
        """``"; 3 of the 40 runs made no trades"`` or an empty string."""
        if not self.excluded:
            return ""
        total = self.trials + len(self.excluded)
        return f"; {len(self.excluded)} of the {total} runs made no trades"

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, periods_per_year: float,
                   min_runs: int = 2) -> ReturnsMatrix:
        """Build the matrix from daily returns with one column per run (named by its run id).

        Parameters
        ----------
        frame : pd.DataFrame
            Daily returns, one column per run; NaN where a run has no return that day.
        periods_per_year : float
            Days with data per year (``statistics.periods_per_year`` of the runs' equity).
        min_runs : int
            Fewest runs with trades the statistic needs.

        Raises
        ------
        ValidationError
            With one run, too few runs with trades, or too few common days.
        """
        if frame.shape[1] == 0:
            raise ValidationError("No runs were given: run a sweep first.")
        if frame.shape[1] == 1 and min_runs >= 2:
            raise ValidationError(
                "A sweep of 1 run has no overfitting statistic: the deflated Sharpe and the PBO "
                "compare the best run with the other trials. Sweep at least 2 parameter "
                "combinations.")
        periods_per_year = check_periods_per_year(periods_per_year)
        data = frame if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes) \
            else frame.apply(pd.to_numeric, errors="coerce")
        values = data.to_numpy(dtype=float, copy=True)
        values[~np.isfinite(values)] = np.nan
        keep = varying_columns(values)
        common = ~np.isnan(values[:, keep]).any(axis=1)
        # A run that varies only on days another run lacks is as flat as one without trades.
        keep[keep] = varying_columns(values[common][:, keep])
        common = ~np.isnan(values[:, keep]).any(axis=1)
        names = [str(c) for c in frame.columns]
        kept = [n for n, k in zip(names, keep, strict=True) if k]
        excluded = tuple(n for n, k in zip(names, keep, strict=True) if not k)
        if len(kept) < min_runs:
            raise ValidationError(
                f"Only {len(kept)} of {frame.shape[1]} runs made trades ({len(excluded)} have "
                f"flat equity and no Sharpe ratio); the statistic needs at least {min_runs}. "
                "Widen the parameter grid or the date range.")
        if common.sum() < MIN_OBSERVATIONS:
            raise ValidationError(
                f"The runs share {int(common.sum())} days with returns; the statistic needs at "
                f"least {MIN_OBSERVATIONS}. Backtest a longer date range.")
        values = np.ascontiguousarray(values[common][:, keep])
        values.setflags(write=False)
        return cls(values=values, runs=tuple(kept), periods_per_year=periods_per_year,
                   index=frame.index[common], excluded=excluded,
                   dropped_days=int((~common).sum()))

    @classmethod
    def from_equity(cls, equity_by_run: Mapping[str, pd.Series], starting_balance: float,
                    min_runs: int = 2) -> ReturnsMatrix:
        """Build the matrix from each run's per-bar equity, as the runs' statistics do.

        Parameters
        ----------
        equity_by_run : Mapping[str, pd.Series]
            Run id -> mark-to-market equity at every bar (UTC index).
        starting_balance : float
            The runs' starting balance.
        min_runs : int
            Fewest runs with trades the statistic needs.
        """
        if not equity_by_run:
            raise ValidationError("No runs were given: run a sweep first.")
        frame = pd.DataFrame({run: daily_returns(equity, starting_balance)
                              for run, equity in equity_by_run.items()})
        # The runs of a sweep share their bars; the first run's calendar stands for all.
        ppy = periods_per_year(next(iter(equity_by_run.values())))
        return cls.from_frame(frame, ppy, min_runs=min_runs)

"""How far a sweep's best run can be trusted: the research statistics of services.research on
the daily returns its completed runs left, with the number of trials taken from the sweep.

Every completed run counts as a trial (runs without trades too: they were tried; they have no
Sharpe ratio to rank); failed and cancelled runs left nothing to count. What cannot be computed
(a sweep of one run, too few days, too few runs with trades) is a one-line note, not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from services.backtest.records import COMPLETED, RunInfo
from services.errors import ValidationError
from services.research import (
    DeflatedSharpe,
    MinimumTrackRecord,
    OverfittingProbability,
    ProbabilisticSharpe,
    ReturnsMatrix,
    deflated_sharpe,
    minimum_track_record,
    probabilistic_sharpe,
    probabilistic_sharpes,
    probability_of_overfitting,
)
from services.research.overfitting import DEFAULT_PARTITIONS, check_partitions

# Parquet reads release the GIL: a few threads read a thousand small files in a fraction.
_READERS = 8


@dataclass(frozen=True)
class SweepStatistics:
    """The overfitting statistics of a sweep: PSR of every run, DSR of the best, PBO, minTRL."""

    sweep_id: str
    runs: int  # all runs of the sweep
    trials: int  # completed runs: the trials the best was chosen from
    partitions: int  # S of the PBO
    psr: dict[str, ProbabilisticSharpe]  # by run id, runs with a Sharpe ratio
    deflated_sharpe: DeflatedSharpe | None
    pbo: OverfittingProbability | None
    min_track_record: MinimumTrackRecord | None  # of the best run by Sharpe ratio
    best_run: str | None  # by Sharpe ratio (the run the DSR and minTRL are about)
    notes: tuple[str, ...]  # one line per statistic that could not be computed, and why

    def to_dict(self) -> dict:
        """What the CLI's JSON and a report show."""
        return {
            "trials": self.trials, "runs": self.runs, "partitions": self.partitions,
            "best_run_id": self.best_run,
            "deflated_sharpe": self.deflated_sharpe.to_dict() if self.deflated_sharpe else None,
            "pbo": self.pbo.to_dict() if self.pbo else None,
            "min_track_record": (self.min_track_record.to_dict() if self.min_track_record
                                 else None),
            "psr": {run: p.value for run, p in self.psr.items()},
            "notes": list(self.notes),
        }


def returns_frame(runs: Sequence[RunInfo],
                  read: Callable[[RunInfo], tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The daily returns of ``runs`` side by side: one column per run id, NaN where a run has
    no return that day. ``read(run)`` gives (UTC days in epoch ns, returns)."""
    if not runs:
        return pd.DataFrame()
    with ThreadPoolExecutor(min(_READERS, len(runs)), thread_name_prefix="returns") as pool:
        loaded = list(pool.map(read, runs))
    days = np.unique(np.concatenate([d for d, _ in loaded]))
    values = np.full((days.size, len(runs)), np.nan)
    for column, (run_days, returns) in enumerate(loaded):
        values[np.searchsorted(days, run_days), column] = returns
    index = pd.DatetimeIndex(days.view("datetime64[ns]"), tz="UTC", name="day")
    return pd.DataFrame(values, index=index, columns=[r.run_id for r in runs])


def sweep_statistics(sweep_id: str, runs: Sequence[RunInfo], returns: pd.DataFrame,
                     periods_per_year: float | None,
                     partitions: int = DEFAULT_PARTITIONS) -> SweepStatistics:
    """Return the overfitting statistics of a sweep.

    Parameters
    ----------
    sweep_id : str
        The sweep.
    runs : Sequence[RunInfo]
        Every run of the sweep; the completed ones are the trials.
    returns : pd.DataFrame
        The completed runs' daily returns (``returns_frame``).
    periods_per_year : float, optional
        Days with data per year of the runs (their statistics' ``periods_per_year``).
    partitions : int
        S, the number of partitions of the PBO's cross-validation.
    """
    partitions = check_partitions(partitions)
    completed = [r for r in runs if r.status == COMPLETED]
    notes: list[str] = []
    unfinished = len(runs) - len(completed)
    if unfinished:
        notes.append(f"{unfinished:,} of the {len(runs):,} runs have not completed (queued, "
                     "running, failed or cancelled): they are not counted as trials.")
    empty = SweepStatistics(sweep_id, len(runs), len(completed), partitions, {}, None, None,
                            None, None, ())
    if not completed or periods_per_year is None:
        return _with(empty, notes + ["No run has completed: there is nothing to assess yet."])
    try:
        matrix = ReturnsMatrix.from_frame(returns, periods_per_year)
    except ValidationError as e:
        # One run (or one with trades) cannot be compared; its own PSR still can.
        notes.append(e.summary)
        psr = {}
        for run in returns.columns:
            try:
                psr[run] = probabilistic_sharpe(returns[run].dropna(), periods_per_year)
            except ValidationError:
                pass
        best = max(psr, key=lambda r: psr[r].sharpe) if psr else None
        track = _track(returns, best, periods_per_year, notes)
        return _with(empty, notes, psr=psr, best_run=best, min_track_record=track)
    psr = probabilistic_sharpes(matrix)
    dsr = deflated_sharpe(matrix, trials=len(completed))
    try:
        pbo = probability_of_overfitting(matrix, partitions)
    except ValidationError as e:
        notes.append(e.summary)
        pbo = None
    track = _track(returns, dsr.best_run, periods_per_year, notes)
    return _with(empty, notes, psr=psr, deflated_sharpe=dsr, pbo=pbo, best_run=dsr.best_run,
                 min_track_record=track)


def _track(returns: pd.DataFrame, run: str | None, periods_per_year: float,
           notes: list[str]) -> MinimumTrackRecord | None:
    if run is None:
        return None
    try:
        return minimum_track_record(returns[run].dropna(), periods_per_year)
    except ValidationError as e:
        notes.append(e.summary)
        return None


def _with(base: SweepStatistics, notes: list[str], **values) -> SweepStatistics:
    return replace(base, notes=tuple(notes), **values)

"""The probability of backtest overfitting (PBO) of a sweep, by combinatorially symmetric
cross-validation (CSCV).

Reference: D. H. Bailey, J. M. Borwein, M. López de Prado and Q. J. Zhu, "The Probability of
Backtest Overfitting", Journal of Computational Finance 20(4), 2017 (SSRN 2326253, 2014).

The days of the returns matrix are cut into S equal, contiguous partitions. Every choice of S/2
of them is one split: its days are the in-sample set, the other half the out-of-sample set. On
each split the run with the best in-sample Sharpe ratio is picked and its out-of-sample rank
``r`` among the N runs gives the logit ``log(w / (1 - w))`` with ``w = r / (N + 1)``. PBO is the
share of splits whose logit is <= 0: the in-sample best is at or below the out-of-sample median.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from services.backtest.metric_labels import format_statistic
from services.errors import ValidationError
from services.research.returns import ReturnsMatrix

DEFAULT_PARTITIONS = 16  # the paper's choice: 12,870 splits
MAX_PARTITIONS = 20  # 184,756 splits; beyond, the count of splits explodes (24: 2.7 million)
# Up to this PBO the in-sample choice holds up out of sample; from 0.5 on it does no better
# than picking a run at random.
LOW_PBO = 0.1
_CHUNK = 2048  # splits evaluated at once: bounds memory at a few chunk x runs arrays


@dataclass(frozen=True)
class OverfittingProbability:
    """The PBO of a sweep, with the per-split figures behind it."""

    value: float  # PBO, in [0, 1]
    partitions: int  # S
    splits: int  # C(S, S/2)
    trials: int  # runs ranked
    observations: int  # days used: the most recent multiple of S
    oos_loss: float  # share of splits where the in-sample best has a negative OOS Sharpe ratio
    logits: np.ndarray  # one per split
    in_sample_sharpe: np.ndarray  # the in-sample best's annualised Sharpe ratio, per split
    out_of_sample_sharpe: np.ndarray  # the same run's, out of sample
    excluded: tuple[str, ...]  # runs without trades, not ranked
    reading: str

    def to_dict(self) -> dict:
        """The figures a report or JSON shows (the per-split arrays summarised)."""
        return {
            "value": self.value, "partitions": self.partitions, "splits": self.splits,
            "trials": self.trials, "observations": self.observations,
            "oos_loss": self.oos_loss, "median_logit": float(np.median(self.logits)),
            "excluded": list(self.excluded), "reading": self.reading,
        }


def _splits(partitions: int) -> tuple[np.ndarray, np.ndarray]:
    """The splits holding partition 0, as 0/1 rows over the partitions, and where each of them
    and each complement comes in ``itertools.combinations`` order (the order of the logits).

    Every split either holds partition 0 or is the complement of one that does, and a split's
    out-of-sample set is its complement's in-sample set: computing the Sharpe ratios of these
    halves once serves both splits.
    """
    chosen = np.array(list(combinations(range(partitions), partitions // 2)))
    masks = (1 << chosen).sum(axis=1)  # each split as a bit set of its partitions
    by_mask = np.argsort(masks)
    holding = np.flatnonzero(chosen[:, 0] == 0)
    complements = by_mask[np.searchsorted(masks, ((1 << partitions) - 1) ^ masks[holding],
                                          sorter=by_mask)]
    indicators = np.zeros((len(holding), partitions))
    np.put_along_axis(indicators, chosen[holding], 1.0, axis=1)
    return indicators, np.column_stack([holding, complements])


def _sharpe(sums: np.ndarray, squares: np.ndarray, n: int, shift: np.ndarray,
            floor: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ratios from sums of returns less ``shift`` and of their squares,
    computed in place of ``sums`` (both arrays are consumed).

    A half-sample whose variance is at most ``floor`` (flat: no trades in it) scores 0.
    """
    mean = np.divide(sums, n, out=sums)
    variance = np.multiply(mean, mean)
    variance *= -n
    variance += squares
    variance /= n - 1
    flat = variance <= floor
    variance[flat] = 1.0
    mean += shift
    sharpe = np.divide(mean, np.sqrt(variance, out=variance), out=mean)
    sharpe[flat] = 0.0
    return sharpe


def _select(in_sample: np.ndarray, out_sample: np.ndarray, runs: int):
    """Logit of the in-sample best's out-of-sample rank, and its two Sharpe ratios, per split."""
    rows = np.arange(len(in_sample))
    best = np.argmax(in_sample, axis=1)
    picked = out_sample[rows, best]
    # Rank 1 is the worst out of sample; ties share their average rank.
    below = (out_sample < picked[:, None]).sum(axis=1)
    tied = (out_sample == picked[:, None]).sum(axis=1)
    relative = (below + (tied + 1) / 2) / (runs + 1)
    return np.log(relative / (1 - relative)), in_sample[rows, best], picked


def check_partitions(partitions) -> int:
    """Return ``partitions`` if it is a usable S, else raise ValidationError saying which are."""
    if isinstance(partitions, bool) or not isinstance(partitions, int | np.integer) \
            or partitions < 2 or partitions > MAX_PARTITIONS or partitions % 2:
        raise ValidationError(f"partitions must be an even number from 2 to {MAX_PARTITIONS} "
                              f"({DEFAULT_PARTITIONS} is usual), not {partitions!r}.")
    return int(partitions)


def probability_of_overfitting(matrix: ReturnsMatrix,
                               partitions: int = DEFAULT_PARTITIONS) -> OverfittingProbability:
    """Return the PBO of a sweep by CSCV on its daily returns, ranking runs by Sharpe ratio.

    Parameters
    ----------
    matrix : ReturnsMatrix
        The sweep's daily returns (runs without trades already left out).
    partitions : int
        S, the number of partitions of the days: even, from 2 to ``MAX_PARTITIONS``.

    Raises
    ------
    ValidationError
        For an odd or out-of-range S, fewer than 2 runs, or fewer than 2 days per partition.
    """
    partitions = check_partitions(partitions)
    runs = matrix.trials
    if runs < 2:
        raise ValidationError(
            "A sweep of 1 run has no probability of overfitting: it ranks the runs against each "
            "other. Sweep at least 2 parameter combinations.")
    days = matrix.observations
    length = days // partitions
    if length < 2:
        raise ValidationError(
            f"PBO with {partitions} partitions needs at least {2 * partitions} common days of "
            f"returns; the runs have {days}. Use fewer partitions (an even number) or backtest "
            "a longer date range.")
    # Drop the oldest days that do not fill a partition, keep the most recent.
    used = matrix.values[days - length * partitions:]
    # Sums of returns less their mean keep the variances exact (no cancellation).
    shift = used.mean(axis=0)
    blocks = (used - shift).reshape(partitions, length, runs)
    sums, squares = blocks.sum(axis=1), (blocks**2).sum(axis=1)
    total_sums, total_squares = sums.sum(axis=0), squares.sum(axis=0)
    # Relative to the run's own variance: float noise of a flat stretch must not rank.
    floor = 1e-14 * used.var(axis=0)
    half = length * partitions // 2

    indicators, order = _splits(partitions)
    splits = 2 * len(indicators)
    logits, chosen_is, chosen_oos = np.empty(splits), np.empty(splits), np.empty(splits)
    for start in range(0, len(indicators), _CHUNK):
        part = indicators[start:start + _CHUNK]
        where = order[start:start + _CHUNK]
        in_sums, in_squares = part @ sums, part @ squares
        out_sums, out_squares = total_sums - in_sums, total_squares - in_squares
        first = _sharpe(in_sums, in_squares, half, shift, floor)
        second = _sharpe(out_sums, out_squares, half, shift, floor)
        for column, (in_sample, out_sample) in enumerate(((first, second), (second, first))):
            at = where[:, column]
            logits[at], chosen_is[at], chosen_oos[at] = _select(in_sample, out_sample, runs)

    value = float(np.mean(logits <= 0))
    root = math.sqrt(matrix.periods_per_year)
    chosen_is *= root
    chosen_oos *= root
    for array in (logits, chosen_is, chosen_oos):
        array.setflags(write=False)
    return OverfittingProbability(
        value=value, partitions=partitions, splits=splits, trials=runs,
        observations=length * partitions, oos_loss=float(np.mean(chosen_oos < 0)),
        logits=logits, in_sample_sharpe=chosen_is, out_of_sample_sharpe=chosen_oos,
        excluded=matrix.excluded, reading=_reading(value, splits, matrix))


def _reading(value: float, splits: int, matrix: ReturnsMatrix) -> str:
    if value < LOW_PBO:
        verdict = "the selection holds up out of sample"
    elif value < 0.5:
        verdict = "a real risk that the selection is overfit"
    else:
        verdict = "the selection is likely overfit, no better than picking a run at random"
    pct = format_statistic("win_rate", value)
    return (f"PBO {pct}: the in-sample best of {matrix.trials:,} runs ranks at or below the "
            f"out-of-sample median in {pct} of {splits:,} splits"
            f"{matrix.excluded_note()}: {verdict}.")

"""What a walk-forward analysis's folds say together: the walk-forward efficiency, the
out-of-sample equity stitched across the test windows, and how stable the chosen parameters are.

A fold optimises on its train window (in sample) and runs the chosen parameters once on the
window that follows (out of sample). Walk-forward efficiency (R. Pardo, "The Evaluation and
Optimization of Trading Strategies", 2008) compares what the strategy earned out of sample with
what its optimisation promised: the mean annualised out-of-sample return of the folds over their
mean annualised in-sample return. Near 1 the optimisation's promise holds; Pardo reads 0.5 or
more as robust, and much less as a strategy fitted to its training data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from services.backtest.metric_labels import format_statistic
from services.errors import ValidationError

_YEAR_DAYS = 365.25
# At or above this efficiency the out-of-sample results keep the optimisation's promise (Pardo).
ROBUST_EFFICIENCY = 0.5
# A parameter chosen with the same value in at least this share of the folds reads as stable.
STABLE_SHARE = 2 / 3


def _pct(value: float | None) -> str:
    return format_statistic("total_return", value)


def annualised_return(total_return: float | None, days: float) -> float | None:
    """Return ``total_return`` earned over ``days`` as a compound annual rate (None when the
    return is undefined or lost everything)."""
    if total_return is None or not math.isfinite(total_return) or days <= 0 \
            or total_return <= -1:
        return None
    rate = (1.0 + total_return) ** (_YEAR_DAYS / days) - 1.0
    return rate if math.isfinite(rate) else None


@dataclass(frozen=True)
class WalkForwardEfficiency:
    """Annualised out-of-sample return over annualised in-sample return, folds averaged."""

    value: float | None  # None when the in-sample returns are not positive on average
    in_sample: float | None  # mean annualised in-sample return of the folds' chosen runs
    out_of_sample: float | None  # mean annualised return of the folds' test runs
    per_fold: tuple[float | None, ...]  # each fold's OOS / IS (None where undefined)
    folds: int  # folds with both figures
    reading: str

    def to_dict(self) -> dict:
        return asdict(self) | {"per_fold": list(self.per_fold)}


def walk_forward_efficiency(in_sample: Sequence[float | None],
                            out_of_sample: Sequence[float | None]) -> WalkForwardEfficiency:
    """Return the walk-forward efficiency of folds from their annualised returns.

    Parameters
    ----------
    in_sample, out_of_sample : Sequence[float | None]
        Per fold, the annualised return of the chosen run on its train window and of the test
        run on its test window (``annualised_return``); None where a fold has no figure.
    """
    if len(in_sample) != len(out_of_sample):
        raise ValidationError(f"{len(in_sample)} in-sample figures but {len(out_of_sample)} "
                              "out-of-sample ones: give one of each per fold.")
    pairs = [(i, o) for i, o in zip(in_sample, out_of_sample, strict=True)
             if i is not None and o is not None]
    per_fold = tuple(o / i if i is not None and o is not None and i > 0 else None
                     for i, o in zip(in_sample, out_of_sample, strict=True))
    if not pairs:
        return WalkForwardEfficiency(
            None, None, None, per_fold, 0,
            "No fold has both an in-sample and an out-of-sample return yet: no walk-forward "
            "efficiency.")
    mean_in = float(np.mean([i for i, _ in pairs]))
    mean_out = float(np.mean([o for _, o in pairs]))
    figures = (f"mean annualised return {_pct(mean_out)} out of sample against {_pct(mean_in)} "
               f"in sample over {len(pairs)} folds")
    if mean_in <= 0:
        return WalkForwardEfficiency(
            None, mean_in, mean_out, per_fold, len(pairs),
            f"No walk-forward efficiency: the chosen parameters did not earn a positive return "
            f"even in sample ({figures}).")
    value = mean_out / mean_in
    if value >= ROBUST_EFFICIENCY:
        verdict = "the optimisation's promise largely holds out of sample"
    elif value > 0:
        verdict = "most of the in-sample return does not carry over: likely fitted to the train data"
    else:
        verdict = "out of sample the chosen parameters lose money: fitted to the train data"
    return WalkForwardEfficiency(
        value, mean_in, mean_out, per_fold, len(pairs),
        f"Walk-forward efficiency {value:.2f} ({figures}): {verdict}.")


def stitch_equity(curves: Sequence[pd.Series], starting_balance: float) -> pd.Series:
    """Return the test windows' equity curves chained into one out-of-sample curve.

    Each test run starts from the same balance; the stitched curve reinvests: test run k's
    equity, as a multiple of its starting balance, continues from where run k-1 ended. Where a
    run begins with the bar its predecessor ended on (back-to-back windows share the bar that
    closes at their boundary), that bar is taken from the predecessor.

    Parameters
    ----------
    curves : Sequence[pd.Series]
        Each test run's mark-to-market equity (UTC index), in time order.
    starting_balance : float
        The balance every test run started with.
    """
    if starting_balance <= 0:
        raise ValidationError(f"starting_balance must be positive, not {starting_balance!r}.")
    parts, level = [], float(starting_balance)
    previous_end = None
    for curve in curves:
        scaled = curve.astype(float) / starting_balance * level
        if previous_end is not None:
            if not curve.empty and curve.index[0] < previous_end:
                raise ValidationError(
                    f"Test windows overlap ({curve.index[0]} is before {previous_end}, where "
                    "the previous one ended): the out-of-sample curve cannot be stitched.")
            scaled = scaled[scaled.index > previous_end]
        if scaled.empty:
            continue
        parts.append(scaled)
        level, previous_end = float(scaled.iloc[-1]), scaled.index[-1]
    if not parts:
        return pd.Series(dtype=float, name="equity")
    return pd.concat(parts).rename("equity")


@dataclass(frozen=True)
class ParameterChoice:
    """The values one parameter took across the folds."""

    parameter: str
    values: tuple  # chosen value per fold with a choice
    mode: object  # the most chosen value (the first of equals in fold order)
    mode_share: float  # share of the folds that chose it
    spread: float | None  # standard deviation over the grid's range (numbers only)
    stable: bool

    def to_dict(self) -> dict:
        return asdict(self) | {"values": list(self.values)}


@dataclass(frozen=True)
class ChoiceStability:
    """How much the parameters a walk-forward chose move from fold to fold."""

    parameters: tuple[ParameterChoice, ...]
    folds: int
    stable: bool
    reading: str

    def to_dict(self) -> dict:
        return {"parameters": [p.to_dict() for p in self.parameters], "folds": self.folds,
                "stable": self.stable, "reading": self.reading}


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def choice_stability(choices: Sequence[dict], grid: dict[str, Sequence]) -> ChoiceStability:
    """Return how stable the chosen parameters are across folds.

    Parameters
    ----------
    choices : Sequence[dict]
        The parameters each fold chose (folds without a choice left out), in fold order.
    grid : dict[str, Sequence]
        The values tried per varied parameter: a spread is measured against their range.

    A parameter is stable when one value was chosen in at least two thirds of the folds, or
    when the chosen values spread over at most a quarter of the grid's range.
    """
    names = list(grid)
    if not choices:
        return ChoiceStability((), 0, False, "No fold has chosen parameters yet.")
    result = []
    for name in names:
        values = tuple(c.get(name) for c in choices)
        counts: dict = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        mode = max(counts, key=counts.get)  # dicts keep fold order: first of equals
        share = counts[mode] / len(values)
        spread = None
        tried = [float(v) for v in grid[name] if _is_number(v)]
        if tried and all(_is_number(v) for v in values):
            width = max(tried) - min(tried)
            spread = float(np.std(np.asarray(values, dtype=float))) / width if width > 0 else 0.0
        stable = share >= STABLE_SHARE or (spread is not None and spread <= 0.25)
        result.append(ParameterChoice(name, values, mode, share, spread, stable))
    stable = all(p.stable for p in result)
    described = "; ".join(
        f"{p.parameter} {', '.join(map(str, p.values))} ({p.mode} in {round(p.mode_share * len(p.values))}"
        f" of {len(p.values)} folds" + (f", spread {p.spread:.2f} of the grid" if p.spread is not None
                                         else "") + ")"
        for p in result)
    verdict = ("the choice is stable across folds" if stable else
               "the choice moves from fold to fold: the optimum is not a steady region")
    return ChoiceStability(tuple(result), len(choices), stable,
                           f"Chosen over {len(choices)} folds: {described}; {verdict}.")

"""How much a Sharpe ratio can be trusted: the probabilistic Sharpe ratio, the minimum track
record length and the deflated Sharpe ratio of the best of many trials.

References: D. H. Bailey and M. López de Prado, "The Sharpe Ratio Efficient Frontier", Journal
of Risk 15(2), 2012 (PSR, minimum track record length); "The Deflated Sharpe Ratio: Correcting
for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management
40(5), 2014 (DSR). The formulas take the Sharpe ratio per period (per day here) and the number of
periods; the results show it annualised, as everywhere else in the workbench.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from services.backtest.metric_labels import format_statistic
from services.errors import ValidationError
from services.research.returns import (
    ReturnsMatrix,
    check_periods_per_year,
    check_returns,
    moments,
)

# A statistic at or above this level reads as "distinguishable"; 95 % as in both papers.
CONFIDENCE = 0.95
_NORMAL = NormalDist()


def _pct(value: float) -> str:
    return format_statistic("win_rate", value)


def _sharpe_spread(sharpe: float, skew: float, excess_kurtosis: float) -> float:
    """``1 - skew * SR + (kurtosis - 1) / 4 * SR^2``: T times the variance of the Sharpe
    estimate (Mertens 2002), with the per-period SR and Pearson (non-excess) kurtosis."""
    spread = 1.0 - skew * sharpe + (excess_kurtosis + 2.0) / 4.0 * sharpe**2
    if not spread > 0:
        raise ValidationError(
            f"The returns' skew ({skew:.3f}) and excess kurtosis ({excess_kurtosis:.3f}) leave "
            "the Sharpe ratio no variance; they cannot come from real returns.")
    return spread


def psr_value(sharpe: float, benchmark: float, observations: int, skew: float,
              excess_kurtosis: float) -> float:
    """Return the probabilistic Sharpe ratio from per-period figures (Bailey & López de Prado).

    Parameters
    ----------
    sharpe, benchmark : float
        Observed and benchmark Sharpe ratio, per period (not annualised).
    observations : int
        Number of returns the Sharpe ratio was measured on.
    skew, excess_kurtosis : float
        Of the returns (excess kurtosis: 0 for normal returns).
    """
    spread = _sharpe_spread(sharpe, skew, excess_kurtosis)
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread))


def expected_maximum_sharpe(trials: int, variance: float = 1.0) -> float:
    """Return the expected maximum of ``trials`` Sharpe ratios drawn with zero mean and
    ``variance``: the Euler-Mascheroni approximation of the DSR paper (its equation 7).

    Parameters
    ----------
    trials : int
        Number of independent trials (at least 2).
    variance : float
        Variance of the trials' Sharpe ratios (in the units of the result, squared).
    """
    if trials < 2:
        raise ValidationError(f"The expected maximum Sharpe needs at least 2 trials, not {trials}.")
    gamma = np.euler_gamma
    z = (1 - gamma) * _NORMAL.inv_cdf(1 - 1 / trials) \
        + gamma * _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    return math.sqrt(variance) * z


@dataclass(frozen=True)
class ProbabilisticSharpe:
    """The probability that a run's true Sharpe ratio is above a benchmark (PSR)."""

    value: float  # PSR, in [0, 1]
    sharpe: float  # observed, annualised as the workbench shows it
    benchmark: float  # annualised Sharpe ratio tested against
    observations: int  # daily returns
    periods_per_year: float
    skew: float
    excess_kurtosis: float
    reading: str

    def to_dict(self) -> dict:
        return asdict(self)


def _psr(sharpe: float, skew: float, excess_kurtosis: float, observations: int,
         periods_per_year: float, benchmark: float) -> ProbabilisticSharpe:
    """The PSR of per-period figures, shown annualised."""
    root = math.sqrt(periods_per_year)
    value = psr_value(sharpe, benchmark / root, observations, skew, excess_kurtosis)
    annual = sharpe * root
    if value >= CONFIDENCE:
        reading = (f"PSR {_pct(value)}: the Sharpe ratio of {annual:.2f} is above "
                   f"{benchmark:.2f} with {_pct(value)} confidence over {observations} days.")
    else:
        reading = (f"PSR {_pct(value)}: over {observations} days a Sharpe ratio of {annual:.2f} "
                   f"is not distinguishable from {benchmark:.2f} at {CONFIDENCE * 100:g} % "
                   "confidence.")
    return ProbabilisticSharpe(
        value=value, sharpe=annual, benchmark=benchmark, observations=observations,
        periods_per_year=periods_per_year, skew=skew, excess_kurtosis=excess_kurtosis,
        reading=reading)


def probabilistic_sharpe(returns, periods_per_year: float,
                         benchmark: float = 0.0) -> ProbabilisticSharpe:
    """Return the probabilistic Sharpe ratio of a run from its daily returns.

    Parameters
    ----------
    returns : array-like
        The run's daily returns (``returns.run_returns``).
    periods_per_year : float
        Days with data per year, for the annualised figures.
    benchmark : float
        Annualised Sharpe ratio the run's is tested against (0: "is there any edge?").

    Raises
    ------
    ValidationError
        On fewer than ``MIN_OBSERVATIONS`` returns, or returns that do not vary (no trades).
    """
    ppy = check_periods_per_year(periods_per_year)
    m = moments(check_returns(returns))
    return _psr(float(m.sharpe[0]), float(m.skew[0]), float(m.excess_kurtosis[0]),
                m.observations, ppy, benchmark)


def probabilistic_sharpes(matrix: ReturnsMatrix,
                          benchmark: float = 0.0) -> dict[str, ProbabilisticSharpe]:
    """Return the PSR of every run of a sweep, keyed by run id (runs without trades are absent)."""
    m = matrix.moments
    return {run: _psr(float(m.sharpe[k]), float(m.skew[k]), float(m.excess_kurtosis[k]),
                      m.observations, matrix.periods_per_year, benchmark)
            for k, run in enumerate(matrix.runs)}


@dataclass(frozen=True)
class MinimumTrackRecord:
    """How many days of returns a Sharpe ratio needs to be above a benchmark with confidence."""

    days: float | None  # None when the Sharpe ratio is not above the benchmark
    years: float | None
    sufficient: bool  # the run's own track record is at least that long
    sharpe: float  # annualised
    benchmark: float  # annualised
    confidence: float
    observations: int  # days the run has
    periods_per_year: float
    skew: float
    excess_kurtosis: float
    reading: str

    def to_dict(self) -> dict:
        return asdict(self)


def minimum_track_record(returns, periods_per_year: float, benchmark: float = 0.0,
                         confidence: float = CONFIDENCE) -> MinimumTrackRecord:
    """Return the minimum track record length of a run (Bailey & López de Prado 2012, eq. 11).

    Parameters
    ----------
    returns : array-like
        The run's daily returns.
    periods_per_year : float
        Days with data per year.
    benchmark : float
        Annualised Sharpe ratio to beat.
    confidence : float
        Probability with which the true Sharpe ratio must exceed the benchmark, in (0, 1).
    """
    if not 0 < confidence < 1:
        raise ValidationError(f"confidence must be between 0 and 1 (e.g. 0.95), not "
                              f"{confidence!r}.")
    periods_per_year = check_periods_per_year(periods_per_year)
    m = moments(check_returns(returns))
    root = math.sqrt(periods_per_year)
    sharpe, skew, kurt = float(m.sharpe[0]), float(m.skew[0]), float(m.excess_kurtosis[0])
    base = {"sharpe": sharpe * root, "benchmark": benchmark, "confidence": confidence,
            "observations": m.observations, "periods_per_year": periods_per_year, "skew": skew,
            "excess_kurtosis": kurt}
    edge = sharpe - benchmark / root
    if edge <= 0:
        return MinimumTrackRecord(
            days=None, years=None, sufficient=False, **base,
            reading=(f"The Sharpe ratio of {sharpe * root:.2f} is not above {benchmark:.2f}: no "
                     "track record, however long, would make it so."))
    z = _NORMAL.inv_cdf(confidence)
    days = 1.0 + _sharpe_spread(sharpe, skew, kurt) * (z / edge) ** 2
    sufficient = m.observations >= days
    verdict = "long enough" if sufficient else "too short"
    return MinimumTrackRecord(
        days=days, years=days / periods_per_year, sufficient=sufficient, **base,
        reading=(f"A Sharpe ratio of {sharpe * root:.2f} needs {math.ceil(days):,} days "
                 f"({days / periods_per_year:.1f} years) of returns to be above {benchmark:.2f} "
                 f"with {confidence * 100:g} % confidence; the run has {m.observations:,}: "
                 f"{verdict}."))


@dataclass(frozen=True)
class DeflatedSharpe:
    """Whether the best of a sweep's runs beats what the best of as many random strategies
    would show (DSR: the PSR against the expected maximum Sharpe ratio of the trials)."""

    value: float  # DSR, in [0, 1]
    best_run: str
    sharpe: float  # the best run's, annualised
    expected_maximum: float  # annualised Sharpe the best of `trials` skill-less runs would show
    trials: int
    sharpe_variance: float  # variance of the runs' annualised Sharpe ratios
    observations: int
    periods_per_year: float
    skew: float  # of the best run's returns
    excess_kurtosis: float
    excluded: tuple[str, ...]  # runs without trades: counted as trials, not in the variance
    reading: str

    def to_dict(self) -> dict:
        return asdict(self) | {"excluded": list(self.excluded)}


def deflated_sharpe(matrix: ReturnsMatrix, trials: int | None = None) -> DeflatedSharpe:
    """Return the deflated Sharpe ratio of the best run of a sweep.

    Parameters
    ----------
    matrix : ReturnsMatrix
        The sweep's daily returns (runs without trades already left out).
    trials : int, optional
        Number of trials made to find the best run. Defaults to every run of the sweep,
        including those without trades: they were tried too, though they have no Sharpe ratio
        to add to the variance.

    Raises
    ------
    ValidationError
        With fewer than 2 trials, or ``trials`` below the number of runs in the matrix.
    """
    count = matrix.trials + len(matrix.excluded) if trials is None else int(trials)
    if count < matrix.trials:
        raise ValidationError(f"trials ({count}) cannot be fewer than the {matrix.trials} runs "
                              "whose returns are given.")
    if matrix.trials < 2:
        raise ValidationError(
            "A sweep of 1 run has no deflated Sharpe ratio: it compares the best run with the "
            "other trials. Sweep at least 2 parameter combinations.")
    m = matrix.moments
    best = int(np.argmax(m.sharpe))
    sharpe, skew, kurt = float(m.sharpe[best]), float(m.skew[best]), float(m.excess_kurtosis[best])
    variance = float(np.var(m.sharpe, ddof=1))
    threshold = expected_maximum_sharpe(count, variance)
    value = psr_value(sharpe, threshold, m.observations, skew, kurt)
    ppy = matrix.periods_per_year
    root = math.sqrt(ppy)
    if value >= CONFIDENCE:
        verdict = "stands out from"
    else:
        verdict = "is not distinguishable from"
    reading = (f"DSR {_pct(value)}: the best run's Sharpe ratio of {sharpe * root:.2f} {verdict} "
               f"the best of {count:,} random strategies (expected {threshold * root:.2f}"
               f"{matrix.excluded_note()}).")
    return DeflatedSharpe(
        value=value, best_run=matrix.runs[best], sharpe=sharpe * root,
        expected_maximum=threshold * root, trials=count, sharpe_variance=variance * ppy,
        observations=m.observations, periods_per_year=ppy, skew=skew, excess_kurtosis=kurt,
        excluded=matrix.excluded, reading=reading)

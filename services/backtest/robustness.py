"""How much one run's figures can be trusted: the Monte Carlo of its trades and the
probabilistic Sharpe ratio of its daily returns, as the results viewer and the report show them.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.backtest.results import RunResults
from services.backtest.statistics import daily_returns
from services.errors import ValidationError
from services.research import (
    MinimumTrackRecord,
    ProbabilisticSharpe,
    TradeMonteCarlo,
    minimum_track_record,
    monte_carlo_trades,
    probabilistic_sharpe,
    trade_returns,
)
from services.research.monte_carlo import DEFAULT_PATHS, check_options


@dataclass(frozen=True)
class RunRobustness:
    """A run's Monte Carlo of trades, PSR and minimum track record; a note for each one its
    results cannot give (too few trades, too few days)."""

    monte_carlo: TradeMonteCarlo | None
    psr: ProbabilisticSharpe | None
    min_track_record: MinimumTrackRecord | None
    starting_balance: float
    notes: tuple[str, ...]


def run_robustness(results: RunResults, method: str = "bootstrap", paths: int = DEFAULT_PATHS,
                   seed: int = 0) -> RunRobustness:
    """Return the robustness figures of a completed run.

    Raises
    ------
    ValidationError
        For a bad method, number of paths or seed (what the user chose); what the run's
        results cannot support is a note instead.
    """
    check_options(method, paths, seed)  # what the user chose: an error, not a note
    balance = float(results.statistics.get("starting_balance") or 0.0)
    notes: list[str] = []
    monte_carlo = psr = track = None
    trades = trade_returns(results.positions, balance) if balance > 0 else []
    try:
        monte_carlo = monte_carlo_trades(trades, method, paths, seed)
    except ValidationError as e:
        notes.append(f"Monte Carlo: {e.summary}")
    returns = daily_returns(results.equity["equity"], balance or None)
    ppy = results.statistics.get("periods_per_year") or 365.0
    try:
        psr = probabilistic_sharpe(returns, ppy)
        track = minimum_track_record(returns, ppy)
    except ValidationError as e:
        notes.append(f"PSR: {e.summary}")
    return RunRobustness(monte_carlo, psr, track, balance, tuple(notes))

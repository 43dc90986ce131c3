"""Backtests: a BacktestSpec becomes a BacktestRunConfig, runs in a worker process, and leaves
a run folder plus a database row."""

from services.backtest.spec import BacktestSpec, VenueSettings

__all__ = ["BacktestSpec", "VenueSettings"]

"""Backtests: a BacktestSpec becomes a BacktestRunConfig, runs in a worker process, and leaves
a run folder plus a database row."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.backtest.spec import BacktestSpec, VenueSettings

__all__ = ["BacktestSpec", "VenueSettings"]


def __getattr__(name: str):
    # Imported on first use: reading runs (services.backtest.repository) needs no pandas.
    if name in __all__:
        from services.backtest import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'services.backtest' has no attribute {name!r}")

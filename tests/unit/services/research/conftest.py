"""Fixtures of the research-statistics tests: returns matrices and simulated strategy sweeps.

The simulated sweeps are strategies traded on synthetic prices at the statistics layer (no
NautilusTrader): a strategy's daily return is its position, decided from past prices only,
times the next day's price return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.research import ReturnsMatrix

DAYS_PER_YEAR = 365.0


@pytest.fixture
def matrix_of():
    """``matrix_of(values, names=None, ppy=365)`` -> a ReturnsMatrix over consecutive days."""

    def make(values, names=None, ppy: float = DAYS_PER_YEAR) -> ReturnsMatrix:
        values = np.asarray(values, dtype=float)
        index = pd.date_range("2024-01-01", periods=len(values), freq="D", tz="UTC")
        names = names or [f"run-{k}" for k in range(values.shape[1])]
        return ReturnsMatrix.from_frame(pd.DataFrame(values, index=index, columns=names), ppy)

    return make


def _ema(prices: np.ndarray, period: int) -> np.ndarray:
    alpha = 2.0 / (period + 1)
    out = np.empty_like(prices)
    out[0] = prices[0]
    for t in range(1, len(prices)):
        out[t] = alpha * prices[t] + (1 - alpha) * out[t - 1]
    return out


@pytest.fixture
def random_entry_sweep():
    """``random_entry_sweep(seed, runs=40, days=730)`` -> (days x runs) daily returns of
    strategies that enter long or short at random times on a driftless random walk, each run
    with its own seed: no run has an edge, whatever its in-sample Sharpe ratio."""

    def make(seed: int, runs: int = 40, days: int = 730) -> np.ndarray:
        rng = np.random.default_rng(seed)
        market = rng.normal(0.0, 0.02, days)
        # A position held for a random number of days (1 to 20), then a new coin toss.
        positions = np.empty((days, runs))
        for k in range(runs):
            t = 0
            while t < days:
                hold = int(rng.integers(1, 21))
                positions[t:t + hold, k] = rng.choice([-1.0, 1.0])
                t += hold
        return positions * market[:, None]

    return make


@pytest.fixture
def ema_sweep():
    """``ema_sweep(seed, trend=0.004, days=730)`` -> (days x runs, parameters) of an EMA-cross
    grid (fast 2..10, slow 15..120) traded on a market whose drift flips sign every 30 days on
    average: a real edge for fast crosses, little or none for slow ones. ``trend=0`` is a
    driftless random walk, where no cross has an edge."""

    def make(seed: int, trend: float = 0.004, days: int = 730):
        rng = np.random.default_rng(seed)
        flips = rng.random(days) < 1 / 30
        drift = trend * np.where(np.cumsum(flips) % 2 == 0, 1.0, -1.0)
        market = drift + rng.normal(0.0, 0.02, days)
        prices = 100 * np.exp(np.cumsum(market))
        grid = [(f, s) for f in (2, 3, 5, 8, 10) for s in (15, 30, 60, 90, 120)]
        columns = []
        for fast, slow in grid:
            signal = np.sign(_ema(prices, fast) - _ema(prices, slow))
            # Decided at today's close, earns tomorrow's return.
            columns.append(np.r_[0.0, signal[:-1]] * market)
        return np.column_stack(columns)[slow_warmup(grid):], grid

    return make


def slow_warmup(grid) -> int:
    """Days dropped at the start, while the slowest EMA has not settled."""
    return max(slow for _, slow in grid)

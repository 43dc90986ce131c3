"""Tests of services/research/monte_carlo.py: trade returns and the Monte Carlo of trades.

Expected figures are worked out by hand (or by plain loops and the binomial distribution) in
the tests.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from services.errors import ValidationError
from services.research import monte_carlo_trades, trade_returns
from services.research.monte_carlo import MIN_TRADES

# Equity after each: 1.1, 0.88, 0.924, 1.155 (new peak), then under water to the end.
TRADES = [0.1, -0.2, 0.05, 0.25, -0.1, 0.02, 0.03, 0.01, -0.05, 0.04, 0.02]


def _path_by_hand(returns) -> tuple[float, float, int]:
    """Final return, max drawdown and longest spell under water of one path, by a plain loop."""
    equity = peak = 1.0
    deepest, spell, longest = 0.0, 0, 0
    for r in returns:
        equity *= 1 + r
        peak = max(peak, equity)
        deepest = min(deepest, equity / peak - 1)
        spell = spell + 1 if equity < peak else 0
        longest = max(longest, spell)
    return equity - 1, deepest, longest


# -- trade returns ---------------------------------------------------------------------------------
def test_trade_returns_are_pnl_over_the_realised_equity_at_entry(utc):
    # Arrange: a reversal (b opens as a closes), a gap, then d opens while c is still open.
    positions = pd.DataFrame([
        {"opened": utc("2024-01-06"), "closed": utc("2024-01-08"), "realized_pnl": 52.25},  # c
        {"opened": utc("2024-01-01"), "closed": utc("2024-01-03"), "realized_pnl": 100.0},  # a
        {"opened": utc("2024-01-07"), "closed": utc("2024-01-09"), "realized_pnl": -10.0},  # d
        {"opened": utc("2024-01-03"), "closed": utc("2024-01-05"), "realized_pnl": -55.0},  # b
    ])

    # Act
    returns = trade_returns(positions, 1000.0)

    # Assert: a on 1000; b on 1100 (a closed at b's open); c on 1045; d on 1045 (c still open).
    assert returns == pytest.approx([0.1, -0.05, 0.05, -10 / 1045], abs=1e-15)
    # One trade at a time: compounding a, b, c gives the realised equity.
    assert 1000 * np.prod(1 + returns[:3]) == pytest.approx(1000 + 100 - 55 + 52.25, rel=1e-12)


def test_a_run_without_trades_has_no_trade_returns():
    empty = pd.DataFrame(columns=["opened", "closed", "realized_pnl"])
    assert trade_returns(empty, 1000.0).size == 0


# -- the actual path -------------------------------------------------------------------------------
def test_actual_figures_follow_the_trades_in_their_order():
    # Arrange
    final, deepest, longest = _path_by_hand(TRADES)

    # Act
    result = monte_carlo_trades(TRADES, "shuffle", paths=50, seed=1)

    # Assert: peak 1.1, trough 0.88 (-20 %); under water from trade 5 to the end (7 trades).
    assert (deepest, longest) == (pytest.approx(-0.2), 7)
    assert result.final_return.actual == pytest.approx(final, rel=1e-12)
    assert result.max_drawdown.actual == pytest.approx(-0.2, abs=1e-12)
    assert result.longest_drawdown.actual == 7
    path = np.r_[1.0, np.cumprod(1 + np.array(TRADES))]
    assert list(result.bands["actual"]) == pytest.approx(path)


# -- shuffle ---------------------------------------------------------------------------------------
def test_shuffled_order_keeps_the_final_return_and_moves_the_drawdowns():
    # Arrange: the worst conceivable drawdown puts every loss in a row: 0.8 * 0.9 * 0.95 - 1.
    worst = 0.8 * 0.9 * 0.95 - 1
    final = math.prod(1 + r for r in TRADES) - 1

    # Act
    result = monte_carlo_trades(TRADES, "shuffle", paths=2000, seed=7)

    # Assert
    assert result.final_return.values == pytest.approx(np.full(2000, final), rel=1e-12)
    assert result.final_return.p5 == pytest.approx(final) == result.final_return.p95
    assert (result.max_drawdown.values >= worst - 1e-12).all()
    assert result.max_drawdown.values.min() < -0.2  # some orders are worse than the actual one
    assert (result.longest_drawdown.values <= len(TRADES)).all()
    assert result.bands.iloc[-1][["p5", "p50", "p95"]].to_numpy() == pytest.approx([1 + final] * 3)
    assert result.reading.startswith("11 trades shuffled 2,000 times: max drawdown worse than")
    assert "final return" not in result.reading


# -- bootstrap -------------------------------------------------------------------------------------
def test_bootstrap_final_returns_follow_the_binomial_distribution():
    # Arrange: five +10 % and five -10 % trades. Drawn with replacement, the number of winners
    # among 10 is Binomial(10, 1/2): P(<= 2) = 5.5 %, P(<= 4) = 37.7 %, P(<= 5) = 62.3 %,
    # P(<= 7) = 94.5 %, so the 5 / 50 / 95 % quantiles are 2, 5 and 8 winners. E[final + 1] = 1.
    trades = [0.1, -0.1] * 5

    # Act
    result = monte_carlo_trades(trades, "bootstrap", paths=100_000, seed=3)

    # Assert
    assert result.final_return.p5 == pytest.approx(1.1**2 * 0.9**8 - 1, rel=1e-12)
    assert result.final_return.p50 == pytest.approx(1.1**5 * 0.9**5 - 1, rel=1e-12)
    assert result.final_return.p95 == pytest.approx(1.1**8 * 0.9**2 - 1, rel=1e-12)
    assert result.final_return.values.mean() == pytest.approx(0.0, abs=0.005)
    last = result.bands.iloc[-1]
    assert last["p50"] == pytest.approx(1.1**5 * 0.9**5, rel=1e-12)
    assert result.bands.index[0] == 0 and result.bands.iloc[0].tolist() == [1.0] * 4
    assert len(result.bands) == 11


def test_bootstrap_of_identical_trades_has_one_outcome():
    # Act
    result = monte_carlo_trades([0.01] * 12, "bootstrap", paths=300)

    # Assert
    assert result.final_return.values == pytest.approx(np.full(300, 1.01**12 - 1))
    assert (result.max_drawdown.values == 0).all() and (result.longest_drawdown.values == 0).all()


def test_bands_are_ordered_at_every_trade():
    # Arrange
    trades = np.random.default_rng(9).normal(0.002, 0.02, 400)

    # Act
    bands = monte_carlo_trades(trades, "bootstrap", paths=500, seed=2).bands

    # Assert
    assert (bands["p5"] <= bands["p50"]).all() and (bands["p50"] <= bands["p95"]).all()
    assert bands["p95"].iloc[-1] > bands["p5"].iloc[-1]


def test_a_long_run_keeps_its_bands_at_4000_evenly_spaced_trades_and_the_last():
    # Arrange: 10,000 trades of +0.1 % and -0.1 % alternately; shuffled, every path ends
    # where the run does.
    trades = [0.001, -0.001] * 5000

    # Act
    result = monte_carlo_trades(trades, "shuffle", paths=100, seed=1)

    # Assert: the start, 4,000 trades about 2.5 apart, and trade 10,000
    bands = result.bands
    assert bands.index[0] == 0 and bands.index[-1] == 10_000 and len(bands) == 4001
    assert np.diff(bands.index.to_numpy()).max() <= 3
    final = (1.001 * 0.999) ** 5000
    assert bands.iloc[-1].tolist() == pytest.approx([final] * 4, rel=1e-9)
    # The actual curve at a kept trade is the run's equity after it.
    trade = int(bands.index[1001])
    assert bands["actual"].iloc[1001] == pytest.approx(
        (1.001 * 0.999) ** (trade // 2) * (1.001 if trade % 2 else 1.0), rel=1e-9)


def test_the_same_seed_gives_the_same_paths_and_another_seed_others():
    # Arrange
    trades = np.random.default_rng(9).normal(0.002, 0.02, 200)

    # Act
    first = monte_carlo_trades(trades, "bootstrap", paths=200, seed=5)
    again = monte_carlo_trades(trades, "bootstrap", paths=200, seed=5)
    other = monte_carlo_trades(trades, "bootstrap", paths=200, seed=6)

    # Assert
    assert np.array_equal(first.final_return.values, again.final_return.values)
    assert np.array_equal(first.longest_drawdown.values, again.longest_drawdown.values)
    assert not np.array_equal(first.final_return.values, other.final_return.values)
    assert first.to_dict()["seed"] == 5 and first.to_dict()["paths"] == 200


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"returns": [0.01] * (MIN_TRADES - 1)},
     (f"The run has {MIN_TRADES - 1} closed trades; a Monte Carlo of trades needs at least "
     f"{MIN_TRADES}")),
    ({"method": "jackknife"}, "method must be one of bootstrap, shuffle, not 'jackknife'"),
    ({"paths": 0}, "paths must be a whole number from 1 to 100,000, not 0"),
    ({"paths": 1.5}, "not 1.5"),
    ({"returns": [0.01] * 11 + [float("nan")]}, "1 trade returns are not finite numbers"),
    ({"returns": [0.01] * 11 + [-1.0]}, "A trade lost the whole equity it was opened with"),
    ({"seed": -1}, "seed must be a whole number >= 0, not -1"),
    ({"returns": [0.01] * 1000, "paths": 60_000},
     ("60,000 paths of 1,000 trades are 60,000,000 values; the limit is 50,000,000. Use at most "
     "50,000 paths")),
])
def test_bad_input_is_refused_in_one_line(kwargs, message):
    arguments = {"returns": TRADES, **kwargs}
    with pytest.raises(ValidationError) as raised:
        monte_carlo_trades(**arguments)
    assert message in str(raised.value) and "\n" not in str(raised.value)

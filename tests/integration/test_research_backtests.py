"""The research statistics on real backtest sweeps: NautilusTrader EMA crosses through the
workbench's queue and local workers, on hourly bars imported into a fresh catalog.

Two synthetic markets, a year each: a driftless random walk, where an EMA cross's entries carry
no information (random entries), and a market with a planted edge, whose drift flips sign every
three days on average, which fast crosses follow and slow ones lag. The overfitting statistics
must tell them apart: a high PBO and a low DSR on the first, the reverse on the second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from services.backtest.sweep import SweepSpec
from services.catalog import CatalogService
from services.catalog.importer import ImportOptions
from services.catalog.writer import CatalogWriter
from services.identity.principal import Principal
from services.research import (
    ReturnsMatrix,
    deflated_sharpe,
    monte_carlo_trades,
    parameter_stability,
    probabilistic_sharpe,
    probability_of_overfitting,
    run_returns,
    trade_returns,
)
from services.research.overfitting import LOW_PBO
from services.workbench import Workbench
from tests.conftest import close_workbench

pytestmark = pytest.mark.integration

RESEARCHER = Principal.user("researcher", {"researcher"})
SWEEP_TIMEOUT_S = 300
HOURS = pd.date_range("2024-01-01 01:00", "2024-12-31 00:00", freq="1h", tz="UTC")
SIGMA = 0.004  # hourly volatility of both markets
GRID = {"fast_ema_period": ["3,6,12,24"], "slow_ema_period": ["36,72,144"]}
# 5,000 units at a price near 100: about half the starting balance of 1,000,000 per trade.
FIXED = {"trade_size": "5000"}


def _bars_csv(path, log_returns: np.ndarray, rng: np.random.Generator):
    """An OHLCV file of hourly bars stamped at their close, from the close's log returns."""
    close = 100 * np.exp(np.cumsum(log_returns))
    open_ = np.r_[100.0, close[:-1]]
    wick = np.abs(rng.normal(0, SIGMA / 2, (2, close.size)))
    frame = pd.DataFrame({
        "timestamp": HOURS.strftime("%Y-%m-%d %H:%M:%S"),
        "open": open_.round(2), "close": close.round(2),
        "high": (np.maximum(open_, close) * (1 + wick[0])).round(2),
        "low": (np.minimum(open_, close) * (1 - wick[1])).round(2),
        "volume": rng.integers(1, 100, close.size),
    })
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def research_workbench(tmp_path_factory, new_database_url):
    """A Workbench with two local workers over a catalog of the two synthetic markets."""
    root = tmp_path_factory.mktemp("research")
    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, SIGMA, HOURS.size)
    regime = np.where(np.cumsum(rng.random(HOURS.size) < 1 / 72) % 2 == 0, 1.0, -1.0)
    trend = regime * SIGMA / 4 + rng.normal(0.0, SIGMA, HOURS.size)
    writer = CatalogWriter(CatalogService(str(root / "catalog")))
    for symbol, returns in (("NOISE", noise), ("TREND", trend)):
        source = _bars_csv(root / f"{symbol}.csv", returns, rng)
        writer.import_file(str(source), ImportOptions(
            f"{symbol}USDT-PERP.BINANCE", bar_spec="1-HOUR-LAST", timestamps_mark="close",
            size_precision=3))
    wb = Workbench.open(state_dir=root / "state", catalog=str(root / "catalog"), max_parallel=2,
                        scheduler=True, database_url=new_database_url())
    yield wb
    close_workbench(wb)


def _sweep(wb: Workbench, symbol: str):
    """Run the EMA grid on ``symbol``; return each run's results keyed by 'fast/slow'."""
    spec = SweepSpec(strategy="ema_cross", start="2024-01-01", end="2024-12-31", grid=GRID,
                     bar_type=f"{symbol}USDT-PERP.BINANCE-1-HOUR-LAST-EXTERNAL", fixed=FIXED)
    sweep_id = wb.backtests.submit_sweep(spec, principal=RESEARCHER)
    info = wb.backtests.wait_sweep(sweep_id, timeout=SWEEP_TIMEOUT_S)
    assert info.status == "Completed", [(r.run_id, r.status, r.error) for r in info.runs]
    return {f"{r.parameters['fast_ema_period']}/{r.parameters['slow_ema_period']}":
            wb.backtests.results(r.run_id) for r in info.runs}


def _matrix(results: dict) -> ReturnsMatrix:
    balance = next(iter(results.values())).statistics["starting_balance"]
    return ReturnsMatrix.from_equity({k: r.equity["equity"] for k, r in results.items()}, balance)


def test_on_a_random_walk_the_sweep_is_flagged_as_overfit(research_workbench):
    # Act
    results = _sweep(research_workbench, "NOISE")
    matrix = _matrix(results)
    pbo = probability_of_overfitting(matrix)
    dsr = deflated_sharpe(matrix)

    # Assert: 12 runs of a year, every one trading; the best run is no better than chance.
    assert matrix.trials == 12 and matrix.excluded == () and matrix.observations >= 360
    assert pbo.value > LOW_PBO, pbo.reading
    assert dsr.value < 0.95, dsr.reading
    assert "is not distinguishable from the best of 12 random strategies" in dsr.reading


def test_on_a_planted_edge_the_best_run_holds_up(research_workbench):
    # Act
    results = _sweep(research_workbench, "TREND")
    matrix = _matrix(results)
    pbo = probability_of_overfitting(matrix)
    dsr = deflated_sharpe(matrix)

    # Assert
    assert pbo.value < LOW_PBO, pbo.reading
    assert dsr.value >= 0.95, dsr.reading
    assert int(dsr.best_run.split("/")[0]) <= 6, dsr.best_run  # a fast cross follows trends best

    # The best run's PSR uses the Sharpe ratio its statistics show.
    best = results[dsr.best_run]
    returns, ppy = run_returns(best.equity["equity"], best.statistics["starting_balance"])
    psr = probabilistic_sharpe(returns, ppy)
    assert psr.sharpe == pytest.approx(best.statistics["sharpe"], rel=1e-9)
    assert dsr.sharpe == pytest.approx(best.statistics["sharpe"], rel=1e-9)

    # Its trades: one position at a time, no fees: compounding the trade returns gives the run's
    # total return, whatever order the shuffle puts them in.
    trades = trade_returns(best.positions, best.statistics["starting_balance"])
    assert trades.size == best.statistics["num_trades"] >= 10
    shuffled = monte_carlo_trades(trades, "shuffle", paths=200, seed=1)
    assert shuffled.final_return.actual == pytest.approx(best.statistics["total_return"],
                                                         rel=1e-6)
    assert shuffled.final_return.values == pytest.approx(
        np.full(200, best.statistics["total_return"]), rel=1e-6)
    boot = monte_carlo_trades(trades, "bootstrap", paths=1000, seed=1)
    assert boot.final_return.p5 < best.statistics["total_return"] < boot.final_return.p95

    # The grid: the fast crosses form a plateau, the best point is not a lone spike.
    board = pd.DataFrame([{"fast": int(k.split("/")[0]), "slow": int(k.split("/")[1]),
                           "sharpe": r.statistics["sharpe"]} for k, r in results.items()])
    stability = parameter_stability(board, ["fast", "slow"], "sharpe")
    assert stability.best_smoothed["fast"] <= 6, stability.reading

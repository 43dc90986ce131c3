"""A trade's return matches its PnL: both after commission (services/backtest/results.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from services.backtest.results import RunResults


def _results(positions: dict, multiplier: float) -> RunResults:
    empty = pd.DataFrame()
    return RunResults(info=None, spec={}, summary={"multiplier": multiplier}, statistics={},
                      equity=empty, fills=empty, positions=pd.DataFrame(positions), orders=empty,
                      account=empty, config={})


def test_the_return_is_the_pnl_after_commission_over_the_entry_notional():
    # 0.5 BTC bought at 40,000 (notional 20,000 USDT) and sold at 40,400: 200 USDT gross,
    # 16 USDT commission, 184 USDT PnL -> 0.92 % (the price moved 1 %).
    results = _results({"quantity": [0.5], "avg_px_open": [40_000.0], "realized_pnl": [184.0],
                        "realized_return": [0.01]}, multiplier=1.0)

    assert results.net_returns().tolist() == [pytest.approx(0.0092)]


def test_the_contract_multiplier_is_in_the_notional():
    # 2 EUR/USD futures of 125,000 EUR at 1.1000: 275,000 USD; a PnL of 2,450 USD -> 0.8909 %.
    results = _results({"quantity": [2.0], "avg_px_open": [1.1], "realized_pnl": [2_450.0],
                        "realized_return": [0.0091]}, multiplier=125_000.0)

    assert results.net_returns().tolist() == [pytest.approx(2_450 / 275_000)]

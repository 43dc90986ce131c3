"""How runs are named where a user sees several at once (components/formats.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from components.formats import run_names


def _run(run_id: str, label: str = "", strategy: str = "ema_cross",
         instrument_id: str = "AAPL.XNAS") -> SimpleNamespace:
    return SimpleNamespace(run_id=run_id, label=label, strategy=strategy,
                           instrument_id=instrument_id,
                           start=pd.Timestamp("2024-01-01", tz="UTC"),
                           end=pd.Timestamp("2024-01-31", tz="UTC"))


def test_runs_are_named_by_label_else_strategy_instrument_and_period():
    assert run_names([_run("r1", "BTC Jan-22 EMA 10/20"), _run("r2")]) == [
        "BTC Jan-22 EMA 10/20", "ema_cross · AAPL.XNAS · 2024-01-01–2024-01-31"]


def test_runs_that_would_read_alike_carry_their_ids():
    assert run_names([_run("r1", "EMA"), _run("r2", "EMA"), _run("r3", "other")]) == [
        "EMA · r1", "EMA · r2", "other"]

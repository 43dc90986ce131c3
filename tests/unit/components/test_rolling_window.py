"""The rolling Sharpe and volatility cover a full 30 calendar days, or say they need more
(components/charts.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from bokeh.models import Label, Range1d

from components.charts import rolling_chart, rolling_frame


def _run(days: int) -> SimpleNamespace:
    """A run whose equity closes each day +1 %, then -0.5 %, alternately, from 100."""
    closes, equity = [], 100.0
    for day in range(days):
        equity *= 1.01 if day % 2 == 0 else 0.995
        closes.append(equity)
    index = pd.date_range("2024-01-01 23:59", periods=days, freq="1D", tz="UTC")
    return SimpleNamespace(equity=pd.DataFrame({"equity": closes}, index=index),
                           statistics={"starting_balance": 100.0, "periods_per_year": 365.0})


def test_the_first_value_is_on_the_30th_day_and_covers_30_days():
    frame = rolling_frame(_run(40))

    assert frame["sharpe"].iloc[:29].isna().all() and frame["volatility"].iloc[:29].isna().all()
    # Day 30: 15 returns of +1 % and 15 of -0.5 %: mean 0.25 %, sample deviation
    # sqrt(30 * 0.75 %^2 / 29); annualised over 365 days.
    std = math.sqrt(30 * 0.0075**2 / 29)
    assert frame["sharpe"].iloc[29] == pytest.approx(0.0025 / std * math.sqrt(365), rel=1e-9)
    assert frame["volatility"].iloc[29] == pytest.approx(std * math.sqrt(365) * 100, rel=1e-9)
    assert frame["sharpe"].iloc[29:].notna().all()


def test_a_run_shorter_than_the_window_says_what_it_needs():
    chart = rolling_chart(_run(10), Range1d(0, 1))

    notes = [label.text for label in chart.select({"type": Label, "name": "no-data"})]
    assert notes == ["Needs 30 days of returns; this run has 10 days"]
    assert np.isnan(chart.select_one({"name": "sharpe"}).data_source.data["sharpe"]).all()


def test_a_long_enough_run_has_no_note():
    chart = rolling_chart(_run(31), Range1d(0, 1))

    assert not list(chart.select({"type": Label, "name": "no-data"}))


"""The report's table encoding and size budget, and the comparison's choice of the best run.

Hand-built frames only (no backtest): what ``components.report`` embeds in a
``<div class="wb-table" data-payload=...>`` must decode to the same rows, and
``services.backtest.statistics.best_index`` must pick the right run for each kind of metric.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import secrets

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.report import _BUDGET_FILL, _encode_table, _within_budget
from services.backtest.metric_labels import LOWER_IS_BETTER, NOT_RANKED, best_index


def _decode(payload: str) -> dict:
    """What the report's script does: base64, then gunzip, then JSON."""
    return json.loads(gzip.decompress(base64.b64decode(payload)))


def _column(table: dict, name: str) -> list:
    return table["data"][table["columns"].index(name)]


def _fills(rows: int, seed: int = 7) -> pd.DataFrame:
    """A fills-like table: times, sides, sizes and prices, as homogeneous as a real run's."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "ts": pd.date_range("2024-01-01", periods=rows, freq="1min", tz="UTC"),
        "side": rng.choice(["BUY", "SELL"], rows),
        "quantity": np.full(rows, 0.1),
        "price": np.round(42_000 + rng.normal(0, 50, rows).cumsum(), 1),
        "commission": np.round(rng.uniform(1, 2, rows), 6),
    })


# -- _encode_table -----------------------------------------------------------------------------
def test_encode_table_round_trips_every_kind_of_column():
    # Arrange
    frame = pd.DataFrame({
        "when": pd.Series([pd.Timestamp("2024-03-04 14:31", tz="UTC"), pd.NaT,
                           pd.Timestamp("1970-01-01 00:00:01.5", tz="UTC")]),
        "naive": pd.to_datetime(["2024-03-04 14:31:00", "2024-03-04 14:32:00", None]),
        "pnl": [12.5, float("nan"), float("inf")],
        "count": [1, 2, 3],
        "held": pd.to_timedelta(["1h30min", None, "2 days 00:00:05"]),
        "side": ["LONG", None, "SHORT"],
        "flag": [True, False, True],
    })

    # Act
    payload, size = _encode_table(frame)
    table = _decode(payload)

    # Assert
    assert size == len(base64.b64decode(payload))
    assert table["rows"] == 3
    assert table["columns"] == list(frame.columns)
    assert table["kinds"] == ["time", "time", "num", "num", "duration", "text", "text"]
    # Times travel as epoch seconds (UTC; naive times are taken as UTC), NaT as null.
    assert _column(table, "when") == [1709562660.0, None, 1.5]
    assert _column(table, "naive") == [1709562660.0, 1709562720.0, None]
    # Numbers stay numbers; NaN and inf (never valid JSON) become null.
    assert _column(table, "pnl") == [12.5, None, None]
    assert _column(table, "count") == [1.0, 2.0, 3.0]
    # Durations travel as seconds (so they sort as durations); missing values are null in
    # every kind.
    assert _column(table, "held") == [5400.0, None, 172805.0]
    assert _column(table, "side") == ["LONG", None, "SHORT"]
    assert _column(table, "flag") == ["True", "False", "True"]


def test_encode_table_of_an_empty_frame_keeps_its_columns():
    # A zero-trade run: the header still shows, with no rows.
    frame = pd.DataFrame({"entry time": pd.Series([], dtype="datetime64[ns, UTC]"),
                          "pnl": pd.Series([], dtype=float), "side": pd.Series([], dtype=object)})

    table = _decode(_encode_table(frame)[0])

    assert table == {"columns": ["entry time", "pnl", "side"], "kinds": ["time", "num", "text"],
                     "digits": [None, None, None], "data": [[], [], []], "rows": 0}


def test_encode_table_is_deterministic():
    # gzip with mtime=0: the same run gives the same bytes (reports can be diffed and cached).
    frame = _fills(500)

    assert _encode_table(frame) == _encode_table(frame.copy())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=-1e15, max_value=1e15),
                          st.just(float("nan")), st.just(float("-inf"))), max_size=40))
def test_encode_table_keeps_every_finite_number_to_ten_decimals(values):
    frame = pd.DataFrame({"x": pd.Series(values, dtype=float)})

    decoded = _column(_decode(_encode_table(frame)[0]), "x")

    assert len(decoded) == len(values)
    for got, value in zip(decoded, values, strict=True):
        if math.isfinite(value):
            assert got == pytest.approx(value, rel=1e-12, abs=1e-10)
        else:
            assert got is None


# -- _within_budget ----------------------------------------------------------------------------
def test_within_budget_keeps_every_row_that_fits():
    frame = _fills(2_000)
    _, size = _encode_table(frame)

    kept, note = _within_budget(frame, budget=size)

    assert note == ""
    pd.testing.assert_frame_equal(kept, frame)


def test_within_budget_keeps_the_first_rows_and_says_so_when_over():
    # Arrange
    frame = _fills(6_000)
    _, size = _encode_table(frame)
    budget = size // 3

    # Act
    kept, note = _within_budget(frame, budget)

    # Assert: a prefix of the rows, within the budget, and a note naming both counts.
    assert 0 < len(kept) < len(frame)
    pd.testing.assert_frame_equal(kept, frame.iloc[: len(kept)])
    assert budget * _BUDGET_FILL <= _encode_table(kept)[1] <= budget
    assert f"first {len(kept):,} of {len(frame):,} rows" in note
    assert "CSV or Parquet" in note


def test_within_budget_keeps_at_least_one_row():
    frame = _fills(50)

    kept, note = _within_budget(frame, budget=1)

    assert len(kept) == 1 and "first 1 of 50 rows" in note


def test_within_budget_of_an_empty_frame_is_the_frame():
    frame = _fills(0)

    kept, note = _within_budget(frame, budget=1)

    assert kept is frame and note == ""


def test_within_budget_holds_when_the_first_rows_compress_worse():
    # Arrange: random ids first (incompressible), then one repeated id: a proportional guess
    # from the whole table's compression would keep ~1.8x the budget.
    rows = 4_000
    frame = pd.DataFrame({"client_order_id": [secrets.token_hex(16) for _ in range(rows // 2)]
                          + ["O-20240101-000000-001-001-1"] * (rows // 2)})
    budget = _encode_table(frame)[1] // 2

    # Act
    kept, note = _within_budget(frame, budget)

    # Assert: a prefix that fits and fills the budget (or the longest one that fits).
    assert note
    size = _encode_table(kept)[1]
    assert size <= budget
    assert size >= budget * _BUDGET_FILL or _encode_table(frame.iloc[: len(kept) + 1])[1] > budget


# -- best_index --------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "values", "best"), [
    ("total_return", [0.01, 0.12, -0.30], 1),  # higher return is better
    ("sharpe", [-0.5, 0.2, 1.7], 2),
    ("win_rate", [0.55, 0.40], 0),
    ("max_drawdown", [-0.30, -0.05, -0.12], 1),  # drawdowns are negative: shallower is better
    ("var_95", [-0.02, -0.01], 1),
    ("volatility", [0.25, 0.10, 0.40], 1),  # lower volatility is better
    ("commissions", [120.0, 80.0], 1),
    ("longest_losing_streak", [3, 9, 5], 0),
    ("longest_winning_streak", [3, 9, 5], 1),
])
def test_best_index_picks_the_better_end_for_the_metric(key, values, best):
    assert best_index(key, values) == best


@pytest.mark.parametrize("key", sorted(NOT_RANKED))
def test_best_index_ranks_nothing_for_unranked_metrics(key):
    assert best_index(key, [1.0, 2.0, 3.0]) is None


@pytest.mark.parametrize("values", [[], [0.1], [0.1, None], [None, float("nan")],
                                    [float("inf"), 0.2], ["0.3", 0.2], [True, 0.2]])
def test_best_index_needs_two_finite_numbers(values):
    # Text, booleans, None, NaN and inf are not numbers to compare.
    assert best_index("total_return", values) is None
    assert best_index("volatility", values) is None


def test_best_index_ignores_what_is_not_a_number():
    values = [None, 0.05, float("nan"), 0.30, float("-inf"), 0.12]

    assert best_index("total_return", values) == 3
    assert best_index("volatility", values) == 1


def test_best_index_accepts_numpy_numbers():
    # Values read back from a DataFrame may be numpy scalars.
    assert best_index("total_return", [np.float64(0.1), np.float64(0.2)]) == 1


def test_lower_is_better_and_unranked_do_not_overlap():
    assert not (LOWER_IS_BETTER & NOT_RANKED)


@pytest.mark.parametrize("key", ["total_return", "volatility"])
@pytest.mark.parametrize("values", [[0.0, 0.0], [0.2, 0.2, 0.2], [0.2, None, 0.2]])
def test_best_index_marks_no_winner_when_all_values_are_equal(key, values):
    # Two zero-trade runs: neither is the better one.
    assert best_index(key, values) is None


def test_best_index_marks_no_winner_when_the_best_is_shared():
    assert best_index("total_return", [0.3, 0.1, 0.3]) is None
    assert best_index("volatility", [0.1, 0.3, 0.1]) is None


def test_best_index_still_picks_a_winner_when_others_tie():
    assert best_index("total_return", [0.1, 0.1, 0.3]) == 2
    assert best_index("volatility", [0.3, 0.3, 0.1]) == 2


def test_encode_table_carries_the_decimals_each_number_column_shows():
    # Arrange: prices at the instrument's precision, money at 2; text and times have none.
    frame = pd.DataFrame({"ts": pd.to_datetime(["2024-01-02"], utc=True), "price": [45700.9],
                          "quantity": [0.1], "pnl": [-4.589999], "count": [3], "side": ["BUY"]})

    # Act
    table = _decode(_encode_table(frame, {"price": 1, "quantity": 3, "pnl": 2, "ts": 4,
                                          "side": 1})[0])

    # Assert: the values stay exact (for sorting); only the display decimals travel.
    assert table["digits"] == [None, 1, 3, 2, None, None]
    assert _column(table, "pnl") == [-4.589999]


def test_drift_tables_are_headed_in_words():
    from components.drift_report import _readable

    frame = pd.DataFrame(columns=["engine_time", "backtest_price", "slippage_bps", "match"])

    assert list(_readable(frame).columns) == ["engine time", "backtest price", "slippage (bps)",
                                              "match"]

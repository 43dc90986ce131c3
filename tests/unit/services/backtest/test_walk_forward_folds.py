"""Tests of the fold plan of services/backtest/walk_forward.py: windows, anchoring, bad input."""

from __future__ import annotations

import pandas as pd
import pytest

from services.backtest.spec import VenueSettings
from services.backtest.walk_forward import (
    MAX_FOLDS,
    Fold,
    WalkForwardSpec,
    check_windows,
    plan_folds,
)
from services.errors import ValidationError


def _t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_rolling_folds_move_by_the_step_and_test_on_the_days_after_training():
    # Act: 10 days, train 4, test 2, step 2 -> test windows end on day 6, 8, 10.
    folds = plan_folds(_t("2024-01-01"), _t("2024-01-11"), 4, 2)

    # Assert
    assert folds == [
        Fold(1, _t("2024-01-01"), _t("2024-01-05"), _t("2024-01-05"), _t("2024-01-07")),
        Fold(2, _t("2024-01-03"), _t("2024-01-07"), _t("2024-01-07"), _t("2024-01-09")),
        Fold(3, _t("2024-01-05"), _t("2024-01-09"), _t("2024-01-09"), _t("2024-01-11")),
    ]


def test_anchored_folds_start_at_the_range_start_and_grow():
    folds = plan_folds(_t("2024-01-01"), _t("2024-01-11"), 4, 2, anchored=True)

    assert [(f.train_start, f.train_end) for f in folds] == [
        (_t("2024-01-01"), _t("2024-01-05")), (_t("2024-01-01"), _t("2024-01-07")),
        (_t("2024-01-01"), _t("2024-01-09"))]
    assert [f.test_end for f in folds] == [_t("2024-01-07"), _t("2024-01-09"), _t("2024-01-11")]


def test_a_step_longer_than_the_test_leaves_gaps_between_test_windows():
    folds = plan_folds(_t("2024-01-01"), _t("2024-01-15"), 4, 2, step_days=5)

    assert [(f.test_start, f.test_end) for f in folds] == [
        (_t("2024-01-05"), _t("2024-01-07")), (_t("2024-01-10"), _t("2024-01-12"))]


def test_fractional_days_are_hours():
    (fold,) = plan_folds(_t("2024-01-01"), _t("2024-01-02"), 0.5, 0.25, step_days=1)

    assert fold.train_end == _t("2024-01-01 12:00") and fold.test_end == _t("2024-01-01 18:00")


def test_folds_that_do_not_fit_the_range_are_refused_with_the_lengths():
    with pytest.raises(ValidationError) as caught:
        plan_folds(_t("2024-01-01"), _t("2024-01-21"), 15, 10)

    assert str(caught.value) == (
        "The folds do not fit the range: one fold needs 15 train + 10 test = 25 days but "
        "2024-01-01 00:00 to 2024-01-21 00:00 spans 20.0 days; shorten --train/--test or "
        "widen the range.")


def test_a_step_shorter_than_the_test_window_is_refused():
    with pytest.raises(ValidationError) as caught:
        plan_folds(_t("2024-01-01"), _t("2024-03-01"), 10, 5, step_days=3)

    assert "step: 3 days is shorter than the test window (5 days)" in caught.value.problems[0]


@pytest.mark.parametrize(("train", "test", "field"), [(0, 5, "train"), (5, -1, "test"),
                                                      (float("nan"), 5, "train"),
                                                      (True, 5, "train")])
def test_lengths_must_be_positive_numbers(train, test, field):
    with pytest.raises(ValidationError) as caught:
        plan_folds(_t("2024-01-01"), _t("2024-03-01"), train, test)

    assert caught.value.problems[0].startswith(f"{field}: must be a positive number of days")


def test_too_many_folds_are_refused():
    with pytest.raises(ValidationError, match=f"more than {MAX_FOLDS} folds"):
        plan_folds(_t("2020-01-01"), _t("2024-01-01"), 1, 1)


def test_a_window_without_bars_is_named():
    # Arrange: hourly bars on Jan 1-4 and Jan 9-12 (a gap from Jan 5 to Jan 8).
    times = pd.DatetimeIndex([*pd.date_range("2024-01-01 01:00", "2024-01-05 00:00", freq="h"),
                              *pd.date_range("2024-01-09 01:00", "2024-01-13 00:00", freq="h")])
    folds = plan_folds(_t("2024-01-01"), _t("2024-01-13"), 2, 2)

    # Act
    with pytest.raises(ValidationError) as caught:
        check_windows(folds, times, "X.SIM-1-HOUR-LAST-EXTERNAL")

    # Assert: fold 2 tests on Jan 5-7, inside the gap.
    assert str(caught.value).startswith(
        "Fold 2's test window 2024-01-05 00:00 to 2024-01-07 00:00 holds no bars of "
        "X.SIM-1-HOUR-LAST-EXTERNAL")


def test_windows_with_bars_pass():
    times = pd.date_range("2024-01-01 01:00", "2024-01-13 00:00", freq="h")

    check_windows(plan_folds(_t("2024-01-01"), _t("2024-01-13"), 2, 2), times, "X")


def test_the_spec_round_trips_through_its_stored_form():
    spec = WalkForwardSpec(strategy="ema_cross", bar_type="X", grid={"fast_ema_period": ["5,10"]},
                           train_days=30, test_days=10, step_days=15, anchored=True,
                           metric="sortino", random_draws=2, seed=3,
                           constraints=("fast_ema_period<8",), fixed={"trade_size": "1"},
                           venue=VenueSettings(starting_balance="1000"), label="wf")

    assert WalkForwardSpec.from_dict(spec.to_dict()) == spec

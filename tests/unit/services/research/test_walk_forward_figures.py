"""Tests of services/research/walk_forward.py against hand-computed values."""

from __future__ import annotations

import pandas as pd
import pytest

from services.errors import ValidationError
from services.research.walk_forward import (
    annualised_return,
    choice_stability,
    stitch_equity,
    walk_forward_efficiency,
)


def test_annualised_return_compounds_over_the_year():
    # 10 % in half a year (182.625 days) is 1.1^2 - 1 = 21 % a year.
    assert annualised_return(0.10, 182.625) == pytest.approx(0.21, rel=1e-12)
    assert annualised_return(-0.19, 730.5) == pytest.approx(0.9 - 1, rel=1e-12)  # sqrt(0.81)
    assert annualised_return(None, 10) is None
    assert annualised_return(-1.0, 10) is None


def test_efficiency_is_mean_annualised_oos_over_mean_annualised_is():
    # Arrange: two folds, IS 20 % and 40 % a year, OOS 10 % and 20 %.
    result = walk_forward_efficiency([0.2, 0.4], [0.1, 0.2])

    # Assert: (0.15) / (0.30) = 0.5, per fold 0.5 and 0.5.
    assert result.value == pytest.approx(0.5)
    assert result.in_sample == pytest.approx(0.3) and result.out_of_sample == pytest.approx(0.15)
    assert result.per_fold == pytest.approx((0.5, 0.5))
    assert result.folds == 2
    assert result.reading.startswith("Walk-forward efficiency 0.50 (mean annualised return "
                                     "15.00 % out of sample against 30.00 % in sample over 2 "
                                     "folds): the optimisation's promise largely holds")


def test_efficiency_leaves_out_folds_without_figures():
    result = walk_forward_efficiency([0.2, None, 0.4], [0.3, 0.1, None])

    assert result.value == pytest.approx(1.5) and result.folds == 1
    assert result.per_fold == (pytest.approx(1.5), None, None)


def test_no_efficiency_when_in_sample_returns_are_not_positive():
    result = walk_forward_efficiency([-0.1, 0.05], [0.2, 0.1])

    assert result.value is None
    assert "did not earn a positive return even in sample" in result.reading


def test_losing_out_of_sample_reads_as_fitted():
    result = walk_forward_efficiency([0.3], [-0.1])

    assert result.value == pytest.approx(-1 / 3)
    assert "lose money" in result.reading


def test_stitched_equity_reinvests_from_one_test_window_to_the_next():
    # Arrange: two test runs from 100: the first ends at 110 (+10 %), the second at 95 (-5 %).
    first = pd.Series([100.0, 105.0, 110.0],
                      index=pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC"))
    second = pd.Series([100.0, 90.0, 95.0],
                       index=pd.date_range("2024-01-03", periods=3, freq="D", tz="UTC"))

    # Act
    stitched = stitch_equity([first, second], 100.0)

    # Assert: the shared day (Jan 3) comes from the first; then 110 * 0.90, 110 * 0.95.
    assert list(stitched.index.day) == [1, 2, 3, 4, 5]
    assert stitched.to_numpy() == pytest.approx([100.0, 105.0, 110.0, 99.0, 104.5])


def test_overlapping_test_windows_cannot_be_stitched():
    first = pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2, tz="UTC"))
    second = pd.Series([1.0, 2.0], index=pd.date_range("2024-01-01", periods=2, tz="UTC"))

    with pytest.raises(ValidationError, match="Test windows overlap"):
        stitch_equity([first, second], 1.0)


def test_choice_stability_counts_the_modal_value_and_the_spread_over_the_grid():
    # Arrange: fast chosen 5, 5, 10, 5 from a grid 5..20; slow 30, 60, 90, 120 from 30..120.
    choices = [{"fast": 5, "slow": 30}, {"fast": 5, "slow": 60}, {"fast": 10, "slow": 90},
               {"fast": 5, "slow": 120}]

    # Act
    stability = choice_stability(choices, {"fast": [5, 10, 20], "slow": [30, 60, 90, 120]})

    # Assert: fast 5 in 3 of 4; spread std(5,5,10,5)=2.165 over 15; slow all different,
    # std(30,60,90,120)=33.54 over 90 = 0.373 > 0.25.
    fast, slow = stability.parameters
    assert (fast.mode, fast.mode_share, fast.stable) == (5, 0.75, True)
    assert fast.spread == pytest.approx(2.1650635 / 15, rel=1e-6)
    assert (slow.mode, slow.mode_share, slow.stable) == (30, 0.25, False)
    assert slow.spread == pytest.approx(33.5410197 / 90, rel=1e-6)
    assert not stability.stable
    assert "the choice moves from fold to fold" in stability.reading


def test_choice_stability_without_choices_says_so():
    assert choice_stability([], {"fast": [1, 2]}).reading == "No fold has chosen parameters yet."

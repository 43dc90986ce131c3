"""The research statistics against an independent implementation: pypbo (github.com/esvhd/pypbo,
on PyPI as ``rltrade-pypbo``), a test-only dependency.

pypbo takes per-period Sharpe ratios and Pearson kurtosis; it estimates skew and kurtosis with
pandas' bias-corrected estimators, as the workbench does, so the figures must agree to rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pypbo
import pytest

from services.research import (
    deflated_sharpe,
    expected_maximum_sharpe,
    minimum_track_record,
    probabilistic_sharpe,
    probability_of_overfitting,
)

PPY = 365.0


def _sharpe(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=0) / x.std(axis=0, ddof=1)


@pytest.fixture
def sweep() -> np.ndarray:
    """500 days x 12 runs with different edges, fat tails and a common market factor."""
    rng = np.random.default_rng(17)
    market = rng.standard_t(4, (500, 1)) * 0.006
    return 0.5 * market + rng.standard_t(5, (500, 12)) * 0.008 + np.linspace(0, 0.0015, 12)


def test_psr_agrees_with_pypbo(sweep):
    for k in range(sweep.shape[1]):
        # Act
        ours = probabilistic_sharpe(sweep[:, k], PPY, benchmark=0.5)
        theirs = pypbo.psr_from_returns(pd.Series(sweep[:, k]), target_sharpe=0.5 / math.sqrt(PPY))

        # Assert
        assert ours.value == pytest.approx(theirs, abs=1e-10)


def test_minimum_track_record_agrees_with_pypbo(sweep):
    returns = pd.Series(sweep[:, -1])

    # Act
    ours = minimum_track_record(sweep[:, -1], PPY, confidence=0.9)
    theirs = pypbo.minTRL(_sharpe(sweep[:, -1]), returns.skew(), returns.kurtosis() + 3, prob=0.9)

    # Assert
    assert ours.days == pytest.approx(theirs, rel=1e-10)


def test_expected_maximum_agrees_with_pypbo():
    for trials in (5, 12, 100, 1000):
        assert expected_maximum_sharpe(trials) == pytest.approx(pypbo.expected_max(trials),
                                                                rel=1e-12)


def test_dsr_agrees_with_pypbo(matrix_of, sweep):
    # Arrange
    sharpes = _sharpe(sweep)
    best = int(np.argmax(sharpes))
    returns = pd.Series(sweep[:, best])
    theirs = pypbo.dsr(sharpes[best], np.std(sharpes, ddof=1), sweep.shape[1], len(sweep),
                       returns.skew(), returns.kurtosis() + 3)

    # Act
    ours = deflated_sharpe(matrix_of(sweep))

    # Assert
    assert ours.best_run == f"run-{best}"
    assert ours.value == pytest.approx(theirs, abs=1e-10)


@pytest.mark.parametrize("partitions", [6, 10, 16])
def test_pbo_agrees_with_pypbo_split_by_split(matrix_of, sweep, partitions):
    # Act
    ours = probability_of_overfitting(matrix_of(sweep), partitions=partitions)
    theirs = pypbo.pbo(sweep, S=partitions, metric_func=_sharpe, threshold=0)

    # Assert
    assert ours.value == pytest.approx(theirs.pbo, abs=1e-12)
    assert ours.logits == pytest.approx(np.array(theirs.logits), abs=1e-9)
    assert ours.oos_loss == pytest.approx(theirs.prob_oos_loss, abs=1e-12)
    assert ours.in_sample_sharpe / math.sqrt(PPY) == pytest.approx(theirs.R_n_star, abs=1e-9)
    assert ours.out_of_sample_sharpe / math.sqrt(PPY) == pytest.approx(theirs.R_bar_n_star,
                                                                       abs=1e-9)

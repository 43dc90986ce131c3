"""Tests of services/research/overfitting.py: the probability of backtest overfitting by CSCV.

Small cases are worked out by hand; larger ones against a plain-loop CSCV written here from the
paper's steps; the behaviour on noise and on a planted edge over many simulated sweeps.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy import stats

from services.errors import ValidationError
from services.research import deflated_sharpe, probabilistic_sharpes, probability_of_overfitting
from services.research.overfitting import LOW_PBO


def _cscv_by_loops(values: np.ndarray, partitions: int):
    """The paper's algorithm step by step: logits and the in-sample best's OOS Sharpe ratios."""
    t, n = values.shape
    values = values[t % partitions:]
    blocks = np.split(values, partitions)
    logits, oos = [], []
    for chosen in combinations(range(partitions), partitions // 2):
        train = np.concatenate([blocks[i] for i in chosen])
        test = np.concatenate([blocks[i] for i in range(partitions) if i not in chosen])
        train_sr = train.mean(axis=0) / train.std(axis=0, ddof=1)
        test_sr = test.mean(axis=0) / test.std(axis=0, ddof=1)
        best = int(np.argmax(train_sr))
        rank = stats.rankdata(test_sr)[best]
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
        oos.append(test_sr[best])
    return np.array(logits), np.array(oos)


def _halves(first: list[list[float]], second: list[list[float]]) -> np.ndarray:
    """Returns of runs (columns) over two partitions of the days, given row by row."""
    return np.array(first + second, dtype=float)


# -- worked by hand --------------------------------------------------------------------------------
def test_an_in_sample_winner_that_always_loses_out_of_sample_has_pbo_one(matrix_of):
    # Arrange: S = 2 gives two splits, each half once in sample. Run a wins the first half and
    # is worst in the second, run b the reverse; run c is middling in both.
    first = [[0.03, -0.01, 0.01], [0.02, -0.02, 0.00], [0.04, -0.01, 0.01]] * 10
    second = [[-0.03, 0.02, 0.00], [-0.02, 0.03, 0.01], [-0.04, 0.04, 0.01]] * 10
    # On each split the in-sample best ranks 1 of 3 out of sample: w = 1/4, logit -ln 3.

    # Act
    pbo = probability_of_overfitting(matrix_of(_halves(first, second)), partitions=2)

    # Assert
    assert pbo.value == 1.0 and pbo.splits == 2
    assert pbo.logits == pytest.approx([-math.log(3), -math.log(3)], abs=1e-12)
    assert pbo.oos_loss == 1.0
    assert "the selection is likely overfit" in pbo.reading


def test_a_consistent_winner_has_pbo_zero(matrix_of):
    # Arrange: run a is best in both halves, c worst; on each split a ranks 3 of 3 out of
    # sample: w = 3/4, logit ln 3.
    first = [[0.03, 0.00, -0.01], [0.02, 0.01, -0.02], [0.04, -0.01, -0.01]] * 10
    second = [[0.02, 0.01, -0.02], [0.03, 0.00, -0.01], [0.05, -0.01, -0.03]] * 10

    # Act
    pbo = probability_of_overfitting(matrix_of(_halves(first, second)), partitions=2)

    # Assert
    assert pbo.value == 0.0
    assert pbo.logits == pytest.approx([math.log(3), math.log(3)], abs=1e-12)
    assert pbo.oos_loss == 0.0
    assert pbo.reading.startswith("PBO 0.00 %: the in-sample best of 3 runs ranks at or below "
                                  "the out-of-sample median in 0.00 % of 2 splits")
    assert pbo.reading.endswith("the selection holds up out of sample.")


def test_tied_out_of_sample_ranks_share_their_average(matrix_of):
    # Arrange: runs b and c are the same returns and beat a in both halves. On each split b
    # (the first of the tied pair) wins in sample and shares ranks 2 and 3 with c out of
    # sample: rank 2.5 of 3, w = 2.5 / 4, logit ln(2.5 / 1.5).
    first = [[-0.01, 0.02, 0.02], [0.00, 0.03, 0.03], [-0.02, 0.01, 0.01]] * 10
    second = [[0.00, 0.01, 0.01], [-0.01, 0.03, 0.03], [0.01, 0.02, 0.02]] * 10

    # Act
    pbo = probability_of_overfitting(matrix_of(_halves(first, second)), partitions=2)

    # Assert
    assert pbo.logits == pytest.approx([math.log(2.5 / 1.5)] * 2, abs=1e-12)
    assert pbo.value == 0.0


# -- against the paper's algorithm -----------------------------------------------------------------
@pytest.mark.parametrize("partitions", [4, 8, 16])
def test_pbo_matches_a_plain_loop_implementation_of_cscv(matrix_of, partitions):
    # Arrange: 7 correlated runs over 203 days (203 is not a multiple of S: the oldest days go).
    rng = np.random.default_rng(partitions)
    common = rng.normal(0.0, 0.01, (203, 1))
    values = 0.6 * common + rng.normal(0.0003, 0.01, (203, 7))
    logits, oos = _cscv_by_loops(values, partitions)

    # Act
    pbo = probability_of_overfitting(matrix_of(values), partitions=partitions)

    # Assert: the same logits in the same split order, PBO = share of logits <= 0.
    assert pbo.splits == math.comb(partitions, partitions // 2) == len(logits)
    assert pbo.logits == pytest.approx(logits, abs=1e-9)
    assert pbo.value == pytest.approx(np.mean(logits <= 0), abs=1e-12)
    assert pbo.out_of_sample_sharpe == pytest.approx(oos * math.sqrt(365), abs=1e-9)
    assert pbo.oos_loss == pytest.approx(np.mean(oos < 0), abs=1e-12)
    assert pbo.observations == 203 - 203 % partitions
    assert pbo.to_dict()["median_logit"] == pytest.approx(np.median(logits), abs=1e-9)


def test_a_run_flat_on_half_the_days_scores_zero_there_not_nan(matrix_of):
    # Arrange: run c trades only in the second half of the days.
    rng = np.random.default_rng(2)
    values = rng.normal(0.0, 0.01, (160, 3))
    values[:80, 2] = 0.0

    # Act
    pbo = probability_of_overfitting(matrix_of(values), partitions=2)

    # Assert: on the split whose in-sample half is the flat one, c's Sharpe ratio is 0.
    assert np.isfinite(pbo.logits).all() and np.isfinite(pbo.in_sample_sharpe).all()
    sr = values[:80, :2].mean(axis=0) / values[:80, :2].std(axis=0, ddof=1)
    expected_best = int(np.argmax([sr[0], sr[1], 0.0]))
    oos = values[80:].mean(axis=0) / values[80:].std(axis=0, ddof=1)
    assert pbo.out_of_sample_sharpe[0] == pytest.approx(oos[expected_best] * math.sqrt(365))


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("partitions", "message"), [
    (15, "partitions must be an even number from 2 to 20 (16 is usual), not 15"),
    (0, "not 0"),
    (22, "not 22"),
    (True, "not True"),
    ("16", "not '16'"),
])
def test_bad_partitions_are_refused(matrix_of, partitions, message):
    matrix = matrix_of(np.random.default_rng(0).normal(0, 0.01, (100, 3)))
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        probability_of_overfitting(matrix, partitions=partitions)


def test_too_few_days_for_the_partitions_are_refused(matrix_of):
    matrix = matrix_of(np.random.default_rng(0).normal(0, 0.01, (30, 3)))
    with pytest.raises(ValidationError, match="PBO with 16 partitions needs at least 32 common "
                                              "days of returns; the runs have 30"):
        probability_of_overfitting(matrix, partitions=16)


# -- behaviour -------------------------------------------------------------------------------------
def test_on_random_entry_strategies_pbo_is_high_and_dsr_low(matrix_of, random_entry_sweep):
    # Arrange: 20 independent sweeps of 40 random-entry strategies on a random walk. No run has
    # an edge: the in-sample best's out-of-sample rank is a coin toss (PBO near 1/2), and its
    # Sharpe ratio is about what the best of 40 skill-less trials shows (DSR not significant),
    # although its undeflated PSR usually looks significant.
    pbos, dsrs, naive = [], [], []

    # Act
    for seed in range(20):
        matrix = matrix_of(random_entry_sweep(seed))
        pbos.append(probability_of_overfitting(matrix).value)
        dsr = deflated_sharpe(matrix)
        dsrs.append(dsr.value)
        naive.append(probabilistic_sharpes(matrix)[dsr.best_run].value)

    # Assert
    assert 0.4 <= np.mean(pbos) <= 0.6, pbos
    assert min(pbos) > LOW_PBO, pbos
    assert max(dsrs) < 0.95, dsrs
    assert np.mean(np.array(naive) >= 0.95) >= 0.5, naive


def test_on_ema_crosses_in_a_random_walk_pbo_is_high(matrix_of, ema_sweep):
    # Arrange: the same EMA grid as below, on a market without drift.
    pbos, dsrs = [], []

    # Act
    for seed in range(10):
        values, _grid = ema_sweep(seed, trend=0.0)
        matrix = matrix_of(values)
        pbos.append(probability_of_overfitting(matrix).value)
        dsrs.append(deflated_sharpe(matrix).value)

    # Assert
    assert np.mean(pbos) >= 0.4, pbos
    assert np.median(dsrs) < 0.95, dsrs


def test_on_a_planted_trend_edge_pbo_is_low_and_dsr_high(matrix_of, ema_sweep):
    # Arrange: EMA crosses on a market with persistent trends: fast crosses have a real edge,
    # slow ones lag the trend flips. The in-sample best stays near the top out of sample.
    pbos, dsrs = [], []

    # Act
    for seed in range(10):
        values, _grid = ema_sweep(seed, trend=0.01)
        matrix = matrix_of(values)
        pbos.append(probability_of_overfitting(matrix).value)
        dsrs.append(deflated_sharpe(matrix).value)

    # Assert
    assert max(pbos) < LOW_PBO, pbos
    assert min(dsrs) >= 0.95, dsrs

"""The ETA of a running backtest, from its recent throughput."""

from __future__ import annotations

import pytest

from services.backtest.eta import describe, estimate


def _trace(*legs: tuple[float, float], every: float = 2.0) -> list[tuple[float, float]]:
    """(seconds, fraction) samples every ``every`` s through legs of (seconds, fraction/s)."""
    samples, t, f = [(0.0, 0.0)], 0.0, 0.0
    for seconds, rate in legs:
        for _ in range(int(seconds / every)):
            t, f = t + every, f + rate * every
            samples.append((t, f))
    return samples


def test_a_run_that_slows_down_is_estimated_from_its_recent_pace():
    # The case: fast early days, then 3x slower. After 100 s at 0.3 %/s and 60 s at
    # 0.1 %/s the run is 36 % done; the remaining 64 % at 0.1 %/s take 640 s. Scaling the
    # elapsed time (160 s * 0.64 / 0.36 = 284 s) says under half of that: the range's low end.
    trace = _trace((100, 0.003), (60, 0.001))

    found = estimate(trace)

    assert found.seconds == pytest.approx(0.64 / 0.001, rel=0.01)
    assert found.low < 300 < found.seconds < found.high * 1.001


def test_a_steady_run_gets_a_narrow_range_around_the_truth():
    found = estimate(_trace((120, 0.004)))  # 48 % done at 0.4 %/s: 130 s left

    assert found.seconds == pytest.approx(130, rel=0.01)
    assert found.low == pytest.approx(117, rel=0.01) and found.high == pytest.approx(143, rel=0.01)


def test_nothing_is_promised_before_1_percent_or_without_progress():
    assert estimate([(0.0, 0.0), (2.0, 0.005)]) is None
    assert estimate([(0.0, 0.2), (2.0, 0.2), (4.0, 0.2)]) is None
    assert estimate([(0.0, 0.3)]) is None


def test_the_estimate_reads_as_about_with_a_range():
    text = describe(estimate(_trace((120, 0.004))))
    assert text == "about 2m10s (1m57s-2m23s)"

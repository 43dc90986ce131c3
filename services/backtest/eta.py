"""How long a running backtest still needs, from its recent throughput.

The cost of a simulated day is not constant (busy markets, more orders, a strategy warming up),
so scaling the time spent so far (``elapsed * (1 - f) / f``) is wrong by minutes on long runs.
The worker records (wall time, fraction done) every few seconds; the estimate uses the rate of
the last minute and gives a range from the two rates, recent and overall, so the user sees
"about 6 min (5-8 min)" rather than one number that keeps growing.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.formatting import format_duration

RECENT_WINDOW_S = 60.0  # the "recent" rate: progress over the last minute of wall time
MIN_SPREAD = 0.1  # the range is at least +/- 10 %: rates measured over seconds are noisy


@dataclass(frozen=True)
class Estimate:
    seconds: float  # the best guess: from the recent rate
    low: float
    high: float


def estimate(samples: list[tuple[float, float]]) -> Estimate | None:
    """The time left after ``samples`` of (wall seconds, fraction done), oldest first; None
    while there is too little to go by (under 1 % done, or no progress in the samples)."""
    if len(samples) < 2:
        return None
    now, done = samples[-1]
    if done < 0.01 or done >= 1.0:
        return None
    first_time, first_done = samples[0]
    overall = _rate(first_time, first_done, now, done)
    recent_start = next((s for s in samples if s[0] >= now - RECENT_WINDOW_S), samples[0])
    if recent_start is samples[-1]:  # the last sample is the only recent one
        recent_start = samples[-2]
    recent = _rate(*recent_start, now, done)
    if recent is None and overall is None:
        return None
    recent = recent or overall
    overall = overall or recent
    left = 1.0 - done
    best = left / recent
    low, high = sorted((left / max(recent, overall), left / min(recent, overall)))
    return Estimate(best, min(low, best * (1 - MIN_SPREAD)), max(high, best * (1 + MIN_SPREAD)))


def _rate(t0: float, f0: float, t1: float, f1: float) -> float | None:
    if t1 <= t0 or f1 <= f0:
        return None
    return (f1 - f0) / (t1 - t0)


def describe(found: Estimate | None) -> str:
    """"about 6 min (5-8 min)": what the Runs page and the CLI show."""
    if found is None:
        return ""
    return (f"about {format_duration(found.seconds)} "
            f"({format_duration(found.low)}-{format_duration(found.high)})")

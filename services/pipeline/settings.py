"""The pipeline's thresholds: gates, drift bounds and the live rollout's steps."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from services.errors import ConfigurationError


@dataclass(frozen=True)
class PipelineSettings:
    """Read from the environment with :meth:`from_environment`; the defaults are the issue's."""

    paper_minutes: float = 1440.0  # WORKBENCH_GATE_PAPER_MINUTES: engine time a paper run needs
    min_correlation: float = 0.9  # WORKBENCH_GATE_MIN_CORRELATION: of per-bar equity returns
    max_pnl_difference_pct: float = 5.0  # WORKBENCH_GATE_MAX_PNL_DIFF_PCT: of the backtest's PnL
    rollout_steps: tuple[float, ...] = (0.1, 0.5, 1.0)  # WORKBENCH_ROLLOUT_STEPS

    @classmethod
    def from_environment(cls) -> PipelineSettings:
        """The settings of the environment variables that are set, else the defaults;
        ConfigurationError naming the variable and its value for anything unusable."""
        default = cls()
        minutes = _number("WORKBENCH_GATE_PAPER_MINUTES", default.paper_minutes, low=0.0)
        correlation = _number("WORKBENCH_GATE_MIN_CORRELATION", default.min_correlation,
                              low=-1.0, high=1.0)
        pnl = _number("WORKBENCH_GATE_MAX_PNL_DIFF_PCT", default.max_pnl_difference_pct, low=0.0)
        text = os.environ.get("WORKBENCH_ROLLOUT_STEPS")
        steps = default.rollout_steps if not text else _steps(text)
        return cls(minutes, correlation, pnl, steps)

    def next_step(self, fraction: float) -> float | None:
        """The rollout step after ``fraction`` (None at 100 %)."""
        return next((s for s in self.rollout_steps if s > fraction + 1e-12), None)


def _number(name: str, default: float, low: float, high: float | None = None) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigurationError(f"{name} must be a number {bounds}, was {text!r}")
    return value


def _steps(text: str) -> tuple[float, ...]:
    try:
        steps = tuple(float(part) for part in text.split(","))
    except ValueError:
        steps = ()
    if (not steps or any(not 0 < s <= 1 for s in steps) or list(steps) != sorted(set(steps))
            or steps[-1] != 1.0):
        raise ConfigurationError(
            "WORKBENCH_ROLLOUT_STEPS must be increasing fractions ending at 1, such as "
            f"0.1,0.5,1, was {text!r}")
    return steps

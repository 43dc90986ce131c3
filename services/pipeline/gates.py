"""The checklist a promotion request must pass before it is approved or deployed.

Pure rules over what the service gathered (the version's evidence); each failing gate names
itself and says what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.pipeline.records import LIVE, RISK_LIMITS, GateCheck
from services.pipeline.settings import PipelineSettings


@dataclass(frozen=True)
class PaperEvidence:
    """One paper deployment of the version: how long it ran and how it drifted."""

    deployment_id: str
    minutes: float  # engine time covered (simulated time for replayed data)
    measured: bool  # minutes come from a drift computation (else estimated from the engine)
    correlation: float | None = None  # None: no drift computed, or undefined (no trades)
    pnl_difference_pct: float | None = None


@dataclass(frozen=True)
class Evidence:
    """What a version has to show for itself."""

    completed_backtests: int
    paper: tuple[PaperEvidence, ...] = ()


def check_gates(stage: str, evidence: Evidence, risk_limits: dict, settings: PipelineSettings,
                ) -> tuple[GateCheck, ...]:
    """The gates of ``stage`` in checklist order."""
    n = evidence.completed_backtests
    gates = [GateCheck("backtest", n > 0,
                       f"{n} completed backtest{'s' if n != 1 else ''} of this version" if n
                       else "no completed backtest of this version: run one first")]
    if stage != LIVE:
        return tuple(gates)
    need = settings.paper_minutes
    long_enough = [p for p in evidence.paper if p.minutes >= need]
    best = max(evidence.paper, key=lambda p: p.minutes, default=None)
    if long_enough:
        p = max(long_enough, key=lambda p: p.minutes)
        gates.append(GateCheck("paper_time", True, f"paper deployment {p.deployment_id} ran "
                               f"{p.minutes:,.0f} of {need:,.0f} minutes of engine time"
                               + ("" if p.measured else " (estimated; compute its drift)")))
    else:
        ran = (f"the longest, {best.deployment_id}, ran {best.minutes:,.0f}" if best
               else "there is no paper deployment of this version")
        gates.append(GateCheck("paper_time", False, f"a paper deployment must run {need:,.0f} "
                               f"minutes of engine time; {ran}"))
    gates.append(_drift_gate(long_enough, settings))
    missing = [k for k in RISK_LIMITS if risk_limits.get(k) is None]
    gates.append(GateCheck("risk_limits", not missing,
                           "live risk limits attached: " + ", ".join(
                               f"{k}={risk_limits[k]:g}" for k in RISK_LIMITS)
                           if not missing else "live risk limits missing: " + ", ".join(missing)
                           + " (strategy promote --risk NAME=VALUE)"))
    return tuple(gates)


def drift_within_bounds(correlation: float | None, pnl_difference_pct: float | None,
                        settings: PipelineSettings) -> tuple[bool, str]:
    """Whether a drift measurement is inside the live gate's bounds, and why not."""
    if correlation is None:
        return False, "the correlation of returns is undefined (no trades or a flat equity)"
    if correlation < settings.min_correlation:
        return False, (f"correlation of returns {correlation:.3f} is below "
                       f"{settings.min_correlation:g}")
    if pnl_difference_pct is None:
        return False, "the PnL difference is undefined (the backtest made no PnL)"
    if pnl_difference_pct > settings.max_pnl_difference_pct:
        return False, (f"PnL differs by {pnl_difference_pct:.2f} %, more than "
                       f"{settings.max_pnl_difference_pct:g} %")
    return True, (f"correlation {correlation:.3f} >= {settings.min_correlation:g}, PnL "
                  f"difference {pnl_difference_pct:.2f} % <= {settings.max_pnl_difference_pct:g} %")


def _drift_gate(candidates: list[PaperEvidence], settings: PipelineSettings) -> GateCheck:
    if not candidates:
        return GateCheck("drift", False, "no paper deployment long enough to measure drift on")
    measured = [p for p in candidates if p.measured]
    if not measured:
        return GateCheck("drift", False, "drift not computed yet for "
                         + ", ".join(p.deployment_id for p in candidates)
                         + " (strategy drift DEPLOYMENT_ID)")
    reasons = []
    for p in measured:
        ok, why = drift_within_bounds(p.correlation, p.pnl_difference_pct, settings)
        if ok:
            return GateCheck("drift", True, f"{p.deployment_id}: {why}")
        reasons.append(f"{p.deployment_id}: {why}")
    return GateCheck("drift", False, "drift out of bounds: " + "; ".join(reasons))

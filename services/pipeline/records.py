"""What the pipeline's readers see: versions, promotion requests, gates, deployments.

Frozen values, no database or NautilusTrader objects, so the UI, the CLI, the API and notebooks
get the same stable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PAPER, LIVE = "paper", "live"
STAGES = (PAPER, LIVE)
RESEARCH = "research"

PENDING, APPROVED, REJECTED = "Pending", "Approved", "Rejected"
APPROVE, REJECT = "approve", "reject"

# A deployment row is Active while it owns its engine; the engine's own state is shown then.
ACTIVE, STOPPED, REPLACED = "Active", "Stopped", "Replaced"
DEPLOY, ROLLBACK, ROLLOUT = "deploy", "rollback", "rollout"

# Live risk limits a live promotion request must carry (enforced inside the engine).
RISK_LIMITS = ("max_position", "max_daily_loss", "max_drawdown_pct")


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def short(version_id: str) -> str:
    """The first 12 hex digits: how versions are shown (the full id is accepted too)."""
    return version_id[:12]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class VersionInfo:
    """One strategy version and the evidence made with it."""

    version_id: str
    strategy: str
    bar_type: str
    instrument_id: str
    parameters: dict[str, Any]
    content: dict
    spec: dict
    nautilus_version: str
    source_run_id: str | None
    note: str
    created_by: str
    created_at: datetime
    run_ids: tuple[str, ...] = ()  # evidence: backtests of this content
    completed_run_ids: tuple[str, ...] = ()
    sweep_ids: tuple[str, ...] = ()
    deployment_ids: tuple[str, ...] = ()
    stage: str = RESEARCH  # the furthest stage an approved promotion reached

    @property
    def short_id(self) -> str:
        return short(self.version_id)

    @property
    def strategy_key(self) -> str:
        """Versions of one strategy: the same template on the same bar type."""
        return f"{self.strategy} on {self.bar_type}"

    def to_json(self) -> dict:
        return {"version_id": self.version_id, "short_id": self.short_id,
                "strategy": self.strategy, "bar_type": self.bar_type,
                "instrument_id": self.instrument_id, "parameters": self.parameters,
                "nautilus_version": self.nautilus_version, "source_run_id": self.source_run_id,
                "note": self.note, "created_by": self.created_by,
                "created_at": _iso(self.created_at), "stage": self.stage,
                "run_ids": list(self.run_ids), "completed_run_ids": list(self.completed_run_ids),
                "sweep_ids": list(self.sweep_ids), "deployment_ids": list(self.deployment_ids),
                "content": self.content}


@dataclass(frozen=True)
class GateCheck:
    """One line of a promotion's checklist."""

    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class Decision:
    """One person's approval or rejection of a request."""

    actor: str
    decision: str
    comment: str
    ts: datetime

    def to_json(self) -> dict:
        return {"actor": self.actor, "decision": self.decision, "comment": self.comment,
                "ts": _iso(self.ts)}


@dataclass(frozen=True)
class PromotionInfo:
    """A request for a version to go to a stage, its gates and its decisions."""

    request_id: str
    version_id: str
    strategy: str
    bar_type: str
    stage: str
    status: str
    requested_by: str
    requested_at: datetime
    risk_limits: dict[str, float]
    note: str
    decided_at: datetime | None
    decisions: tuple[Decision, ...]
    gates: tuple[GateCheck, ...]
    approvals_needed: int

    @property
    def gates_pass(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def approvals(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.decision == APPROVE)

    def to_json(self) -> dict:
        return {"request_id": self.request_id, "version_id": self.version_id,
                "strategy": self.strategy, "bar_type": self.bar_type, "stage": self.stage,
                "status": self.status, "requested_by": self.requested_by,
                "requested_at": _iso(self.requested_at), "risk_limits": self.risk_limits,
                "note": self.note, "decided_at": _iso(self.decided_at),
                "decisions": [d.to_json() for d in self.decisions],
                "gates": [g.to_json() for g in self.gates], "gates_pass": self.gates_pass,
                "approvals": len(self.approvals), "approvals_needed": self.approvals_needed}


@dataclass(frozen=True)
class DeploymentInfo:
    """A version running (or having run) on an engine in a stage."""

    deployment_id: str
    version_id: str
    strategy: str
    bar_type: str
    stage: str
    request_id: str
    engine_session_id: str
    engine_name: str
    kind: str
    replaces: str | None
    capital_fraction: float
    state: str  # the engine's state while Active, else Stopped / Replaced
    engine_state: str
    engine_error: str | None
    actor: str
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    risk_limits: dict[str, float]
    parameters: dict[str, Any]
    pnl: float | None  # realised + unrealised: the engine's last status; once ended, its drift's
    drift: dict | None = None
    drift_run_id: str | None = None
    drift_at: datetime | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def is_active(self) -> bool:
        return self.ended_at is None

    def to_json(self) -> dict:
        return {"deployment_id": self.deployment_id, "version_id": self.version_id,
                "strategy": self.strategy, "bar_type": self.bar_type, "stage": self.stage,
                "request_id": self.request_id, "engine_session_id": self.engine_session_id,
                "engine_name": self.engine_name, "kind": self.kind, "replaces": self.replaces,
                "capital_fraction": self.capital_fraction, "status": self.state,
                "engine_state": self.engine_state, "engine_error": self.engine_error,
                "actor": self.actor, "created_at": _iso(self.created_at),
                "ended_at": _iso(self.ended_at), "end_reason": self.end_reason,
                "risk_limits": self.risk_limits, "parameters": self.parameters,
                "pnl": self.pnl, "drift": self.drift, "drift_run_id": self.drift_run_id,
                "drift_at": _iso(self.drift_at), "warnings": list(self.warnings)}

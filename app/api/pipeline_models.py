"""Request and response bodies of the strategy pipeline's routes (/api/v1/strategies/...)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from app.api.models import Strict, Venue

Stage = Literal["paper", "live"]
VersionRef = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{6,64}$",
                                  description="A version id or a unique prefix of it "
                                              "(at least 6 hex digits).")]
Comment = Annotated[str, Field(max_length=2000)]
Confirm = Annotated[str | None, Field(None, max_length=64, description="Live: the engine's "
                                      "name, typed to confirm.")]


class Version(BaseModel):
    version_id: str
    short_id: str
    strategy: str
    bar_type: str
    instrument_id: str
    parameters: dict[str, Any]
    nautilus_version: str
    source_run_id: str | None
    note: str
    created_by: str
    created_at: datetime
    stage: Literal["research", "paper", "live"] = Field(
        description="The furthest stage an approved promotion reached.")
    run_ids: list[str] = Field(description="Backtests linked as evidence.")
    completed_run_ids: list[str]
    sweep_ids: list[str]
    deployment_ids: list[str]
    content: dict[str, Any] = Field(description="The hashed content: strategy, parameters, "
                                    "engine_template, data, venue, nautilus_trader.")
    status: str = "ok"


class Versions(BaseModel):
    status: str = "ok"
    versions: list[Version]


class CreateVersion(Strict):
    """From a completed run (``run_id``), or from a template (``strategy`` and ``bar_type``)."""

    run_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    strategy: str | None = Field(None, max_length=64)
    bar_type: str | None = Field(None, max_length=256)
    parameters: dict[str, Any] = Field(default_factory=dict)
    venue: Venue = Field(default_factory=Venue)
    note: Comment = ""


class Difference(BaseModel):
    section: str
    field: str
    left: Any
    right: Any


class VersionDiff(BaseModel):
    left: str
    right: str
    identical: bool
    status: Literal["identical", "different"]
    differences: list[Difference]


class Gate(BaseModel):
    name: str
    passed: bool
    detail: str


class Decision(BaseModel):
    actor: str
    decision: Literal["approve", "reject"]
    comment: str
    ts: datetime


class Promotion(BaseModel):
    request_id: str
    version_id: str
    strategy: str
    bar_type: str
    stage: Stage
    status: Literal["Pending", "Approved", "Rejected"]
    requested_by: str
    requested_at: datetime
    risk_limits: dict[str, float]
    note: str
    decided_at: datetime | None
    decisions: list[Decision]
    gates: list[Gate]
    gates_pass: bool
    approvals: int
    approvals_needed: int


class Promotions(BaseModel):
    status: str = "ok"
    promotions: list[Promotion]


class RequestPromotion(Strict):
    version_id: VersionRef
    stage: Stage
    risk_limits: dict[str, float] = Field(
        default_factory=dict, description="Live: max_position, max_daily_loss, "
        "max_drawdown_pct (all three), optionally max_notional_per_order.")
    note: Comment = ""


class Decide(Strict):
    comment: Comment = ""


class Deployment(BaseModel):
    deployment_id: str
    version_id: str
    strategy: str
    bar_type: str
    stage: Stage
    request_id: str
    engine_session_id: str
    engine_name: str
    kind: Literal["deploy", "rollback", "rollout"]
    replaces: str | None
    capital_fraction: float
    status: str = Field(description="The engine's state while the deployment is active, "
                        "else Stopped or Replaced.")
    engine_state: str
    engine_error: str | None
    actor: str
    created_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    risk_limits: dict[str, float]
    parameters: dict[str, Any]
    pnl: float | None
    drift: dict[str, Any] | None
    drift_run_id: str | None
    drift_at: datetime | None
    warnings: list[str]


class Deployments(BaseModel):
    status: str = "ok"
    deployments: list[Deployment]


class Deploy(Strict):
    version_id: VersionRef
    stage: Stage
    confirm: Confirm = None
    fraction: float | None = Field(None, gt=0, le=1, description="Share of the trade size: a "
                                   "rollout step (default 1 on paper, the first step live).")
    replay_start: str | None = Field(None, max_length=40, description="Paper: ISO time.")
    replay_speed: float | None = Field(None, gt=0, le=100_000)


class Replace(Strict):
    confirm: Confirm = None


class Drift(BaseModel):
    deployment_id: str
    version_id: str
    engine_session_id: str
    run_id: str
    window_start: datetime
    window_end: datetime
    window_minutes: float
    bars: int
    engine_fills: int
    backtest_fills: int
    matched_fills: int
    missed_fills: int
    extra_fills: int
    correlation: float | None
    engine_pnl: float
    backtest_pnl: float
    pnl_difference: float
    pnl_difference_pct: float | None
    engine_commissions: float
    backtest_commissions: float
    slippage_total: float
    slippage_mean_bps: float | None
    time_difference_max_s: float | None
    latency_ms: dict[str, float]
    within_bounds: bool
    bounds: str
    notes: list[str]
    computed_at: datetime
    status: Literal["within_bounds", "out_of_bounds"]

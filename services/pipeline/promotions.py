"""Promotion requests: a version asks to go to paper or live, shows its gates, and is decided
by approvals (four eyes for live). Every decision and every refusal is audited.

Concurrent decisions on one request are settled by the request's ``revision``: a decision
commits only if nobody decided in between, so two approvers racing never both count against a
stale picture.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.audit import AuditLog
from services.db import Database, DeploymentRow, PromotionDecisionRow, PromotionRow
from services.engine.service import EngineService
from services.errors import (
    EngineNotFound,
    NotFound,
    PermissionDenied,
    PipelineError,
    StorageError,
    ValidationError,
)
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.pipeline.approvals import (
    APPROVALS_NEEDED,
    PERSON,
    approved_after,
    decision_problem,
)
from services.pipeline.gates import Evidence, PaperEvidence, check_gates
from services.pipeline.records import (
    APPROVE,
    APPROVED,
    LIVE,
    PAPER,
    PENDING,
    REJECT,
    REJECTED,
    RISK_LIMITS,
    STAGES,
    Decision,
    GateCheck,
    PromotionInfo,
    VersionInfo,
    aware,
)
from services.pipeline.settings import PipelineSettings
from services.pipeline.versions import VersionService

# Optional live limits beyond the required ones.
OPTIONAL_LIMITS = ("max_notional_per_order",)


def _now() -> datetime:
    return datetime.now(UTC)


def parse_risk_limits(values: dict | None) -> dict[str, float]:
    """Live risk limits as positive numbers, or ValidationError naming every bad one."""
    limits, problems = {}, []
    for name, raw in (values or {}).items():
        if name not in RISK_LIMITS + OPTIONAL_LIMITS:
            problems.append(f"{name}: not a risk limit (known: "
                            f"{', '.join(RISK_LIMITS + OPTIONAL_LIMITS)})")
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        if isinstance(raw, bool) or not math.isfinite(value) or value <= 0:
            problems.append(f"{name}: must be a positive number, was {raw!r}")
        elif name == "max_drawdown_pct" and value > 100:
            problems.append(f"{name}: a percentage of at most 100, was {raw!r}")
        else:
            limits[name] = value
    if problems:
        raise ValidationError("Invalid risk limits", problems)
    return limits


class PromotionService:
    """Requests, decisions and gates of promotions."""

    def __init__(self, database: Database, versions: VersionService, engines: EngineService,
                 authorizer: Authorizer, settings: PipelineSettings) -> None:
        self._db = database
        self._versions = versions
        self._engines = engines
        self._auth = authorizer
        self.settings = settings

    # -- requests ------------------------------------------------------------------------------
    def request(self, version_id: str, stage: str, *, risk_limits: dict | None = None,
                note: str = "", principal: Principal | None = None) -> PromotionInfo:
        """Ask for ``version_id`` to go to ``stage``; the request is created even while later
        gates fail (approvers see the checklist), but a version with no completed backtest
        has nothing to show and is refused."""
        if stage not in STAGES:
            raise ValidationError(f"A version is promoted to paper or live, not {stage!r}.")
        actor = self._auth.require(principal, "strategy.promote", f"{version_id} to {stage}")
        version = self._versions.get(version_id)
        target = f"{version.short_id} to {stage}"
        try:
            limits = parse_risk_limits(risk_limits)
        except ValidationError as e:
            self._refuse(actor, "strategy.promote", target, str(e))
            raise
        self._versions.link_matching_runs(version.version_id)
        version = self._versions.get(version.version_id)
        if not version.completed_run_ids:
            self._refuse(actor, "strategy.promote", target, "no completed backtest")
            raise PipelineError(f"Version {version.short_id} has no completed backtest; run "
                                "one before asking to promote it.")
        with self._db.session() as session:
            pending = session.scalars(select(PromotionRow.request_id).where(
                PromotionRow.version_id == version.version_id, PromotionRow.stage == stage,
                PromotionRow.status == PENDING)).first()
        if pending is not None:
            self._refuse(actor, "strategy.promote", target, f"request {pending} is pending")
            raise PipelineError(f"Request {pending} to promote version {version.short_id} to "
                                f"{stage} is already pending; decide it first.")
        request_id = "pr-" + uuid.uuid4().hex[:10]
        with self._db.session() as session:
            session.add(PromotionRow(
                request_id=request_id, version_id=version.version_id, stage=stage,
                status=PENDING, requested_by=actor.name, requested_at=_now(),
                risk_limits=limits, note=note[:2000], revision=0))
            session.add(AuditLog.row(actor, "strategy.promote", request_id, "requested",
                                     f"version {version.short_id} to {stage}",
                                     to_state=PENDING))
        return self.get(request_id)

    # -- decisions -----------------------------------------------------------------------------
    def approve(self, request_id: str, *, comment: str = "",
                principal: Principal | None = None) -> PromotionInfo:
        """Approve the request; enough approvals make it Approved."""
        return self._decide(request_id, APPROVE, comment, principal)

    def reject(self, request_id: str, *, comment: str,
               principal: Principal | None = None) -> PromotionInfo:
        """Reject the request (final); a rejection needs a comment saying why."""
        return self._decide(request_id, REJECT, comment, principal)

    def _decide(self, request_id: str, decision: str, comment: str,
                principal: Principal | None) -> PromotionInfo:
        info = self.get(request_id)
        action = "strategy.approve_live" if info.stage == LIVE else "strategy.approve_paper"
        actor = self._auth.require(principal, action, request_id, state=info.status)
        if decision == REJECT and not (comment or "").strip():
            raise ValidationError("A rejection needs a comment saying why (--comment TEXT).")
        failing = tuple(f"{g.name}: {g.detail}" for g in info.gates if not g.passed)
        refusal = decision_problem(
            request_id=request_id, stage=info.stage, status=info.status,
            requested_by=info.requested_by, principal=actor, decisions=info.decisions,
            decision=decision, failing_gates=failing)
        if refusal is not None:
            self._refuse(actor, action, request_id, refusal.message, info.status)
            raise (PermissionDenied if refusal.kind == PERSON else PipelineError)(refusal.message)
        new = Decision(actor.name, decision, comment[:2000], _now())
        decisions = (*info.decisions, new)
        status = (REJECTED if decision == REJECT else
                  APPROVED if approved_after(info.stage, decisions) else PENDING)
        revision = self._revision(request_id)
        try:
            with self._db.session() as session:
                session.add(PromotionDecisionRow(
                    request_id=request_id, actor=actor.name, decision=decision,
                    comment=new.comment, roles=",".join(sorted(actor.roles)), ts=new.ts))
                changed = session.execute(
                    update(PromotionRow)
                    .where(PromotionRow.request_id == request_id,
                           PromotionRow.revision == revision,
                           PromotionRow.status == PENDING)
                    .values(revision=revision + 1, status=status,
                            decided_at=new.ts if status != PENDING else None)).rowcount
                if changed != 1:
                    raise _Raced()
                session.add(AuditLog.row(actor, f"strategy.{decision}", request_id, "ok",
                                         comment or None, PENDING, status))
        except _Raced:
            return self._lost_race(actor, action, request_id)
        except StorageError as e:
            if isinstance(e.__cause__, IntegrityError):
                return self._lost_race(actor, action, request_id)
            raise
        return self.get(request_id)

    def _lost_race(self, actor: Principal, action: str, request_id: str) -> PromotionInfo:
        now = self.get(request_id)
        reason = (f"Request {request_id} changed while {actor.name} decided (it is now "
                  f"{now.status}, with {len(now.approvals)} approval(s)); look at it again.")
        self._refuse(actor, action, request_id, reason, now.status)
        raise PipelineError(reason)

    def _revision(self, request_id: str) -> int:
        with self._db.session() as session:
            return session.get(PromotionRow, request_id).revision

    def _refuse(self, actor: Principal, action: str, target: str, reason: str,
                state: str | None = None) -> None:
        self._auth.audit.record(actor, action, target, "refused", reason, state, state)

    # -- gates ---------------------------------------------------------------------------------
    def gates(self, version: VersionInfo, stage: str, risk_limits: dict) -> tuple[GateCheck, ...]:
        """The checklist of ``version`` for ``stage``, as things are now."""
        evidence = Evidence(len(version.completed_run_ids),
                            self._paper_evidence(version.version_id) if stage == LIVE else ())
        return check_gates(stage, evidence, risk_limits, self.settings)

    def _paper_evidence(self, version_id: str) -> tuple[PaperEvidence, ...]:
        with self._db.session() as session:
            rows = session.scalars(select(DeploymentRow).where(
                DeploymentRow.version_id == version_id, DeploymentRow.stage == PAPER)
                .order_by(DeploymentRow.created_at)).all()
        evidence = []
        for row in rows:
            drift = row.drift or {}
            if drift:
                evidence.append(PaperEvidence(row.deployment_id, drift["window_minutes"], True,
                                              drift.get("correlation"),
                                              drift.get("pnl_difference_pct")))
                continue
            evidence.append(PaperEvidence(row.deployment_id, self._engine_minutes(row), False))
        return tuple(evidence)

    def _engine_minutes(self, row: DeploymentRow) -> float:
        """Engine time a paper deployment covered, from its engine's running time and replay
        speed (the drift computation measures it exactly)."""
        try:
            engine = self._engines.get(row.engine_session_id)
        except EngineNotFound:
            return 0.0
        if engine.started_at is None:
            return 0.0
        end = engine.stopped_at or _now()
        speed = float(row.parameters.get("replay_speed") or 1.0)
        return max(0.0, (end - engine.started_at).total_seconds()) * speed / 60.0

    # -- reading -------------------------------------------------------------------------------
    def get(self, request_id: str) -> PromotionInfo:
        with self._db.session() as session:
            row = session.get(PromotionRow, request_id)
            if row is None:
                raise NotFound(f"There is no promotion request {request_id!r}; list them with "
                               "'strategy versions' or on the Pipeline page.")
            decisions = self._decisions(session, [request_id])[request_id]
        return self._info(row, decisions)

    def list(self, version_id: str | None = None, status: str | None = None,
             limit: int = 200) -> list[PromotionInfo]:
        """Requests newest first, optionally of one version and in one status."""
        query = select(PromotionRow).order_by(PromotionRow.requested_at.desc()).limit(limit)
        if version_id:
            query = query.where(PromotionRow.version_id == version_id)
        if status:
            query = query.where(PromotionRow.status == status)
        with self._db.session() as session:
            rows = session.scalars(query).all()
            decisions = self._decisions(session, [r.request_id for r in rows])
        return [self._info(r, decisions[r.request_id]) for r in rows]

    def approved(self, version_id: str, stage: str) -> PromotionInfo | None:
        """The version's latest approved request for ``stage``."""
        found = [p for p in self.list(version_id=version_id, status=APPROVED) if p.stage == stage]
        return found[0] if found else None

    def approved_in_stage(self, strategy: str, bar_type: str, stage: str) -> list[PromotionInfo]:
        """Every approved request of one strategy for ``stage`` (any version)."""
        return [p for p in self.list(status=APPROVED, limit=10_000)
                if p.stage == stage and p.strategy == strategy and p.bar_type == bar_type]

    @staticmethod
    def _decisions(session, request_ids: list[str]) -> dict[str, list[Decision]]:
        out: dict[str, list[Decision]] = {r: [] for r in request_ids}
        if request_ids:
            for d in session.scalars(select(PromotionDecisionRow).where(
                    PromotionDecisionRow.request_id.in_(request_ids))
                    .order_by(PromotionDecisionRow.id)):
                out[d.request_id].append(Decision(d.actor, d.decision, d.comment or "",
                                                  aware(d.ts)))
        return out

    def _info(self, row: PromotionRow, decisions: list[Decision]) -> PromotionInfo:
        version = self._versions.get(row.version_id)
        return PromotionInfo(
            request_id=row.request_id, version_id=row.version_id, strategy=version.strategy,
            bar_type=version.bar_type, stage=row.stage, status=row.status,
            requested_by=row.requested_by, requested_at=aware(row.requested_at),
            risk_limits=dict(row.risk_limits or {}), note=row.note or "",
            decided_at=aware(row.decided_at), decisions=tuple(decisions),
            gates=self.gates(version, row.stage, row.risk_limits or {}),
            approvals_needed=APPROVALS_NEEDED[row.stage])


class _Raced(Exception):
    """Another decision committed first."""


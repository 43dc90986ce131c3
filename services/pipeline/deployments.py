"""Deploy approved versions to engines, stop them, roll them back, step live rollouts up.

A deployment starts a paper engine (replayed catalog data) or a live engine with the version's
exact strategy config; only the trade size follows the rollout's capital fraction, and the risk
engine's max notional per order with it. Nothing is half-written: the engine starts before the
deployment row is written, and a row that cannot be written takes its engine down again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select, update

from services.audit import AuditLog
from services.db import Database, DeploymentRow
from services.engine.commands import EngineCommands
from services.engine.service import ACTIVE_STATES as ENGINE_ACTIVE
from services.engine.service import ERROR as ENGINE_ERROR
from services.engine.service import RUNNING as ENGINE_RUNNING
from services.engine.service import STOPPED as ENGINE_STOPPED
from services.engine.service import EngineInfo, EngineService
from services.errors import (
    EngineNotFound,
    NotFound,
    PermissionDenied,
    PipelineError,
    ValidationError,
    WorkbenchError,
)
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.pipeline.promotions import PromotionService
from services.pipeline.records import (
    ACTIVE,
    DEPLOY,
    LIVE,
    PAPER,
    REPLACED,
    ROLLBACK,
    ROLLOUT,
    STAGES,
    STOPPED,
    DeploymentInfo,
    PromotionInfo,
    VersionInfo,
    aware,
)
from services.pipeline.rollback import ApprovedVersion, rollback_target
from services.pipeline.settings import PipelineSettings
from services.pipeline.versions import VersionService

ENGINE_TEMPLATES = {PAPER: "paper_trading", LIVE: "live_engine"}
TRADE_SIZE = "trade_size"  # the strategy parameter a rollout's fraction scales
STOP_TIMEOUT_S = 60.0
# Venue settings of a backtest the sandbox venue of a paper engine cannot reproduce.
_PAPER_CANNOT = (("fee_model", "maker_taker",
                  ("the paper venue charges the instrument's maker/taker fees")),
                 ("prob_slippage", 0.0, "the paper venue fills without simulated slippage"),
                 ("prob_fill_on_limit", 1.0, "the paper venue fills every touched limit order"))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeployOptions:
    """How to deploy: ``fraction`` of the trade size (default: 100 % on paper, the rollout's
    first step live); a paper engine replays from ``replay_start`` at ``replay_speed``."""

    fraction: float | None = None
    replay_start: str | None = None
    replay_speed: float | None = None
    live_venue: str | None = None  # live_engine's venue (default: the instrument's, if known)


class DeploymentService:
    """Deployments of versions to paper and live engines."""

    def __init__(self, database: Database, versions: VersionService,
                 promotions: PromotionService, engines: EngineService, commands: EngineCommands,
                 authorizer: Authorizer, settings: PipelineSettings) -> None:
        self._db = database
        self._versions = versions
        self._promotions = promotions
        self._engines = engines
        self._commands = commands
        self._auth = authorizer
        self.settings = settings

    # -- deploying -----------------------------------------------------------------------------
    @staticmethod
    def engine_name(version: VersionInfo, stage: str) -> str:
        """The engine a deployment runs on; live deployments are confirmed by typing it."""
        return f"{stage}-{version.strategy}-{version.version_id[:8]}".lower()[:63]

    def deploy(self, version_id: str, stage: str, *, confirm: str | None = None,
               options: DeployOptions = DeployOptions(),
               principal: Principal | None = None) -> DeploymentInfo:
        """Start the approved version on a new engine in ``stage``."""
        if stage not in STAGES:
            raise ValidationError(f"A version is deployed to paper or live, not {stage!r}.")
        actor = self._auth.require(principal, "strategy.deploy", f"{version_id} to {stage}",
                                   live=stage == LIVE)
        version = self._versions.get(version_id)
        target = f"{version.short_id} to {stage}"
        request = self._approved_request(actor, version, stage, target)
        current = self._current(version.strategy, version.bar_type, stage)
        if current is not None and current.state in ENGINE_ACTIVE:
            self._refuse(actor, "strategy.deploy", target,
                         f"deployment {current.deployment_id} is {current.state}")
            raise PipelineError(
                f"{version.strategy} on {version.bar_type} already runs in {stage} as deployment "
                f"{current.deployment_id} (version {current.version_id[:12]}, engine "
                f"{current.state}); stop it or roll it back first.")
        fraction = self._fraction(stage, options.fraction)
        return self._start(actor, version, stage, request, fraction, DEPLOY,
                           replacing=current, confirm=confirm, options=options)

    def _approved_request(self, actor: Principal, version: VersionInfo, stage: str,
                          target: str) -> PromotionInfo:
        request = self._promotions.approved(version.version_id, stage)
        if request is None:
            self._refuse(actor, "strategy.deploy", target, "no approved promotion")
            raise PipelineError(f"Version {version.short_id} is not approved for {stage}: "
                                f"request a promotion (strategy promote {version.short_id} --to "
                                f"{stage}) and have it approved first.")
        failing = [f"{g.name}: {g.detail}" for g in request.gates if not g.passed]
        if failing:
            self._refuse(actor, "strategy.deploy", target, "; ".join(failing))
            raise PipelineError(f"Version {version.short_id} cannot be deployed to {stage} while "
                                "gates fail: " + "; ".join(failing))
        return request

    def _fraction(self, stage: str, fraction: float | None) -> float:
        steps = self.settings.rollout_steps
        if fraction is None:
            return steps[0] if stage == LIVE else 1.0
        if not any(abs(fraction - s) < 1e-9 for s in steps):
            raise ValidationError(f"The capital fraction must be a rollout step "
                                  f"({', '.join(f'{s:g}' for s in steps)}), was {fraction!r}")
        return float(fraction)

    def _parameters(self, version: VersionInfo, stage: str, fraction: float,
                    risk_limits: dict, options: DeployOptions) -> dict:
        """Engine and strategy parameters that run ``version`` at ``fraction`` of its size."""
        values = {"strategy": version.strategy, "bar_type": version.bar_type,
                  **version.parameters}
        if fraction < 1.0:
            values[TRADE_SIZE] = self._scaled_size(version, fraction)
        venue = version.spec.get("venue") or {}
        notional = risk_limits.get("max_notional_per_order")
        if stage == PAPER:
            values.update(starting_balance=venue["starting_balance"],
                          oms_type=venue["oms_type"], account_type=venue["account_type"],
                          leverage=venue["leverage"])
            if options.replay_start:
                values["replay_start"] = options.replay_start
            if options.replay_speed is not None:
                values["replay_speed"] = options.replay_speed
        else:
            values["venue"] = options.live_venue or (
                "BINANCE" if version.instrument_id.endswith(".BINANCE") else
                "INTERACTIVE_BROKERS")
            if notional is None:
                template = self._engines.template(ENGINE_TEMPLATES[LIVE])
                notional = float(template.parameters["max_notional_per_order"].default)
        if notional:
            values["max_notional_per_order"] = str(
                (Decimal(str(notional)) * Decimal(str(fraction))).to_integral_value(ROUND_DOWN))
        values.update(self._engine_limits(version, risk_limits))
        return values

    @staticmethod
    def _engine_limits(version: VersionInfo, risk_limits: dict) -> dict:
        """The request's risk limits as the engine enforces them (``risk.NAME`` parameters,
        services.engine_runtime.risk): the engine measures drawdown in money, so
        ``max_drawdown_pct`` is taken of the capital the version was tested with."""
        limits = {}
        for name in ("max_position", "max_daily_loss"):
            if risk_limits.get(name) is not None:
                limits[f"risk.{name}"] = risk_limits[name]
        if risk_limits.get("max_drawdown_pct") is not None:
            capital = float((version.spec.get("venue") or {}).get("starting_balance") or 0)
            limits["risk.max_drawdown"] = round(capital * risk_limits["max_drawdown_pct"] / 100, 2)
        return limits

    def _scaled_size(self, version: VersionInfo, fraction: float) -> str:
        size = version.parameters.get(TRADE_SIZE)
        if size is None:
            raise ValidationError(f"Strategy {version.strategy} has no {TRADE_SIZE} parameter, so "
                                  f"a rollout cannot run it at {fraction:.0%} of its size; "
                                  "deploy it at fraction 1.")
        exponent = Decimal(str(size)).as_tuple().exponent
        step = Decimal(1).scaleb(min(exponent, 0) - 2)  # two more digits than the size has
        scaled = (Decimal(str(size)) * Decimal(str(fraction))).quantize(step, ROUND_DOWN)
        if scaled <= 0:
            raise ValidationError(f"{fraction:.0%} of the trade size {size} rounds to nothing.")
        return str(scaled.normalize())

    def _engine_config(self, actor: Principal, version: VersionInfo, stage: str,
                       parameters: dict, target: str):
        """The engine config of the deployment, checked to run the version's exact strategy
        config (only the trade size may follow the fraction)."""
        self._versions.check_runnable(version)
        name = self.engine_name(version, stage)
        config = self._engines.validate(ENGINE_TEMPLATES[stage], parameters, name)
        built = config.node["strategies"][0]
        strategy = version.content["strategy"]
        wanted = {**strategy["config"]}
        if TRADE_SIZE in parameters and TRADE_SIZE in wanted:
            wanted[TRADE_SIZE] = built["config"].get(TRADE_SIZE)
        if (built["strategy_path"], built["config_path"], built["config"]) != (
                strategy["strategy_path"], strategy["config_path"], wanted):
            differing = sorted(k for k in set(wanted) | set(built["config"])
                               if wanted.get(k) != built["config"].get(k))
            self._refuse(actor, "strategy.deploy", target, "engine config differs")
            raise PipelineError(f"The {stage} engine would not run version {version.short_id} "
                                "exactly (differs in " + (", ".join(differing) or "class paths")
                                + "); make a new version from the template as it is now.")
        return config

    def _start(self, actor: Principal, version: VersionInfo, stage: str,
               request: PromotionInfo, fraction: float, kind: str, *,
               replacing: DeploymentInfo | None, confirm: str | None,
               options: DeployOptions) -> DeploymentInfo:
        target = f"{version.short_id} to {stage}"
        risk = dict(request.risk_limits)
        parameters = self._parameters(version, stage, fraction, risk, options)
        config = self._engine_config(actor, version, stage, parameters, target)
        if stage == LIVE and confirm != config.name:
            self._refuse(actor, f"strategy.{kind}", target, "live without the typed confirmation")
            raise PermissionDenied(
                f"Deploying version {version.short_id} live sends real orders with real money. "
                f"Type the engine's name to confirm (CLI: --confirm {config.name}; API: "
                f"\"confirm\": \"{config.name}\").")
        permission = "strategy.rollout" if kind == ROLLOUT else "strategy.deploy"
        if replacing is not None and replacing.state in ENGINE_ACTIVE:
            self._stop_engine(actor, replacing, permission)
        engine = self._engines.start(ENGINE_TEMPLATES[stage], parameters, principal=actor,
                                     name=config.name, confirm=confirm, permission=permission)
        deployment_id = "dep-" + uuid.uuid4().hex[:10]
        try:
            with self._db.session() as session:
                if replacing is not None:
                    session.execute(update(DeploymentRow).where(
                        DeploymentRow.deployment_id == replacing.deployment_id,
                        DeploymentRow.state == ACTIVE).values(
                        state=REPLACED if kind != DEPLOY else STOPPED, ended_at=_now(),
                        end_reason=f"{kind} {deployment_id} by {actor.name}"
                        if kind != DEPLOY else "its engine had ended"))
                    session.flush()
                session.add(DeploymentRow(
                    deployment_id=deployment_id, version_id=version.version_id,
                    strategy=version.strategy, bar_type=version.bar_type, stage=stage,
                    request_id=request.request_id, engine_session_id=engine.session_id,
                    engine_name=engine.name, kind=kind,
                    replaces=replacing.deployment_id if kind != DEPLOY else None,
                    capital_fraction=fraction, state=ACTIVE, actor=actor.name,
                    created_at=_now(), risk_limits=risk,
                    parameters={k: str(v) if isinstance(v, Decimal) else v
                                for k, v in parameters.items()}))
                session.add(AuditLog.row(actor, f"strategy.{kind}", deployment_id, "started",
                                         f"version {version.short_id} to {stage} at "
                                         f"{fraction:.0%} on engine {engine.name} "
                                         f"({engine.session_id})", to_state=ACTIVE))
        except WorkbenchError:
            # No deployment row: the engine it started must not run on unrecorded.
            self._engines.emergency_stop(engine.session_id, principal=actor)
            raise
        return self.get(deployment_id)

    # -- controlling ---------------------------------------------------------------------------
    def stop(self, deployment_id: str, *, principal: Principal | None = None) -> DeploymentInfo:
        """Stop the deployment's engine gracefully and close the deployment."""
        info = self.get(deployment_id)
        actor = self._auth.require(principal, "strategy.deploy", deployment_id,
                                   live=info.stage == LIVE, state=info.state)
        if not info.is_active:
            self._refuse(actor, "strategy.stop", deployment_id, f"deployment is {info.state}")
            raise PipelineError(f"Deployment {deployment_id} is already {info.state}; nothing to "
                                "stop.")
        reason = f"stopped by {actor.name}"
        if info.engine_state in ENGINE_ACTIVE:
            self._stop_engine(actor, info)
        else:
            reason += f" (its engine had already ended: {info.engine_state})"
        self._close(deployment_id, STOPPED, reason, actor, "strategy.stop")
        return self.get(deployment_id)

    def emergency_stop(self, deployment_id: str, *,
                       principal: Principal | None = None) -> DeploymentInfo:
        """Kill the deployment's engine now (from any state) and close the deployment."""
        info = self.get(deployment_id)
        actor = self._auth.require(principal, "strategy.deploy", deployment_id,
                                   live=info.stage == LIVE, state=info.state)
        self._engines.emergency_stop(info.engine_session_id, principal=actor)
        if info.is_active:
            self._close(deployment_id, STOPPED, f"emergency stop by {actor.name}", actor,
                        "strategy.emergency_stop")
        return self.get(deployment_id)

    def pause(self, deployment_id: str, *, principal: Principal | None = None) -> DeploymentInfo:
        """Pause the deployed strategy inside its engine (no data or event callbacks; its
        orders and positions stay), through the engine's command channel."""
        return self._strategy_command(deployment_id, "pause", principal)

    def resume(self, deployment_id: str, *, principal: Principal | None = None) -> DeploymentInfo:
        """Resume a paused deployed strategy."""
        return self._strategy_command(deployment_id, "resume", principal)

    def _strategy_command(self, deployment_id: str, action: str,
                          principal: Principal | None) -> DeploymentInfo:
        info = self.get(deployment_id)
        actor = self._auth.require(principal, "strategy.deploy", deployment_id,
                                   live=info.stage == LIVE, state=info.state)
        if not info.is_active or info.engine_state != ENGINE_RUNNING:
            self._refuse(actor, f"strategy.{action}", deployment_id,
                         f"deployment {info.state}")
            raise PipelineError(f"Deployment {deployment_id} is {info.state}"
                                + (f" ({_first_line(info.engine_error)})" if info.engine_error
                                   else "") + f"; only a running deployment can {action}.")
        self._commands.strategy(info.engine_session_id, action, self._strategy_id(info),
                                principal=actor)
        self._auth.audit.record(actor, f"strategy.{action}", deployment_id, "ok")
        return self.get(deployment_id)

    def _strategy_id(self, info: DeploymentInfo) -> str:
        """The deployed strategy's id in its engine (the class name and its order id tag)."""
        version = self._versions.get(info.version_id)
        name = version.content["strategy"]["strategy_path"].rpartition(":")[2]
        tag = version.content["strategy"]["config"].get("order_id_tag") or "000"
        return f"{name}-{tag}"

    def rollback(self, deployment_id: str, *, confirm: str | None = None,
                 principal: Principal | None = None) -> DeploymentInfo:
        """Stop the strategy's current deployment and deploy the version approved for the stage
        before it; the new deployment records the one it replaced."""
        info = self.get(deployment_id)
        actor = self._auth.require(principal, "strategy.deploy", deployment_id,
                                   live=info.stage == LIVE, state=info.state)
        self._require_current(actor, info, "strategy.rollback")
        version = self.rollback_version(deployment_id)
        if version is None:
            self._refuse(actor, "strategy.rollback", deployment_id, "no earlier approved version")
            raise PipelineError(f"There is no version of {info.strategy} on {info.bar_type} "
                                f"approved for {info.stage} before version "
                                f"{info.version_id[:12]}; nothing to roll back to.")
        request = self._approved_request(actor, version, info.stage,
                                         f"{version.short_id} to {info.stage}")
        return self._start(actor, version, info.stage, request,
                           self._fraction(info.stage, None), ROLLBACK, replacing=info,
                           confirm=confirm, options=self._options_of(info))

    def rollback_version(self, deployment_id: str) -> VersionInfo | None:
        """The version a rollback of ``deployment_id`` would deploy (None: there is none)."""
        info = self.get(deployment_id)
        approved = [ApprovedVersion(p.version_id, p.request_id, p.decided_at)
                    for p in self._promotions.approved_in_stage(info.strategy, info.bar_type,
                                                                info.stage)]
        chosen = rollback_target(info.version_id, approved)
        return self._versions.get(chosen.version_id) if chosen is not None else None

    def step_up(self, deployment_id: str, *, confirm: str | None = None,
                principal: Principal | None = None) -> DeploymentInfo:
        """Run the deployment's version at the rollout's next capital fraction (a new engine
        with the larger trade size replaces the running one)."""
        info = self.get(deployment_id)
        # The step restarts the engine; strategy.rollout authorises that too.
        actor = self._auth.require(principal, "strategy.rollout", deployment_id,
                                   state=info.state)
        self._require_current(actor, info, "strategy.rollout")
        if info.engine_state != ENGINE_RUNNING:
            self._refuse(actor, "strategy.rollout", deployment_id, f"engine {info.engine_state}")
            raise PipelineError(f"Deployment {deployment_id}'s engine is {info.engine_state}"
                                + (f" ({_first_line(info.engine_error)})" if info.engine_error
                                   else "") + "; only a running deployment is stepped up.")
        following = self.settings.next_step(info.capital_fraction)
        if following is None:
            self._refuse(actor, "strategy.rollout", deployment_id, "already at 100 %")
            raise PipelineError(f"Deployment {deployment_id} already runs at 100 % of its size.")
        version = self._versions.get(info.version_id)
        request = self._approved_request(actor, version, info.stage,
                                         f"{version.short_id} to {info.stage}")
        return self._start(actor, version, info.stage, request, following, ROLLOUT,
                           replacing=info, confirm=confirm, options=self._options_of(info))

    def _require_current(self, actor: Principal, info: DeploymentInfo, action: str) -> None:
        """Refuse to act on a deployment a later one of the same strategy and stage
        superseded."""
        latest = self._latest(info.strategy, info.bar_type, info.stage)
        if latest is not None and latest.deployment_id != info.deployment_id:
            self._refuse(actor, action, info.deployment_id,
                         f"the latest deployment is {latest.deployment_id}")
            raise PipelineError(f"Deployment {info.deployment_id} is not the latest deployment "
                                f"of {info.strategy} in {info.stage} ({latest.deployment_id} "
                                "is); act on that one.")

    @staticmethod
    def _options_of(info: DeploymentInfo) -> DeployOptions:
        p = info.parameters
        return DeployOptions(replay_start=p.get("replay_start"),
                             replay_speed=float(p["replay_speed"]) if "replay_speed" in p
                             else None, live_venue=p.get("venue"))

    def _stop_engine(self, actor: Principal, info: DeploymentInfo,
                     permission: str = "strategy.deploy") -> None:
        self._engines.stop(info.engine_session_id, principal=actor, permission=permission)
        ended = self._engines.wait_for(info.engine_session_id, (ENGINE_STOPPED, ENGINE_ERROR),
                                       timeout=STOP_TIMEOUT_S)
        if ended.is_active:
            raise PipelineError(f"The engine of deployment {info.deployment_id} did not stop "
                                f"within {STOP_TIMEOUT_S:.0f} s; use the emergency stop.")

    def _close(self, deployment_id: str, state: str, reason: str, actor: Principal,
               action: str) -> None:
        with self._db.session() as session:
            session.execute(update(DeploymentRow).where(
                DeploymentRow.deployment_id == deployment_id, DeploymentRow.state == ACTIVE)
                .values(state=state, ended_at=_now(), end_reason=reason))
            session.add(AuditLog.row(actor, action, deployment_id, "ok", reason, ACTIVE, state))

    def _refuse(self, actor: Principal, action: str, target: str, reason: str) -> None:
        self._auth.audit.record(actor, action, target, "refused", reason)

    # -- reading -------------------------------------------------------------------------------
    def _latest(self, strategy: str, bar_type: str, stage: str) -> DeploymentInfo | None:
        with self._db.session() as session:
            row = session.scalars(select(DeploymentRow).where(
                DeploymentRow.strategy == strategy, DeploymentRow.bar_type == bar_type,
                DeploymentRow.stage == stage).order_by(DeploymentRow.created_at.desc())).first()
        return self._info(row) if row is not None else None

    def _current(self, strategy: str, bar_type: str, stage: str) -> DeploymentInfo | None:
        with self._db.session() as session:
            row = session.scalars(select(DeploymentRow).where(
                DeploymentRow.strategy == strategy, DeploymentRow.bar_type == bar_type,
                DeploymentRow.stage == stage, DeploymentRow.state == ACTIVE)).first()
        return self._info(row) if row is not None else None

    def get(self, deployment_id: str) -> DeploymentInfo:
        with self._db.session() as session:
            row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFound(f"There is no deployment {deployment_id!r}; list them with "
                           "'strategy deployments'.")
        return self._info(row)

    def list(self, stage: str | None = None, version_id: str | None = None,
             limit: int = 200) -> list[DeploymentInfo]:
        """Deployments newest first."""
        query = select(DeploymentRow).order_by(DeploymentRow.created_at.desc()).limit(limit)
        if stage:
            query = query.where(DeploymentRow.stage == stage)
        if version_id:
            query = query.where(DeploymentRow.version_id == version_id)
        with self._db.session() as session:
            rows = session.scalars(query).all()
        return [self._info(r) for r in rows]

    def record_drift(self, deployment_id: str, run_id: str, summary: dict) -> None:
        """Keep the latest drift summary of a deployment (the live gate reads it)."""
        with self._db.session() as session:
            session.execute(update(DeploymentRow).where(
                DeploymentRow.deployment_id == deployment_id).values(
                drift=summary, drift_run_id=run_id, drift_at=_now()))

    def _engine(self, session_id: str) -> EngineInfo | None:
        try:
            return self._engines.get(session_id)
        except EngineNotFound:
            return None

    def _info(self, row: DeploymentRow) -> DeploymentInfo:
        engine = self._engine(row.engine_session_id)
        engine_state = engine.state if engine is not None else "Gone"
        status = engine.status if engine is not None else {}
        pnl = None
        if isinstance(status.get("realized_pnl"), (int, float)):
            pnl = float(status["realized_pnl"]) + float(status.get("unrealized_pnl") or 0.0)
        if row.ended_at is not None and row.drift and "engine_pnl" in row.drift:
            # The engine's last status predates the fills that closed its positions at the
            # stop; the drift read every fill of its log, those included.
            pnl = float(row.drift["engine_pnl"])
        state = row.state
        if row.state == ACTIVE:
            state = engine_state
        return DeploymentInfo(
            deployment_id=row.deployment_id, version_id=row.version_id, strategy=row.strategy,
            bar_type=row.bar_type, stage=row.stage, request_id=row.request_id,
            engine_session_id=row.engine_session_id, engine_name=row.engine_name, kind=row.kind,
            replaces=row.replaces, capital_fraction=row.capital_fraction, state=state,
            engine_state=engine_state, engine_error=engine.error if engine else None,
            actor=row.actor, created_at=aware(row.created_at), ended_at=aware(row.ended_at),
            end_reason=row.end_reason, risk_limits=dict(row.risk_limits or {}),
            parameters=dict(row.parameters or {}), pnl=pnl, drift=row.drift,
            drift_run_id=row.drift_run_id, drift_at=aware(row.drift_at),
            warnings=self._warnings(row))

    def _warnings(self, row: DeploymentRow) -> tuple[str, ...]:
        if row.stage != PAPER:
            return ()
        try:
            venue = self._versions.get(row.version_id).spec.get("venue") or {}
        except WorkbenchError:
            return ()
        return tuple(why for key, plain, why in _PAPER_CANNOT
                     if venue.get(key) is not None and venue.get(key) != plain)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""

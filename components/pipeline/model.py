"""What the pipeline components of one session show and act on: the versions, requests and
deployments (read off the event loop when the pipeline changes), the selections, and the
last outcome."""

from __future__ import annotations

from dataclasses import replace

import param

from components.engines.common import Outcome
from components.live import follow
from components.offloop import run_off_loop
from components.permissions import permission
from services import Workbench
from services.identity.principal import Principal


class PipelineModel(param.Parameterized):
    """The pipeline as one session sees it; the components share one of these."""

    workbench = param.ClassSelector(class_=Workbench, doc="The services acted through.")

    principal = param.ClassSelector(class_=Principal, allow_None=True, doc="""
        Who acts (None: the workbench's default, the local operator in a notebook).""")

    versions = param.List(default=[], doc="Every version (VersionInfo), newest first.")

    promotions = param.List(default=[], doc="Every request (PromotionInfo), newest first.")

    deployments = param.List(default=[], doc="Every deployment (DeploymentInfo), newest first.")

    version = param.String(default=None, allow_None=True, doc="The selected version's id.")

    deployment = param.String(default=None, allow_None=True, doc="The selected deployment.")

    outcome = param.ClassSelector(class_=Outcome, doc="The last outcome shown to the user.")

    def __init__(self, **params):
        params.setdefault("outcome", Outcome())
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("The pipeline components need a workbench (Workbench.open()).")
        self._live = self.workbench.live.start()
        follow(self._live, ["pipeline"], self.reload)
        follow(self._live, ["engines"], self._engines_changed)

    @property
    def pipeline(self):
        return self.workbench.pipeline

    def reload(self) -> None:
        """Read versions, requests and deployments again, off the event loop."""
        pipeline = self.pipeline

        def load():
            return (pipeline.versions.list(), pipeline.promotions.list(),
                    pipeline.deployments.list())

        def loaded(result) -> None:
            if isinstance(result, Exception):
                self.outcome.say(f"Could not read the pipeline: {result}", "danger")
                return
            versions, promotions, deployments = result
            self.param.update(versions=versions, promotions=promotions,
                              deployments=self._with_engines(deployments))
            if self.version is None and versions:
                self.version = versions[0].version_id

        run_off_loop(load, loaded)

    def _engines_changed(self) -> None:
        """Engine states and PnL move with the live state; no database read for them."""
        fresh = self._with_engines(self.deployments)
        if fresh != self.deployments:
            self.deployments = fresh

    def _with_engines(self, deployments: list) -> list:
        engines = self._live.engines
        out = []
        for d in deployments:
            engine = engines.get(d.engine_session_id)
            if engine is None or not d.is_active:
                out.append(d)
                continue
            status = engine.status or {}
            pnl = d.pnl
            if isinstance(status.get("realized_pnl"), (int, float)):
                pnl = float(status["realized_pnl"]) + float(status.get("unrealized_pnl") or 0)
            out.append(replace(d, state=engine.state, engine_state=engine.state,
                               engine_error=engine.error, pnl=pnl))
        return out

    # -- reading what is selected -------------------------------------------------------------
    def selected_version(self):
        return next((v for v in self.versions if v.version_id == self.version), None)

    def selected_deployment(self):
        return next((d for d in self.deployments if d.deployment_id == self.deployment), None)

    def allows(self, action: str, live: bool = False) -> tuple[bool, str]:
        """(allowed, reason) for this session's user doing ``action``."""
        return permission(self.workbench, self.principal, action, live=live)

    # -- acting ---------------------------------------------------------------------------------
    async def act(self, call, done: str, failed: str = "Could not do that"):
        """Run ``call`` off the event loop, say how it went, and read the pipeline again."""
        result = await self.outcome.run(call, done, failed)
        self.reload()
        return result


"""Deployments: deploy the selected version to paper or live, the deployments with their state,
PnL and drift, and the actions on the selected one (stop, pause, resume, emergency stop,
roll back, step up the rollout, compute drift). Every action asks for confirmation; live
deployments also need the engine's name typed."""

from __future__ import annotations

import html
import io

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import ConfirmAction, button
from components.drift_report import drift_chart, drift_report_html, summary_rows
from components.offloop import run_off_loop
from components.permissions import reason_note
from components.pipeline.model import PipelineModel
from components.theme import WRAPPED_HEADERS, signed_colour, state_badge
from services import WorkbenchError
from services.pipeline import DeployOptions

COLUMNS = ["Status", "Deployment", "Version", "Stage", "Size", "PnL", "Drift", "Kind",
           "Created (UTC)"]
LIVE_WARNING = ("A **live** deployment sends real orders with real money, at the rollout's "
                "first step of the version's trade size, under the request's risk limits.")


def drift_cell(drift: dict | None) -> str:
    if not drift:
        return "–"
    corr = drift.get("correlation")
    pct = drift.get("pnl_difference_pct")
    verdict = "ok" if drift.get("within_bounds") else "out"
    return (f"{verdict}: r={'n/a' if corr is None else f'{corr:.3f}'}, "
            f"ΔPnL={'n/a' if pct is None else f'{pct:.1f}%'}")


class DeploymentPanel(Viewer):
    """Deploy, watch and control deployments; see their drift."""

    model = param.ClassSelector(class_=PipelineModel, doc="The session's pipeline.")

    stage = param.Selector(default="paper", objects=["paper", "live"], label="Stage",
                           doc="Where the selected version is deployed to.")

    replay_start = param.String(default="", label="Replay from (paper, ISO time)", doc="""
        Where in the data the paper engine starts (empty: the start of the data).""")

    replay_speed = param.Number(default=600.0, bounds=(1, 100_000),
                                label="Replay speed (x real time)",
                                doc="Seconds of data a paper engine replays per second.")

    deploy = param.Event(label="Deploy…", doc="Deploy the selected version.")

    stop = param.Event(label="Stop…", doc="Stop the selected deployment's engine.")

    pause = param.Event(label="Pause…", doc="Pause the deployed strategy.")

    resume = param.Event(label="Resume…", doc="Resume the paused strategy.")

    emergency = param.Event(label="Emergency stop…", doc="Kill the deployment's engine now.")

    rollback = param.Event(label="Roll back…", doc="Deploy the version approved before.")

    step_up = param.Event(label="Step up rollout…", doc="Run at the next capital fraction.")

    drift = param.Event(label="Compute drift…", doc="Compare with a backtest of its window.")

    def __init__(self, **params):
        super().__init__(**params)
        self.confirmation = ConfirmAction()
        self._ids: list[str] = []
        self._report = None  # the drift report on display
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=COLUMNS), show_index=False, disabled=True, selectable=1,
            sizing_mode="stretch_width", layout="fit_columns", pagination="local", page_size=5,
            formatters={"Status": {"type": "html"}, "PnL": {"type": "html"}},
            widths={"Status": 120, "Deployment": 140, "Version": 125, "Stage": 75, "Size": 70,
                    "PnL": 100, "Drift": 240, "Kind": 90},
            css_classes=["deployment-list"],
            configuration=WRAPPED_HEADERS)
        self._table.param.watch(self._picked, "selection")
        self._detail = pn.pane.Markdown("", sizing_mode="stretch_width",
                                        css_classes=["deployment-detail"])
        self._drift_summary = pn.pane.HTML("", sizing_mode="stretch_width",
                                           css_classes=["drift-summary"])
        self._drift_chart = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._download = pn.widgets.FileDownload(callback=self._report_file, filename="drift.html",
                                                 label="Download drift report", visible=False,
                                                 width=220)
        names = ("deploy", "stop", "pause", "resume", "emergency", "rollback", "step_up",
                 "drift")
        # One size, so the actions line up when they wrap at 1280 px.
        self._buttons = {n: button(self.param[n], width=135,
                                   color="danger" if n == "emergency"
                                   else "primary" if n == "deploy" else "default")
                         for n in names}
        self._buttons["deploy"].param.update(align="end", width=180)  # beside the fields
        self._note = reason_note()
        self._layout = pn.Column(
            pn.pane.Markdown("#### Deploy the selected version"),
            pn.Row(pn.widgets.RadioButtonGroup.from_param(self.param.stage),
                   pn.widgets.TextInput.from_param(self.param.replay_start, width=230,
                                                   placeholder="2024-03-04T00:00"),
                   pn.widgets.FloatInput.from_param(self.param.replay_speed, width=170),
                   self._buttons["deploy"], sizing_mode="stretch_width"),
            pn.pane.Markdown("#### Deployments"), self._table, self._detail,
            pn.FlexBox(*(self._buttons[n] for n in names[1:]), flex_wrap="wrap",
                       sizing_mode="stretch_width"), self.confirmation,
            self._drift_summary, self._download, self._drift_chart, self._note,
            sizing_mode="stretch_width")
        self.model.param.watch(lambda *_: self._draw(), ["deployments", "deployment"])
        self.model.param.watch(lambda *_: self._permit_deploy(), ["version", "versions"])
        self._draw()

    @param.depends("stage", watch=True)
    def _permit_deploy(self) -> None:
        """Deploying live needs more than deploying to paper; say why it is disabled."""
        allowed, reason = self.model.allows("strategy.deploy", live=self.stage == "live")
        chosen = self.model.selected_version() is not None
        self._buttons["deploy"].disabled = not (allowed and chosen)
        self._buttons["deploy"].description = reason if not allowed else (
            None if chosen else "Select a version first.")
        self._explain()

    def _explain(self) -> None:
        """List why any of this panel's buttons are disabled for this user."""
        live = self.stage == "live" or (self.model.selected_deployment() is not None
                                        and self.model.selected_deployment().stage == "live")
        checks = [self.model.allows("strategy.deploy", live=live),
                  self.model.allows("strategy.rollout"), self.model.allows("strategy.drift")]
        reasons = sorted({reason for allowed, reason in checks if not allowed})
        self._note.object = "\n\n".join(reasons)
        self._note.visible = bool(reasons)

    def __panel__(self):
        return self._layout

    # -- drawing ----------------------------------------------------------------------------
    def _draw(self) -> None:
        deployments = self.model.deployments
        self._ids = [d.deployment_id for d in deployments]
        if self.model.deployment not in self._ids and deployments:
            self.model.deployment = deployments[0].deployment_id
            return  # drawn again by the watcher
        table = pd.DataFrame([{
            "Status": state_badge(d.state), "Deployment": d.deployment_id,
            "Version": d.version_id[:12], "Stage": d.stage, "Size": f"{d.capital_fraction:.0%}",
            "PnL": "–" if d.pnl is None else
            f'<span style="color:{signed_colour(d.pnl)}">{d.pnl:,.2f}</span>',
            "Drift": drift_cell(d.drift), "Kind": d.kind,
            "Created (UTC)": f"{d.created_at:%Y-%m-%d %H:%M:%S}"}
            for d in deployments], columns=COLUMNS)
        if not table.equals(self._table.value):
            self._table.value = table
        self._table.visible = bool(deployments)  # none: the detail says so
        rows = ([self._ids.index(self.model.deployment)]
                if self.model.deployment in self._ids else [])
        if self._table.selection != rows:
            self._table.selection = rows
        self._show_selected()

    def _show_selected(self) -> None:
        d = self.model.selected_deployment()
        for name in ("stop", "pause", "resume", "emergency", "rollback", "step_up", "drift"):
            self._buttons[name].disabled = d is None
        if d is None:
            self._detail.object = "No deployments yet."
            self._show_drift(None)
            self._permit_deploy()
            return
        running = d.is_active and d.engine_state == "Running"
        live = d.stage == "live"
        rules = {"stop": ("strategy.deploy", d.is_active),
                 "pause": ("strategy.deploy", running), "resume": ("strategy.deploy", running),
                 "emergency": ("strategy.deploy", d.is_active),
                 "rollback": ("strategy.deploy", True),
                 "step_up": ("strategy.rollout", running and d.capital_fraction < 1.0),
                 "drift": ("strategy.drift", True)}
        for name, (action, possible) in rules.items():
            allowed, reason = self.model.allows(action, live=live and action != "strategy.drift")
            self._buttons[name].disabled = not (possible and allowed)
            self._buttons[name].description = None if allowed else reason
        self._permit_deploy()
        error = (f"  \nengine error: {d.engine_error.strip().splitlines()[0]}"
                 if d.engine_error and d.engine_error.strip() else "")
        warnings = "".join(f"  \nnote: {w}" for w in d.warnings)
        limits = ", ".join(f"{k}={v:g}" for k, v in d.risk_limits.items()) or "none"
        self._detail.object = (
            f"**{d.deployment_id}** · version `{d.version_id[:12]}` in **{d.stage}** at "
            f"{d.capital_fraction:.0%} · {d.state} · engine `{d.engine_name}` "
            f"(session `{d.engine_session_id}`)  \n"
            f"{d.kind} by {d.actor} at {d.created_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f", replacing {d.replaces}" if d.replaces else "")
            + (f" · ended: {d.end_reason}" if d.end_reason else "")
            + f"  \nrisk limits: {limits}{error}{warnings}")
        self._show_drift(d)

    def _show_drift(self, deployment) -> None:
        if deployment is None or not deployment.drift_run_id:
            self._report = None
            self._drift_summary.object = ""
            self._drift_chart.object = None
            self._download.visible = False
            return
        if self._report is not None and self._report.deployment.deployment_id == \
                deployment.deployment_id and self._report.run_id == deployment.drift_run_id:
            return
        drift = self.model.pipeline.drift
        wanted = (deployment.deployment_id, deployment.drift_run_id)

        def done(report) -> None:
            selected = self.model.selected_deployment()
            if selected is None or (selected.deployment_id, selected.drift_run_id) != wanted:
                return
            if isinstance(report, WorkbenchError):
                self._drift_summary.object = (f"<p>The drift cannot be shown: "
                                              f"{html.escape(str(report))}</p>")
                return
            if isinstance(report, Exception):
                raise report
            self._report = report
            rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                           for k, v in summary_rows(report))
            notes = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in report.notes)
            self._drift_summary.object = (f"<h4>Drift against run {html.escape(report.run_id)}"
                                          f"</h4><table>{rows}</table>{notes}")
            self._drift_chart.object = drift_chart(report)
            self._download.filename = f"drift-{deployment.deployment_id}.html"
            self._download.visible = True

        run_off_loop(lambda: drift.report(deployment.deployment_id), done,
                     busy=self._drift_summary)

    def _report_file(self):
        if self._report is None:
            return None
        return io.StringIO(drift_report_html(self._report))

    def _picked(self, event) -> None:
        if event.new and event.new[0] < len(self._ids):
            chosen = self._ids[event.new[0]]
            if chosen != self.model.deployment:
                self.model.deployment = chosen

    # -- actions ----------------------------------------------------------------------------
    @param.depends("deploy", watch=True)
    def _ask_deploy(self) -> None:
        version = self.model.selected_version()
        if version is None:
            self.model.outcome.say("Select a version first.", "warning")
            return
        pipeline, principal, stage = self.model.pipeline, self.model.principal, self.stage
        options = (DeployOptions(replay_start=self.replay_start.strip() or None,
                                 replay_speed=self.replay_speed)
                   if stage == "paper" else DeployOptions())
        name = pipeline.deployments.engine_name(version, stage)

        async def confirmed(typed: str) -> None:
            result = await self.model.act(
                lambda: pipeline.deployments.deploy(version.version_id, stage, confirm=typed or
                                                    None, options=options, principal=principal),
                f"Deploying version {version.short_id} to {stage} on engine {name}.",
                f"Could not deploy version {version.short_id}")
            if result is not None:
                self.model.deployment = result.deployment_id

        where = (f"replaying from {options.replay_start or 'the start of the data'} at "
                 f"{options.replay_speed:g}x" if stage == "paper" else "on the venue")
        self.confirmation.ask(
            f"Deploy version **{version.short_id}** ({version.strategy} on "
            f"{version.bar_type}) to **{stage}** on engine `{name}`, {where}?", confirmed,
            label=f"Deploy to {stage}", warning=LIVE_WARNING if stage == "live" else "",
            expected=name if stage == "live" else "")

    def _ask(self, verb: str, summary: str, call, done: str, *, danger: bool = False,
             expected: str = "", warning: str = "") -> None:
        deployment = self.model.selected_deployment()
        if deployment is None:
            return

        async def confirmed(typed: str) -> None:
            result = await self.model.act(lambda: call(deployment, typed or None), done,
                                          f"Could not {verb} {deployment.deployment_id}")
            if result is not None and getattr(result, "deployment_id", None):
                self.model.deployment = result.deployment_id

        self.confirmation.ask(summary.format(d=deployment), confirmed, label=verb.capitalize(),
                              danger=danger, expected=expected, warning=warning)

    @param.depends("stop", watch=True)
    def _ask_stop(self) -> None:
        deployments, principal = self.model.pipeline.deployments, self.model.principal
        self._ask("stop", "**Stop** deployment {d.deployment_id}: its engine `{d.engine_name}` "
                  "stops its strategy (closing its positions) and exits?",
                  lambda d, _t: deployments.stop(d.deployment_id, principal=principal),
                  "Stopped.")

    @param.depends("pause", watch=True)
    def _ask_pause(self) -> None:
        deployments, principal = self.model.pipeline.deployments, self.model.principal
        self._ask("pause", "**Pause** the strategy of {d.deployment_id}? It receives no data "
                  "until resumed; its orders and positions stay.",
                  lambda d, _t: deployments.pause(d.deployment_id, principal=principal),
                  "Paused.")

    @param.depends("resume", watch=True)
    def _ask_resume(self) -> None:
        deployments, principal = self.model.pipeline.deployments, self.model.principal
        self._ask("resume", "**Resume** the strategy of {d.deployment_id}?",
                  lambda d, _t: deployments.resume(d.deployment_id, principal=principal),
                  "Resumed.")

    @param.depends("emergency", watch=True)
    def _ask_emergency(self) -> None:
        deployments, principal = self.model.pipeline.deployments, self.model.principal
        self._ask("kill", "**Kill** the engine of {d.deployment_id} now (SIGKILL)? Its "
                  "strategy does not stop cleanly; open orders stay at the venue.",
                  lambda d, _t: deployments.emergency_stop(d.deployment_id,
                                                           principal=principal),
                  "Killed.", danger=True)

    @param.depends("rollback", watch=True)
    def _ask_rollback(self) -> None:
        deployments, principal = self.model.pipeline.deployments, self.model.principal
        d = self.model.selected_deployment()
        if d is None:
            return

        def found(target) -> None:
            if isinstance(target, Exception) or target is None:
                self.model.outcome.say(
                    f"Nothing to roll back to: no version of {d.strategy} was approved for "
                    f"{d.stage} before `{d.version_id[:12]}`."
                    if target is None else f"Could not look for a rollback: {target}",
                    "warning")
                return
            live = d.stage == "live"
            self._ask("roll back", "**Roll back** {d.deployment_id}: stop it and deploy version "
                      f"`{target.short_id}`, approved for {d.stage} before `{d.version_id[:12]}`?",
                      lambda d, typed: deployments.rollback(d.deployment_id, confirm=typed,
                                                            principal=principal),
                      "Rolled back.", danger=True, warning=LIVE_WARNING if live else "",
                      expected=deployments.engine_name(target, d.stage) if live else "")

        run_off_loop(lambda: deployments.rollback_version(d.deployment_id), found)

    @param.depends("step_up", watch=True)
    def _ask_step_up(self) -> None:
        pipeline, principal = self.model.pipeline, self.model.principal
        d = self.model.selected_deployment()
        if d is None:
            return
        following = pipeline.settings.next_step(d.capital_fraction)
        live = d.stage == "live"
        self._ask("step up", f"**Step up** {{d.deployment_id}} from {d.capital_fraction:.0%} to "
                  f"{(following or 1):.0%} of the version's trade size? A new engine with the "
                  "larger size replaces the running one.",
                  lambda d, typed: pipeline.deployments.step_up(d.deployment_id, confirm=typed,
                                                                principal=principal),
                  "Stepped up.", warning=LIVE_WARNING if live else "",
                  expected=d.engine_name if live else "")

    @param.depends("drift", watch=True)
    def _ask_drift(self) -> None:
        drift, principal = self.model.pipeline.drift, self.model.principal
        self._ask("compute drift", "**Compute the drift** of {d.deployment_id}: re-run its "
                  "version as a backtest of the window its engine traded and compare?",
                  lambda d, _t: drift.compute(d.deployment_id, principal=principal),
                  "Drift computed.")

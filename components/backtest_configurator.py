"""Configure and run a backtest: template, parameters, data slice, venue; progress and errors."""

from __future__ import annotations

import logging

import panel as pn
import param
from panel.viewable import Viewer

from components.live import follow
from components.offloop import run_off_loop
from components.permissions import permission, reason_note, restrict
from components.run_form import RunForm, refusal
from services import ValidationError, Workbench, WorkbenchError
from services.backtest import BacktestSpec
from services.identity.principal import Principal

log = logging.getLogger(__name__)


class BacktestConfigurator(Viewer):
    """Pick a strategy template and a slice of the catalog, set parameters, run a backtest."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the component reads templates and catalog from and submits runs to.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    label = param.String(default="", doc="Free text shown with the run.")

    run = param.Event(label="Run backtest", doc="Submit the backtest as configured.")

    run_id = param.String(default=None, allow_None=True, doc="The run submitted last.")

    status = param.String(default="", doc="Status of the run submitted last.")

    progress = param.Integer(default=0, bounds=(0, 100), doc="Progress of that run, in percent.")

    completed_run = param.String(default=None, allow_None=True, doc="""
        Id of the last run that completed; pages link it to the results viewer.""")

    message = param.String(default="", doc="Last outcome shown to the user (markdown).")

    message_kind = param.Selector(default="info", objects=["info", "success", "warning", "danger"],
                                  doc="How the message is shown.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("BacktestConfigurator needs a workbench (services.Workbench.open()).")
        self._live = self.workbench.live.start()
        self.form = RunForm(workbench=self.workbench)
        self._run_button = pn.widgets.Button.from_param(self.param.run, color="primary",
                                                        sizing_mode="stretch_width")
        self._alert = pn.pane.Alert(self.param.message, alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        self._progress_bar = pn.indicators.Progress(value=0, max=100, visible=False,
                                                    sizing_mode="stretch_width", bar_color="primary")
        self._status_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._may_run = permission(self.workbench, self.principal, "backtest.submit")
        restrict(self._run_button, *self._may_run)
        self._fix_note = pn.pane.Markdown("", visible=False, sizing_mode="stretch_width",
                                          css_classes=["form-problems"])
        self.form.param.watch(self._on_problems, "problems")
        self._on_problems()
        if self.form.message:
            self._show(self.form.message, self.form.message_kind)
        self.form.param.watch(lambda _: self._show(self.form.message, self.form.message_kind),
                              "message")
        self._layout = self._build_layout()
        follow(self._live, ["runs"], self._on_live)

    # -- layout -------------------------------------------------------------------------------
    def _build_layout(self):
        run_card = pn.Card(
            pn.widgets.TextInput.from_param(self.param.label, placeholder="optional note"),
            self._run_button, self._fix_note, reason_note(self._may_run), self._progress_bar,
            self._status_text, self._alert,
            title="Run", collapsible=False, sizing_mode="stretch_width",
        )
        return pn.Row(
            pn.Column(self.form.strategy_card, self.form.venue_card, sizing_mode="stretch_width"),
            pn.Column(self.form.data_card, run_card, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return self._layout

    def _on_problems(self, *_events) -> None:
        """Run waits until every field is valid; the note says what to fix."""
        problems = self.form.problems
        self._run_button.disabled = not self._may_run[0] or bool(problems)
        self._fix_note.object = "\n".join(f"- {p}" for p in problems)
        self._fix_note.visible = bool(problems)

    # -- running ------------------------------------------------------------------------------
    def spec(self) -> BacktestSpec:
        """The BacktestSpec the current settings describe."""
        form = self.form
        start, end = form.time_range()
        return BacktestSpec(
            strategy=form.strategy, bar_type=form.bar_type, parameters=form.parameters(),
            start=start, end=end, venue=form.venue(), label=self.label,
        )

    @param.depends("run", watch=True)
    def _on_run(self) -> None:
        """Queue the backtest the form describes now; the page follows the newest one."""
        try:
            spec = self.spec()  # the values as they are at the click, before any waiting
        except ValidationError as e:
            self._show(refusal(e), "danger")
            return
        except WorkbenchError as e:
            self._show(f"Could not start the backtest: {e}", "danger")
            return
        following = self.run_id if self.status in ("Queued", "Running", "Paused") else None

        def submitted(outcome) -> None:
            if isinstance(outcome, ValidationError):
                self._show(refusal(outcome), "danger")
                return
            if isinstance(outcome, Exception):
                if not isinstance(outcome, WorkbenchError):
                    log.error("submitting a backtest failed", exc_info=outcome)
                self._show(f"Could not start the backtest: {outcome}", "danger")
                return
            self.run_id = outcome
            self.status, self.progress = "Queued", 0
            queued = (f" It joins the queue behind `{following}`, which is still running; "
                      "see every run on the [Runs](./runs) page.") if following else ""
            self._show(f"Run `{outcome}` submitted.{queued}", "info")
            self._progress_bar.visible = True
            self.poll()

        run_off_loop(lambda: self.workbench.backtests.submit(spec, principal=self.principal),
                     submitted, busy=self._run_button)

    def _on_live(self) -> None:
        info = next((r for r in self._live.runs if r.run_id == self.run_id), None)
        if info is not None and (info.status, info.progress) != (self.status, self.progress):
            self._follow(info)

    def poll(self) -> None:
        """Show the submitted run's status and progress (read now; the live state also pushes
        them every second)."""
        if not self.run_id:
            return
        try:
            self._follow(self.workbench.backtests.get(self.run_id))
        except WorkbenchError as e:
            self._show(f"Lost track of run {self.run_id}: {e}", "danger")

    def _follow(self, info) -> None:
        self.status = info.status
        self.progress = int(round((info.progress or 0) * 100))
        phase = f" ({info.phase})" if info.phase and not info.is_final else ""
        self._progress_bar.value = self.progress
        self._status_text.object = f"**{info.status}**{phase} · {self.progress} %"
        if not info.is_final:
            return
        self._progress_bar.visible = info.status == "Completed"
        if info.status == "Completed":
            self.progress = 100
            self._progress_bar.value = 100
            self.completed_run = info.run_id
            self._show(f"Run `{info.run_id}` completed: {info.num_trades or 0:,} trades. "
                       f"[Open the results](./results?run={info.run_id})", "success")
        else:
            self._show(f"Run `{info.run_id}` {info.status.lower()}: "
                       f"{info.error or 'no reason given'}", "danger")

    def _show(self, text: str, kind: str) -> None:
        self.message_kind = kind
        self.message = text
        self._alert.alert_type = kind
        self._alert.visible = bool(text)

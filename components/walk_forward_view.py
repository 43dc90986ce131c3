"""Walk-forward analyses: the folds (windows, chosen parameters, in- and out-of-sample metric),
the stitched out-of-sample equity, the walk-forward efficiency, the stability of the choices;
pause, resume and stop."""

from __future__ import annotations

import logging

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components import charts
from components.live import follow
from components.offloop import run_off_loop
from components.permissions import permission, reason_note
from services import Workbench, WorkbenchError
from services.backtest.metric_labels import format_statistic, metric_label
from services.backtest.walk_forward import WalkForwardInfo, WalkForwardResult
from services.identity.principal import Principal

log = logging.getLogger(__name__)

_TIME = "%Y-%m-%d %H:%M"
NO_ANALYSIS = ("No walk-forward analyses yet: set the train, test and step days on the left and "
               "press **Run walk-forward**; its folds and out-of-sample equity show here.")


def folds_frame(result: WalkForwardResult) -> pd.DataFrame:
    """The folds table as shown: windows as text, returns in %."""
    table = result.table()
    if table.empty:
        return table
    for column in ("train_start", "train_end", "test_start", "test_end"):
        table[column] = pd.to_datetime(table[column], utc=True).dt.strftime(_TIME)
    for column in ("in_sample_return", "out_of_sample_return", "deflated_sharpe", "pbo"):
        table[column] = pd.to_numeric(table[column]) * 100
    return table.astype(object).where(table.notna(), None)


def readings_markdown(result: WalkForwardResult) -> str:
    """Efficiency, the out-of-sample figures and the stability of the choices, one per line."""
    oos = result.out_of_sample
    lines = [f"- **Walk-forward efficiency**: {result.efficiency.reading}",
             f"- **Out of sample** over {oos.days} days: return "
             f"{format_statistic('total_return', oos.total_return)}, annualised "
             f"{format_statistic('total_return', oos.annualised_return)}, Sharpe "
             f"{format_statistic('sharpe', oos.sharpe)}, max drawdown "
             f"{format_statistic('max_drawdown', oos.max_drawdown)}; chosen from "
             f"{oos.trials:,} train runs."]
    lines += [f"- {figure.reading}" for figure in (oos.psr, oos.min_track_record)
              if figure is not None]
    lines += [f"- {note}" for note in oos.notes]
    lines.append(f"- **Stability of the choices**: {result.stability.reading}")
    lines += [f"- {f.info.error}" for f in result.folds if f.info.error]
    return "\n".join(lines)


class WalkForwardView(Viewer):
    """Watch a walk-forward analysis, study its folds, pause, resume or stop it."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the analyses are read from.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    walk_forward_id = param.Selector(default=None, objects=[], allow_None=True,
                                     label="Walk-forward", doc="The analysis on display.")

    pause = param.Event(label="Pause", doc="Hold the analysis: running runs pause, nothing starts.")

    resume = param.Event(label="Resume", doc="Let a paused analysis go on.")

    stop = param.Event(label="Stop", doc="Cancel every unfinished run of the analysis.")

    result = param.ClassSelector(class_=WalkForwardResult, default=None, allow_None=True, doc="""
        The folds and figures on display (read-only).""")

    message = param.String(default="", doc="Outcome of the last action (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("WalkForwardView needs a workbench (services.Workbench.open()).")
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._progress = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width",
                                                bar_color="primary")
        self._alert = pn.pane.Alert("", alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        self._folds = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, pagination="remote", page_size=12,
            sizing_mode="stretch_width", layout="fit_data_stretch")
        self._readings = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._equity = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._note = reason_note()
        # Enabled for the analysis shown (see _enable_controls); none is shown yet.
        self._buttons = {name: pn.widgets.Button.from_param(self.param[name], width=100,
                                                            color=kind, disabled=True)
                         for name, kind in (("pause", "default"), ("resume", "default"),
                                            ("stop", "danger"))}
        self._shown = None  # the (id, folds' states) the figures were computed for
        self._summary.object = NO_ANALYSIS
        self._details = pn.Column(  # shown with an analysis: no empty tables before
            self._progress, pn.pane.Markdown("### Folds"), self._folds, self._readings,
            pn.pane.Markdown("### Out-of-sample equity (test windows stitched)"), self._equity,
            visible=False, sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.FlexBox(pn.widgets.Select.from_param(self.param.walk_forward_id, width=270),
                       *self._buttons.values(), align_items="flex-end",
                       sizing_mode="stretch_width"),
            self._note, self._alert, self._summary, self._details,
            sizing_mode="stretch_width")
        self._live = self.workbench.live.start()
        self._load(self._live.walk_forwards or self.workbench.walk_forwards.list())
        follow(self._live, ["walk_forwards"], self._on_live)

    def __panel__(self):
        return self._layout

    def show(self, walk_forward_id: str) -> None:
        """Display ``walk_forward_id`` (e.g. just submitted), reading the list anew."""
        self._load(self.workbench.walk_forwards.list())
        self.walk_forward_id = walk_forward_id

    def _load(self, analyses: list[WalkForwardInfo]) -> None:
        ids = [a.walk_forward_id for a in analyses]
        if ids != self.param.walk_forward_id.objects:
            current = self.walk_forward_id
            self.param.walk_forward_id.objects = ids
            if current in ids:
                self.walk_forward_id = current
            elif ids:
                self.walk_forward_id = ids[0]
        info = next((a for a in analyses if a.walk_forward_id == self.walk_forward_id), None)
        if info is not None:
            self._present(info)

    def _on_live(self) -> None:
        self._load(self._live.walk_forwards)

    @param.depends("walk_forward_id", watch=True)
    def _on_choice(self) -> None:
        self._shown = None
        if self.walk_forward_id:
            try:
                self._present(self.workbench.walk_forwards.get(self.walk_forward_id))
            except WorkbenchError as e:
                self._say(str(e), "danger")

    def _present(self, info: WalkForwardInfo) -> None:
        """Show where the analysis stands; compute its figures again when a fold moved on."""
        done = info.count("Completed", "Failed", "Cancelled")
        self._progress.value = round(info.progress * 100)
        self._summary.object = (
            f"**{info.status}** — {info.strategy} on `{info.bar_type}`, {len(info.folds)} folds "
            f"chosen by {metric_label(info.metric)}, {info.runtime} runtime: "
            f"{done:,}/{info.runs:,} runs done, {info.count('Running')} running, "
            f"{info.count('Paused')} paused, {info.count('Queued'):,} queued")
        self._enable_controls(info)
        self._details.visible = True
        state = (info.walk_forward_id, tuple(f.status for f in info.folds), info.status)
        if state != self._shown:
            self._shown = state
            self._compute(info.walk_forward_id)

    def _enable_controls(self, info: WalkForwardInfo) -> None:
        allowed, reason = permission(self.workbench, self.principal, "sweep.stop",
                                     owner=info.actor)
        over = info.is_final or info.status == "Stopping"
        self._buttons["pause"].disabled = not allowed or over or info.status == "Paused"
        self._buttons["resume"].disabled = not allowed or info.status != "Paused"
        self._buttons["stop"].disabled = not allowed or over
        self._note.object, self._note.visible = reason, not allowed

    def _compute(self, walk_forward_id: str) -> None:
        walk_forwards = self.workbench.walk_forwards

        def work():
            result = walk_forwards.result(walk_forward_id)
            equity = (charts.equity_curve_chart(
                result.equity, "Out-of-sample equity", result.currency or "",
                boundaries=[f.info.test_start for f in result.folds[1:]])
                if not result.equity.empty else None)
            return result, folds_frame(result), equity

        def done(outcome) -> None:
            if walk_forward_id != self.walk_forward_id:
                return
            if isinstance(outcome, Exception):
                if not isinstance(outcome, WorkbenchError):
                    log.error("reading walk-forward %s failed", walk_forward_id,
                              exc_info=outcome)
                self._say(f"Cannot show walk-forward `{walk_forward_id}`: {outcome}", "danger")
                return
            result, frame, equity = outcome
            # The result is read after the live state's snapshot: its status may be newer.
            self._enable_controls(result.info)
            self.result = result
            self._folds.value = frame
            self._readings.object = readings_markdown(result)
            self._equity.object = equity

        run_off_loop(work, done, busy=self._folds)

    @param.depends("pause", watch=True)
    def _on_pause(self) -> None:
        self._control("pause", "paused")

    @param.depends("resume", watch=True)
    def _on_resume(self) -> None:
        self._control("resume", "resumed")

    @param.depends("stop", watch=True)
    def _on_stop(self) -> None:
        self._control("stop", "stopped")

    def _control(self, action: str, done: str) -> None:
        walk_forward_id = self.walk_forward_id
        if not walk_forward_id:
            self._say("Choose a walk-forward analysis first.", "warning")
            return

        def finished(outcome) -> None:
            if isinstance(outcome, WorkbenchError):
                self._say(f"Could not {action} `{walk_forward_id}`: {outcome}", "danger")
            elif isinstance(outcome, Exception):
                log.error("%s of walk-forward %s failed", action, walk_forward_id,
                          exc_info=outcome)
                self._say(f"Could not {action} `{walk_forward_id}`; the details are in the "
                          "server log.", "danger")
            else:
                self._say(f"Walk-forward `{walk_forward_id}` {done}: now **{outcome.status}**.",
                          "success")
                self._present(outcome)

        run_off_loop(lambda: getattr(self.workbench.walk_forwards, action)(
            walk_forward_id, principal=self.principal), finished, busy=self._layout)

    def _say(self, text: str, kind: str) -> None:
        self.message = text
        self._alert.object = text
        self._alert.alert_type = kind
        self._alert.visible = bool(text)

"""Compare backtest runs: overlaid equity and drawdown, metrics side by side, parameter diff."""

from __future__ import annotations

import io
import logging

import panel as pn
import param
from panel.viewable import Viewer

from components import charts
from components.formats import run_choices
from components.offloop import run_off_loop
from components.report import comparison_report_html, metrics_comparison_html, parameter_diff_html
from components.theme import GAIN, translucent
from services import Workbench, WorkbenchError

log = logging.getLogger(__name__)


class RunComparison(Viewer):
    """Pick two or more completed runs and compare them."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the runs are read from.")

    run_ids = param.ListSelector(default=[], objects=[], label="Runs to compare", doc="""
        Completed runs to compare (two or more).""")

    refresh = param.Event(label="Refresh", doc="Reload the list of completed runs.")

    message = param.String(default="", doc="Why the comparison cannot be shown, if it cannot.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("RunComparison needs a workbench (services.Workbench.open()).")
        self._results = []
        self._alert = pn.pane.Alert("", alert_type="info", sizing_mode="stretch_width")
        self._note = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self._charts = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._metrics = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[
            "table {border-collapse: collapse; font-size: 0.9em;}"
            # Translucent lines and highlight: readable on the light and the dark theme alike
            # (an opaque pale green behind the dark theme's white text was not).
            "td, th {padding: 3px 10px; border-bottom: 1px solid rgba(128, 128, 128, 0.3);"
            " text-align: right;}"
            "td:first-child, th:first-child {text-align: left;}"
            f".best {{background: {translucent(GAIN, 0.25)}; font-weight: 600;}}"
            " .muted {opacity: 0.7;}"])
        self._parameters = pn.pane.HTML("", sizing_mode="stretch_width",
                                        stylesheets=self._metrics.stylesheets)
        self._download = pn.widgets.FileDownload(callback=self._report_file, filename="comparison.html",
                                                 label="Download comparison report",
                                                 color="primary", width=260)
        self._body = pn.Column(
            self._note, self._download, self._charts,
            pn.Tabs(("Metrics", self._metrics), ("Parameters", self._parameters),
                    sizing_mode="stretch_width"),
            visible=False, sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(pn.widgets.MultiChoice.from_param(self.param.run_ids, sizing_mode="stretch_width"),
                   pn.widgets.Button.from_param(self.param.refresh, width=100, align="end")),
            self._alert, self._body, sizing_mode="stretch_width")
        self._load_runs()
        self._compare()

    def __panel__(self):
        return self._layout

    @param.depends("refresh", watch=True)
    def _load_runs(self) -> None:
        try:
            # Completed runs, by the database: the newest 500 runs of any state may hold
            # none, after a cancelled 1,000-run sweep.
            runs = run_choices(self.workbench.backtests.list_runs(status="Completed"))
        except WorkbenchError as e:
            self._say(f"Cannot list runs: {e}", "danger")
            return
        chosen = [r for r in self.run_ids if r in runs.values()]
        self.param.run_ids.objects = runs
        self.run_ids = chosen

    @param.depends("run_ids", watch=True)
    def _compare(self) -> None:
        """Load and chart the runs off the event loop; show them when ready."""
        self._results = []
        chosen = list(self.run_ids)
        if len(chosen) < 2:
            self._body.visible = False
            self._say("Choose two or more completed runs to compare.", "info")
            return

        def load():
            results = [self.workbench.backtests.results(r) for r in chosen]
            return results, charts.comparison_charts(results), \
                metrics_comparison_html(results), parameter_diff_html(results)

        run_off_loop(load, lambda outcome: self._show(chosen, outcome), busy=self._layout)

    def _show(self, chosen: list[str], outcome) -> None:
        if chosen != list(self.run_ids):
            return  # the choice changed meanwhile
        if isinstance(outcome, Exception):
            self._body.visible = False
            self._say(str(outcome) if isinstance(outcome, WorkbenchError) else
                      "These runs cannot be compared; the details are in the server log.",
                      "danger")
            if not isinstance(outcome, WorkbenchError):
                log.error("comparing %s failed", chosen, exc_info=outcome)
            return
        self._results, comparison, metrics, parameters = outcome
        self._alert.visible = False
        self.message = ""
        currencies = sorted({r.summary.get("currency") or "?" for r in self._results})
        self._note.object = (f"These runs are in different currencies ({', '.join(currencies)}): money "
                             "amounts are not comparable; compare returns and ratios.")
        self._note.visible = len(currencies) > 1
        self._charts.object = comparison
        self._metrics.object = metrics
        self._parameters.object = parameters
        self._download.filename = f"comparison-{'-'.join(self.run_ids[:4])}.html"
        self._body.visible = True

    def _report_file(self) -> io.StringIO | None:
        return io.StringIO(comparison_report_html(self._results)) if len(self._results) >= 2 else None

    def _say(self, text: str, kind: str) -> None:
        self.message = text
        self._alert.object = text
        self._alert.alert_type = kind
        self._alert.visible = True

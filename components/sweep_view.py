"""Parameter sweeps: choose the values to try, run them as one sweep, rank the runs by a metric,
see a metric over two parameters, open any run, stop the sweep."""

from __future__ import annotations

import datetime as dt
import html
import logging

import holoviews as hv
import holoviews.plotting.bokeh
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.live import follow
from components.offloop import run_off_loop
from components.permissions import permission, reason_note, restrict
from components.run_queue import RunQueue
from services import ValidationError, Workbench, WorkbenchError
from services.backtest.metric_labels import format_statistic
from services.backtest.sweep import SweepSpec
from services.identity.principal import Principal

log = logging.getLogger(__name__)

RUNTIMES = ["local", "dask", "docker"]
# Parameter types that can be varied in a sweep.
SWEEPABLE = ("int", "float", "decimal", "bool", "choice")


def suggested_values(spec) -> str:
    """A first guess of values to try for a numeric parameter: half, once and twice its default."""
    if spec.type != "int":
        return ""
    default = int(spec.default)
    values = sorted({max(spec.min or 1, default // 2), default, min(spec.max or default * 2,
                                                                     default * 2)})
    return ",".join(str(v) for v in values)


class SweepView(Viewer):
    """Define and run a parameter sweep; leaderboard, heatmap and the sweep's runs."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the sweep is validated, queued and read through.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    strategy = param.Selector(default=None, objects=[], doc="Strategy template to sweep.")

    bar_type = param.Selector(default=None, objects=[], label="Bar type", doc="Data to run on.")

    start = param.CalendarDate(default=None, allow_None=True, doc="First day (UTC).")

    end = param.CalendarDate(default=None, allow_None=True, doc="Last day (UTC), included.")

    random_draws = param.Integer(default=0, bounds=(0, None), label="Random draws", doc="""
        Run this many random draws from the grid instead of all of it (0: the whole grid).""")

    constraints = param.String(default="", label="Extra constraints", doc="""
        Skip combinations that break these, separated by ';', e.g. fast_ema_period<30. The
        template's own constraints (such as fast < slow) always apply.""")

    runtime = param.Selector(default="local", objects=RUNTIMES, doc="""
        Where the runs execute: local worker processes, the Dask cluster the server is
        connected to, or Docker (once the engine image exists).""")

    submit = param.Event(label="Run sweep", doc="Validate and queue the sweep.")

    sweep_id = param.Selector(default=None, objects=[], allow_None=True, label="Sweep", doc="""
        The sweep on display.""")

    stop = param.Event(label="Stop sweep", doc="Cancel every unfinished run of the sweep.")

    metric = param.Selector(default="sharpe", objects=["sharpe"], doc="""
        Metric the leaderboard ranks by and the heatmap shows.""")

    x = param.Selector(default=None, objects=[], allow_None=True, label="Heatmap x", doc="""
        Parameter on the heatmap's x axis.""")

    y = param.Selector(default=None, objects=[], allow_None=True, label="Heatmap y", doc="""
        Parameter on the heatmap's y axis.""")

    best_run = param.String(default=None, allow_None=True, doc="""
        The best completed run by the metric (read-only).""")

    message = param.String(default="", doc="Last outcome shown to the user (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("SweepView needs a workbench (services.Workbench.open()).")
        self._series = {}
        self._values = None  # a Parameterized with one text field per sweepable parameter
        self._values_box = pn.Column(sizing_mode="stretch_width")
        self._alert = pn.pane.Alert("", alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._progress = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width",
                                                bar_color="primary")
        self._best = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._leaderboard = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, pagination="local", page_size=10,
            sizing_mode="stretch_width", layout="fit_data_stretch",
            formatters={"open": {"type": "html"}})
        # Replaced whole on every update: swapping a live plot's object in place left the
        # browser with references to models the server had dropped.
        self._heatmap = pn.Column(sizing_mode="stretch_width", height=380)
        self._queue = RunQueue(workbench=self.workbench, sweep_id="", principal=self.principal)
        self._stop_button = pn.widgets.Button.from_param(self.param.stop, color="danger",
                                                         width=120)
        self._stop_note = reason_note()
        self._completed_seen = None
        self._start_picker = pn.widgets.DatePicker.from_param(self.param.start, name="Start (UTC)")
        self._end_picker = pn.widgets.DatePicker.from_param(self.param.end, name="End (UTC)")
        self._load_choices()
        self._live = self.workbench.live.start()
        self._load_sweeps()
        self._layout = self._build_layout()
        # Progress from the process-level live state: no polling of the database per tab.
        follow(self._live, ["sweeps"], self._on_live)

    def _build_layout(self):
        may_submit = permission(self.workbench, self.principal, "sweep.submit")
        submit = pn.widgets.Button.from_param(self.param.submit, color="primary",
                                              sizing_mode="stretch_width")
        restrict(submit, *may_submit)
        form = pn.Card(
            pn.widgets.Select.from_param(self.param.strategy, sizing_mode="stretch_width"),
            pn.widgets.Select.from_param(self.param.bar_type, sizing_mode="stretch_width"),
            pn.Row(self._start_picker, self._end_picker, sizing_mode="stretch_width"),
            pn.pane.Markdown("**Values to try** per parameter: a list (`5,10,20`) or a range "
                             "`LOW..HIGH:STEP`; leave empty to keep the default.",
                             sizing_mode="stretch_width"),
            self._values_box,
            pn.widgets.IntInput.from_param(self.param.random_draws, start=None, end=None),
            pn.widgets.TextInput.from_param(self.param.constraints,
                                            placeholder="e.g. fast_ema_period<30"),
            pn.widgets.Select.from_param(self.param.runtime),
            submit, reason_note(may_submit),
            self._alert,
            title="New sweep", collapsible=False, width=380,
        )
        results = pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.param.sweep_id, width=320),
                   self._stop_button,
                   pn.widgets.Select.from_param(self.param.metric, width=200)),
            self._stop_note, self._summary, self._progress, self._best,
            pn.pane.Markdown("### Leaderboard"), self._leaderboard,
            pn.pane.Markdown("### Heatmap"),
            pn.Row(pn.widgets.Select.from_param(self.param.x),
                   pn.widgets.Select.from_param(self.param.y)),
            self._heatmap,
            pn.pane.Markdown("### Runs"), self._queue,
            sizing_mode="stretch_width",
        )
        return pn.Row(form, results, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    # -- the form -----------------------------------------------------------------------------
    def _load_choices(self) -> None:
        try:
            names = self.workbench.templates.strategy_names()
            self._series = {s.bar_type: s for s in self.workbench.catalog.backtestable()}
        except WorkbenchError as e:
            self._show(f"Cannot load templates or catalog: {e}", "danger")
            return
        self.param.strategy.objects = names
        self.param.bar_type.objects = list(self._series)
        with param.parameterized.discard_events(self):
            if names and self.strategy not in names:
                self.strategy = "ema_cross" if "ema_cross" in names else names[0]
            if self._series and self.bar_type not in self._series:
                self.bar_type = next(iter(self._series))
        self._on_bar_type()
        self._on_strategy()

    @param.depends("strategy", watch=True)
    def _on_strategy(self) -> None:
        try:
            template = self.workbench.templates.strategy(self.strategy)
        except WorkbenchError as e:
            self._values, self._values_box.objects = None, []
            self._show(f"Template **{self.strategy}** cannot be used:\n\n{e}", "danger")
            return
        sweepable = {k: s for k, s in template.parameters.items() if s.type in SWEEPABLE}
        fields = {name: param.String(default=suggested_values(spec), label=name, doc=spec.help)
                  for name, spec in sweepable.items()}
        self._values = type(f"{template.name}_values", (param.Parameterized,), fields)()
        self._values_box.objects = [
            pn.widgets.TextInput.from_param(self._values.param[name], placeholder=(
                f"default {spec.default}" + (f"; {spec.min}..{spec.max}" if spec.min is not None
                                             else "")), sizing_mode="stretch_width")
            for name, spec in sweepable.items()]

    @param.depends("bar_type", watch=True)
    def _on_bar_type(self) -> None:
        series = self._series.get(self.bar_type)
        if series is None:
            return
        first, last = series.first.date(), series.last.date()
        for picker in (self._start_picker, self._end_picker):
            picker.start, picker.end = first, last
        # Default slice: the last week of data, so a sweep of a few runs takes seconds each.
        self.end = last
        self.start = max(first, last - dt.timedelta(days=7))

    def spec(self) -> SweepSpec:
        """The SweepSpec the form describes."""
        grid = {name: [text] for name, text in (self._values.param.values().items()
                                                 if self._values else [])
                if name != "name" and text.strip()}
        series = self._series.get(self.bar_type)
        end = (self.end + dt.timedelta(days=1)).isoformat() if self.end else None
        if self.end and series is not None and self.end >= series.last.date():
            end = None  # up to the last bar
        return SweepSpec(
            strategy=self.strategy, bar_type=self.bar_type, grid=grid,
            start=self.start.isoformat() if self.start else None, end=end,
            random_draws=self.random_draws or None,
            constraints=tuple(c.strip() for c in self.constraints.split(";") if c.strip()),
        )

    @param.depends("submit", watch=True)
    def _on_submit(self) -> None:
        try:
            spec, runtime = self.spec(), self.runtime  # what the form says now
        except WorkbenchError as e:
            self._show(f"Could not start the sweep: {e}", "danger")
            return
        self._show("Checking and queueing the sweep…", "info")

        def submit():
            sweep_id = self.workbench.backtests.submit_sweep(spec, principal=self.principal,
                                                             runtime=runtime)
            return sweep_id, len(self.workbench.backtests.sweep(sweep_id).runs)

        def submitted(outcome) -> None:
            if isinstance(outcome, ValidationError):
                problems = "\n".join(f"- {p}" for p in outcome.problems) or str(outcome)
                self._show(f"**{outcome.summary}.** Fix these and run again:\n\n{problems}",
                           "danger")
                return
            if isinstance(outcome, Exception):
                if not isinstance(outcome, WorkbenchError):
                    log.error("submitting a sweep failed", exc_info=outcome)
                self._show(f"Could not start the sweep: {outcome}", "danger")
                return
            sweep_id, runs = outcome
            self._show(f"Sweep `{sweep_id}` submitted: {runs} runs.", "info")
            self._load_sweeps()
            self.sweep_id = sweep_id

        run_off_loop(submit, submitted, busy=self._layout)

    # -- the sweep on display -----------------------------------------------------------------
    def _load_sweeps(self) -> None:
        try:
            ids = [s.sweep_id for s in self.workbench.backtests.list_sweeps()]
        except WorkbenchError as e:
            self._show(f"Cannot list sweeps: {e}", "danger")
            return
        current = self.sweep_id
        self.param.sweep_id.objects = ids
        if current in ids:
            self.sweep_id = current
        elif ids:
            self.sweep_id = ids[0]

    @param.depends("sweep_id", watch=True)
    def _on_sweep(self) -> None:
        self._queue.sweep_id = self.sweep_id or ""
        self._completed_seen = None
        if not self.sweep_id:
            return
        info = self.workbench.backtests.sweep(self.sweep_id)
        allowed, reason = permission(self.workbench, self.principal, "sweep.stop",
                                     owner=info.actor)
        self._stop_button.disabled = not allowed
        self._stop_note.object, self._stop_note.visible = reason, not allowed
        varied = list(info.spec.get("grid") or {})
        self.param.x.objects, self.param.y.objects = varied, varied
        with param.parameterized.discard_events(self):
            self.x = varied[0] if varied else None
            self.y = varied[1] if len(varied) > 1 else None
        self.poll()

    def _on_live(self) -> None:
        summary = next((s for s in self._live.sweeps if s.sweep_id == self.sweep_id), None)
        if summary is not None:
            self.poll(summary)

    def poll(self, info=None) -> None:
        """Show the sweep's progress (``info``: its summary from the live state; None: read it
        now), and the leaderboard and heatmap again when another run has finished."""
        if not self.sweep_id:
            self._summary.object = "No sweeps yet: define one on the left and run it."
            return
        if info is None:
            try:
                info = next((s for s in self.workbench.backtests.repository.sweep_summaries(
                    limit=1000) if s.sweep_id == self.sweep_id), None)
            except WorkbenchError as e:
                self._show(str(e), "danger")
                return
        if info is None:
            return
        final = info.count("Completed", "Failed", "Cancelled")
        self._progress.value = round(info.progress * 100)
        self._summary.object = (
            f"**{info.status}** — {info.strategy} on `{info.bar_type}`, {info.runtime} runtime: "
            f"{final}/{info.runs} done ({info.count('Completed')} completed, "
            f"{info.count('Failed')} failed, {info.count('Cancelled')} cancelled), "
            f"{info.count('Running')} running, {info.count('Paused')} paused, "
            f"{info.count('Queued')} queued")
        if final != self._completed_seen:
            self._completed_seen = final
            self._show_results()

    @param.depends("metric", "x", "y", watch=True)
    def _show_results(self) -> None:
        """Rank the runs and draw the heatmap off the event loop (a sweep's statistics files
        can be thousands)."""
        sweep_id, metric, x, y = self.sweep_id, self.metric, self.x, self.y
        if not sweep_id:
            return
        backtests = self.workbench.backtests

        def rank():
            metrics = backtests.sweep_metrics(sweep_id)
            chosen = metric if metric in metrics else (metrics[0] if metrics else metric)
            return metrics, chosen, backtests.leaderboard(sweep_id, chosen), \
                self._heatmap_plot(sweep_id, chosen, x, y)

        def ranked(outcome) -> None:
            if sweep_id != self.sweep_id:
                return
            if isinstance(outcome, Exception):
                self._show(str(outcome), "danger")
                return
            metrics, chosen, board, plot = outcome
            if metrics != self.param.metric.objects:
                self.param.metric.objects = metrics
            with param.parameterized.discard_events(self):
                self.metric = chosen
            self._show_board(board, plot)

        run_off_loop(rank, ranked, busy=self._leaderboard)

    def _show_board(self, board, plot) -> None:
        ranked = board[(board["status"] == "Completed") & board[self.metric].notna()]
        self.best_run = ranked["run_id"].iloc[0] if len(ranked) else None
        if self.best_run:
            value = format_statistic(self.metric, ranked[self.metric].iloc[0])
            self._best.object = (f"Best by {self.metric}: `{self.best_run}` ({value}) — "
                                 f"[Open the best run](./results?run={self.best_run})")
        else:
            self._best.object = ""
        shown = board.copy()
        shown.insert(0, "open", [f'<a href="./results?run={r}">open</a>' if s == "Completed"
                                 else "" for r, s in zip(shown["run_id"], shown["status"],
                                                         strict=True)])
        self._leaderboard.value = shown.astype(object).where(shown.notna(), None)
        self._heatmap.objects = [pn.pane.HoloViews(plot, sizing_mode="stretch_width",
                                                   height=370)]

    def _heatmap_plot(self, sweep_id: str, metric: str, x: str | None, y: str | None):
        if not (x and y) or x == y:
            return hv.Div("<p>Vary two parameters to see a heatmap.</p>")
        try:
            grid = self.workbench.backtests.heatmap(sweep_id, metric, x, y)
        except WorkbenchError as e:
            return hv.Div(f"<p>{html.escape(str(e))}</p>")
        if grid.empty:
            return hv.Div("<p>No completed runs yet.</p>")
        cells = grid.stack().rename(metric).reset_index()
        cells[[x, y]] = cells[[x, y]].astype(str)
        return hv.HeatMap(cells, kdims=[x, y], vdims=[metric]).opts(
            cmap="RdYlGn", colorbar=True, tools=["hover"], responsive=True, height=360,
            title=f"{metric} by {x} and {y}")

    @param.depends("stop", watch=True)
    def _on_stop(self) -> None:
        if not self.sweep_id:
            return
        try:
            info = self.workbench.backtests.stop_sweep(self.sweep_id, principal=self.principal)
        except WorkbenchError as e:
            self._show(f"Could not stop the sweep: {e}", "danger")
            return
        self._show(f"Sweep `{info.sweep_id}` stopped: {info.count('Cancelled')} runs cancelled.",
                   "warning")
        self.poll()

    def _show(self, text: str, kind: str) -> None:
        self.message = text
        self._alert.object = text
        self._alert.alert_type = kind
        self._alert.visible = bool(text)

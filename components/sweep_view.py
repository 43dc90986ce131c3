"""Parameter sweeps and walk-forward analyses: choose the values to try, run them, rank the runs
by a metric (or by its neighbourhood-smoothed value), see how far the best can be trusted (PSR,
deflated Sharpe ratio, PBO, minimum track record) and how stable the metric is over the grid,
open any run, stop the sweep. In walk-forward mode the same grid is optimised fold by fold and
the WalkForwardView shows the folds."""

from __future__ import annotations

import itertools
import logging
import time

import pandas as pd
import panel as pn
import param
from bokeh.layouts import row
from panel.viewable import Viewer

from components import charts
from components.confirm import ConfirmAction
from components.formats import fixed_cell, percent_cell, ratio_cell
from components.live import follow
from components.offloop import run_off_loop, served
from components.permissions import permission, reason_note, restrict
from components.run_form import RunForm, refusal
from components.run_queue import RunQueue
from components.runtime_choice import RuntimeChoice
from components.walk_forward_view import WalkForwardView
from services import ValidationError, Workbench, WorkbenchError
from services.backtest.metric_labels import (
    METRIC_KEYS,
    RANKABLE_METRICS,
    format_statistic,
    metric_kind,
    metric_label,
)
from services.backtest.sweep import SweepSpec
from services.backtest.sweep_statistics import SweepStatistics
from services.backtest.walk_forward import WalkForwardSpec
from services.identity.principal import Principal
from services.research.overfitting import DEFAULT_PARTITIONS, MAX_PARTITIONS

log = logging.getLogger(__name__)

MODES = ["Sweep", "Walk-forward"]
# The leaderboard's orderings (services.backtest.analysis.RANK_BY) as the menu names them.
RANKINGS = {"Metric": "metric", "Smoothed": "smoothed"}
LEADERBOARD_PAGE = 10
# While a sweep runs, a finished run ranks it again at most this often: every ranking reads
# and scores the whole sweep, and one per finished run kept a thread busy with it, holding
# the interpreter lock the event loop (and every other session) waits for.
RERANK_S = 5.0
NO_SWEEP = ("No sweeps yet: choose the values to try on the left and press **Run sweep**; its "
            "leaderboard, overfitting statistics and heatmaps show here.")


def board_formats(board: pd.DataFrame, metric: str,
                  parameter_titles: dict[str, str] | None = None) -> tuple[dict, dict]:
    """Titles and browser-side number formats of the leaderboard's columns: each metric read
    as the results cards read it (percent, ratio, money, count); the parameters as typed,
    under their titles ("Fast EMA period")."""
    kinds = {"smoothed": metric_kind(metric), "worst_drop": metric_kind(metric), "psr": "pct"}
    cells = {"pct": percent_cell(2), "ratio": ratio_cell(), "money": fixed_cell(2),
             "int": fixed_cell(0)}
    formatters: dict = {"open": {"type": "html"}}
    titles = {"open": "", "run_id": "Run", "status": "Status", "psr": "PSR",
              "smoothed": f"Smoothed {metric_label(metric)}",
              "worst_drop": f"Worst drop of {metric_label(metric)}", **(parameter_titles or {})}
    for column in board.columns:
        kind = kinds.get(column) or (metric_kind(column) if column in METRIC_KEYS else None)
        if kind in cells:
            formatters[column] = cells[kind]
        if column in METRIC_KEYS:
            titles[column] = metric_label(column)
    return titles, formatters


def statistics_markdown(statistics: SweepStatistics) -> str:
    """The overfitting statistics panel: the trial count, each figure's reading, the notes."""
    lines = [f"**{statistics.trials:,} trials** (completed runs of {statistics.runs:,}); "
             f"PBO with {statistics.partitions} partitions."]
    for name, figure in (("Deflated Sharpe ratio", statistics.deflated_sharpe),
                         ("Probability of backtest overfitting", statistics.pbo),
                         ("Minimum track record", statistics.min_track_record)):
        if figure is not None:
            lines.append(f"- **{name}**: {figure.reading}")
    lines += [f"- {note}" for note in statistics.notes]
    return "\n".join(lines)


class SweepView(Viewer):
    """Define and run a parameter sweep or a walk-forward analysis; leaderboard, overfitting
    statistics, parameter stability and the sweep's runs."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the sweep is validated, queued and read through.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    mode = param.Selector(default="Sweep", objects=MODES, doc="""
        Sweep: run every combination on the date range. Walk-forward: optimise the grid on
        each train window and test the choice on the window after it.""")

    random_draws = param.Integer(default=0, bounds=(0, None), label="Random draws", doc="""
        Run this many random draws from the grid instead of all of it (0: the whole grid).""")

    constraints = param.String(default="", label="Extra constraints", doc="""
        Skip combinations that break these, separated by ';', e.g. fast_ema_period<30. The
        template's own constraints (such as fast < slow) always apply.""")

    train_days = param.Number(default=14.0, bounds=(0, None), label="Train days", doc="""
        Walk-forward: length of each train window.""")

    test_days = param.Number(default=7.0, bounds=(0, None), label="Test days", doc="""
        Walk-forward: length of each test window.""")

    step_days = param.Number(default=0.0, bounds=(0, None), label="Step days", doc="""
        Walk-forward: days between the starts of consecutive folds (0: the test length).""")

    anchored = param.Boolean(default=False, doc="""
        Walk-forward: every train window starts at the first day and grows (else rolling).""")

    choose_by = param.Selector(default="sharpe",
                               objects={metric_label(m): m for m in RANKABLE_METRICS},
                               label="Choose by", doc="""
        Walk-forward: each fold chooses its train sweep's best run by this metric.""")

    submit = param.Event(label="Run", doc="Validate and queue the sweep or the walk-forward.")

    sweep_id = param.Selector(default=None, objects=[], allow_None=True, label="Sweep", doc="""
        The sweep on display.""")

    stop = param.Event(label="Stop sweep", doc="Cancel every unfinished run of the sweep.")

    metric = param.Selector(default="sharpe", objects={metric_label("sharpe"): "sharpe"}, doc="""
        Metric the leaderboard ranks by and the heatmaps show.""")

    rank_by = param.Selector(default="metric", objects=RANKINGS, label="Rank by", doc="""
        metric: the metric itself; smoothed: the mean of a point and its grid neighbours,
        which ranks a plateau above a lone spike.""")

    partitions = param.Integer(default=DEFAULT_PARTITIONS, bounds=(2, MAX_PARTITIONS), doc="""
        Partitions of the PBO's combinatorially symmetric cross-validation (even).""")

    x = param.Selector(default=None, objects=[], allow_None=True, label="Heatmap x", doc="""
        Parameter on the heatmaps' x axis.""")

    y = param.Selector(default=None, objects=[], allow_None=True, label="Heatmap y", doc="""
        Parameter on the heatmaps' y axis.""")

    best_run = param.String(default=None, allow_None=True, doc="""
        The best completed run by the ranking (read-only).""")

    statistics = param.ClassSelector(class_=SweepStatistics, default=None, allow_None=True,
                                     doc="The sweep's overfitting statistics (read-only).")

    message = param.String(default="", doc="Last outcome shown to the user (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("SweepView needs a workbench (services.Workbench.open()).")
        self.form = RunForm(workbench=self.workbench, grid=True, default_days=7)
        self.runtime_choice = RuntimeChoice(workbench=self.workbench, principal=self.principal)
        self._alert = pn.pane.Alert("", alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._progress = pn.indicators.Progress(value=0, max=100, sizing_mode="stretch_width",
                                                bar_color="primary")
        self._best = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._statistics = pn.pane.Markdown("", sizing_mode="stretch_width")
        # Remote pagination: the server holds the ranked frame, the browser gets one page.
        self._leaderboard = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, pagination="remote",
            page_size=LEADERBOARD_PAGE, sizing_mode="stretch_width", layout="fit_data_stretch",
            formatters={"open": {"type": "html"}})
        self._stability = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._heatmap = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._queue = RunQueue(workbench=self.workbench, sweep_id="", principal=self.principal)
        self._walk_forwards = WalkForwardView(workbench=self.workbench, principal=self.principal)
        # Enabled only for a sweep that still has runs to stop (see poll).
        self._stop_button = pn.widgets.Button.from_param(self.param.stop, color="danger",
                                                         width=110, disabled=True)
        self._stop_note = reason_note()
        self.confirmation = ConfirmAction()
        self._completed_seen = None
        self._rank_due = False  # runs finished since the last ranking
        self._ranked_at = float("-inf")  # time.monotonic() of the last ranking started
        self._may_stop = False  # the user may stop the sweep shown
        self._ranking = False  # a ranking is being computed off the loop
        self._rank_again = False  # ... and another was asked for meanwhile
        # Outside a server the live state's thread ranks too: only the ranking started last
        # is shown, never an older one that happens to finish after it.
        self._rankings = itertools.count(1)
        self._latest_ranking = 0
        if self.form.message:
            self._show(self.form.message, self.form.message_kind)
        self.form.param.watch(lambda _: self._show(self.form.message, self.form.message_kind),
                              "message")
        self._live = self.workbench.live.start()
        self._layout = self._build_layout()
        self._load_sweeps()
        self._on_sweep()
        self._on_mode()
        self._on_problems()
        # Progress from the process-level live state: no polling of the database per tab.
        follow(self._live, ["sweeps"], self._on_live)

    def _build_layout(self):
        may_submit = permission(self.workbench, self.principal, "sweep.submit")
        submit = self._submit_button = pn.widgets.Button.from_param(
            self.param.submit, color="primary", sizing_mode="stretch_width")
        restrict(submit, *may_submit)
        self._may_submit = may_submit
        self._fix_note = pn.pane.Markdown("", visible=False, sizing_mode="stretch_width",
                                          css_classes=["form-problems"])
        self.form.param.watch(self._on_problems, "problems")
        self._folds_form = pn.Column(
            pn.Row(pn.widgets.FloatInput.from_param(self.param.train_days, width=105),
                   pn.widgets.FloatInput.from_param(self.param.test_days, width=105),
                   pn.widgets.FloatInput.from_param(self.param.step_days, width=105)),
            pn.widgets.Checkbox.from_param(self.param.anchored),
            pn.widgets.Select.from_param(self.param.choose_by),
            sizing_mode="stretch_width")
        form = pn.Card(
            pn.widgets.RadioButtonGroup.from_param(self.param.mode, sizing_mode="stretch_width"),
            self.form.strategy_card, self.form.data_card, self._folds_form, self.form.venue_card,
            pn.widgets.IntInput.from_param(self.param.random_draws, start=None, end=None),
            pn.widgets.TextInput.from_param(self.param.constraints,
                                            placeholder="e.g. fast_ema_period<30"),
            self.runtime_choice,
            submit, self._fix_note, reason_note(may_submit),
            self._alert,
            title="New sweep", collapsible=False, width=380,
        )
        self._axis_menus = {axis: pn.widgets.Select.from_param(self.param[axis])
                            for axis in ("x", "y")}
        # Shown once there is a sweep: before, empty tables and menus only puzzle.
        self._analysis = pn.Column(
            self._progress, self._best,
            pn.pane.Markdown("### Overfitting statistics"),
            pn.widgets.IntInput.from_param(self.param.partitions, width=150),
            self._statistics,
            pn.pane.Markdown("### Leaderboard"), self._leaderboard,
            pn.pane.Markdown("### Parameter stability"),
            pn.Row(self._axis_menus["x"], self._axis_menus["y"]),
            self._stability, self._heatmap,
            pn.pane.Markdown("### Runs"), self._queue,
            visible=False, sizing_mode="stretch_width")
        self._sweep_results = pn.Column(
            pn.FlexBox(pn.widgets.Select.from_param(self.param.sweep_id, width=270),
                       self._stop_button,
                       pn.widgets.Select.from_param(self.param.metric, width=160),
                       pn.widgets.Select.from_param(self.param.rank_by, width=130),
                       align_items="flex-end", sizing_mode="stretch_width"),
            self.confirmation, self._stop_note, self._summary, self._analysis,
            sizing_mode="stretch_width",
        )
        self._form = form
        # A Viewer has no visible parameter: the mode shows or hides this column.
        self._walk_forward_section = pn.Column(self._walk_forwards, visible=False,
                                               sizing_mode="stretch_width")
        return pn.Row(form, pn.Column(self._sweep_results, self._walk_forward_section,
                                      sizing_mode="stretch_width"), sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    def _on_problems(self, *_events) -> None:
        """Run waits until every field is valid; the note says what to fix."""
        problems = self.form.problems
        self._submit_button.disabled = not self._may_submit[0] or bool(problems)
        self._fix_note.object = "\n".join(f"- {p}" for p in problems)
        self._fix_note.visible = bool(problems)

    @param.depends("mode", watch=True)
    def _on_mode(self) -> None:
        walk_forward = self.mode == "Walk-forward"
        self._folds_form.visible = walk_forward
        self._walk_forward_section.visible = walk_forward
        self._sweep_results.visible = not walk_forward
        self._form.title = "New walk-forward analysis" if walk_forward else "New sweep"
        self._submit_button.label = "Run walk-forward" if walk_forward else "Run sweep"

    # -- the form -----------------------------------------------------------------------------
    def _constraints(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.constraints.split(";") if c.strip())

    def spec(self) -> SweepSpec:
        """The SweepSpec the form describes."""
        form = self.form
        start, end = form.time_range()
        return SweepSpec(strategy=form.strategy, bar_type=form.bar_type, grid=form.grid_values(),
                         start=start, end=end, random_draws=self.random_draws or None,
                         constraints=self._constraints(), venue=form.venue())

    def walk_forward_spec(self) -> WalkForwardSpec:
        """The WalkForwardSpec the form describes (in walk-forward mode)."""
        form = self.form
        start, end = form.time_range()
        return WalkForwardSpec(
            strategy=form.strategy, bar_type=form.bar_type, grid=form.grid_values(),
            start=start, end=end, train_days=self.train_days, test_days=self.test_days,
            step_days=self.step_days or None, anchored=self.anchored, metric=self.choose_by,
            random_draws=self.random_draws or None, constraints=self._constraints(),
            venue=form.venue())

    @param.depends("submit", watch=True)
    def _on_submit(self) -> None:
        walk_forward = self.mode == "Walk-forward"
        try:  # what the form says now
            spec = self.walk_forward_spec() if walk_forward else self.spec()
            runtime = self.runtime_choice.runtime
        except ValidationError as e:
            self._show(refusal(e), "danger")
            return
        except WorkbenchError as e:
            self._show(f"Could not start: {e}", "danger")
            return
        what = "walk-forward analysis" if walk_forward else "sweep"
        self._show(f"Checking and queueing the {what}…", "info")
        backtests, walk_forwards = self.workbench.backtests, self.workbench.walk_forwards

        def submit():
            if walk_forward:
                walk_forward_id = walk_forwards.submit(spec, principal=self.principal,
                                                       runtime=runtime)
                info = walk_forwards.get(walk_forward_id)
                return walk_forward_id, f"{len(info.folds)} folds x {info.folds[0].trials} " \
                                        "combinations", None
            sweep_id = backtests.submit_sweep(spec, principal=self.principal, runtime=runtime)
            # The sweeps to choose from, read here: the live state may not count the new one yet.
            return (sweep_id, f"{backtests.repository.sweep_summary(sweep_id).runs} runs",
                    backtests.repository.sweep_summaries())

        def submitted(outcome) -> None:
            if isinstance(outcome, ValidationError):
                self._show(refusal(outcome), "danger")
                return
            if isinstance(outcome, Exception):
                if not isinstance(outcome, WorkbenchError):
                    log.error("submitting a %s failed", what, exc_info=outcome)
                self._show(f"Could not start the {what}: {outcome}", "danger")
                return
            new_id, size, summaries = outcome
            self._show(f"{what.capitalize()} `{new_id}` submitted: {size}.", "info")
            if walk_forward:
                self._walk_forwards.show(new_id)
            else:
                self._load_sweeps(summaries)
                self.sweep_id = new_id

        run_off_loop(submit, submitted, busy=self._layout)

    # -- the sweep on display -----------------------------------------------------------------
    def _load_sweeps(self, summaries=None) -> None:
        """The sweeps to choose from: ``summaries``, else as the live state counts them (no
        runs loaded)."""
        if summaries is None:
            summaries = self._live.sweeps or self.workbench.backtests.repository.sweep_summaries()
        ids = [s.sweep_id for s in summaries]
        if ids == self.param.sweep_id.objects:
            return
        current = self.sweep_id
        self.param.sweep_id.objects = ids
        if current in ids:
            self.sweep_id = current
        elif ids:
            self.sweep_id = ids[0]

    def _summary_of(self, sweep_id: str):
        found = next((s for s in self._live.sweeps if s.sweep_id == sweep_id), None)
        return found or self.workbench.backtests.repository.sweep_summary(sweep_id)

    @param.depends("sweep_id", watch=True)
    def _on_sweep(self) -> None:
        self._queue.sweep_id = self.sweep_id or ""
        self._completed_seen = None
        self._ranked_at = float("-inf")  # another sweep: rank it at once
        self._stop_button.disabled = True
        self._analysis.visible = bool(self.sweep_id)
        if not self.sweep_id:
            self._summary.object = NO_SWEEP
            return
        try:
            summary = self._summary_of(self.sweep_id)
        except WorkbenchError as e:
            self._show(str(e), "danger")
            return
        allowed, reason = permission(self.workbench, self.principal, "sweep.stop",
                                     owner=summary.actor)
        self._may_stop = allowed
        self._stop_note.object, self._stop_note.visible = reason, not allowed
        varied = list((summary.spec or {}).get("grid") or {})
        self.param.x.objects, self.param.y.objects = varied, varied
        with param.parameterized.discard_events(self):  # poll() ranks once, below
            self.x = varied[0] if varied else None
            self.y = varied[1] if len(varied) > 1 else None
        # The menus missed those discarded events: left on the old value, the first render
        # reset the axes to None (and ranked again mid-render: KeyError in Tabulator in a
        # notebook). The same value back from a menu changes nothing.
        for axis, menu in self._axis_menus.items():
            menu.value = getattr(self, axis)
        self.poll(summary)

    def _on_live(self) -> None:
        self._load_sweeps()
        summary = next((s for s in self._live.sweeps if s.sweep_id == self.sweep_id), None)
        if summary is not None:
            self.poll(summary)

    def poll(self, info=None) -> None:
        """Show the sweep's progress (``info``: its summary from the live state; None: read it
        now), and rank it again when another run has finished."""
        if not self.sweep_id:
            self._summary.object = NO_SWEEP
            return
        if info is None:
            try:
                info = self.workbench.backtests.repository.sweep_summary(self.sweep_id)
            except WorkbenchError as e:
                self._show(str(e), "danger")
                return
        final = info.count("Completed", "Failed", "Cancelled")
        self._stop_button.disabled = not self._may_stop or final >= info.runs
        self._progress.value = round(info.progress * 100)
        self._summary.object = (
            f"**{info.status}** — {info.strategy} on `{info.bar_type}`, {info.runtime} runtime: "
            f"{final:,}/{info.runs:,} done ({info.count('Completed'):,} completed, "
            f"{info.count('Failed'):,} failed, {info.count('Cancelled'):,} cancelled), "
            f"{info.count('Running')} running, {info.count('Paused')} paused, "
            f"{info.count('Queued'):,} queued")
        if final != self._completed_seen:
            self._completed_seen = final
            self._rank_due = True
        if self._rank_due and (final >= info.runs
                               or time.monotonic() - self._ranked_at >= RERANK_S):
            self._rank_due = False
            self._show_results()

    @param.depends("metric", "rank_by", "partitions", "x", "y", watch=True)
    def _show_results(self) -> None:
        """Rank the runs, compute the statistics and draw the heatmaps off the event loop (a
        sweep's statistics files can be thousands); while one ranking runs, a later request
        waits for it and then runs once."""
        if not self.sweep_id:
            return
        if self._ranking and served():  # in a notebook the work is done before the call returns
            self._rank_again = True
            return
        sweep_id, metric, rank_by = self.sweep_id, self.metric, self.rank_by
        partitions, x, y = self.partitions, self.x, self.y
        backtests = self.workbench.backtests
        self._latest_ranking = ranking = next(self._rankings)
        self._ranked_at = time.monotonic()

        def rank():
            info = backtests.sweep(sweep_id)  # read once for every figure
            metrics = backtests.sweep_metrics(sweep_id, info=info)
            chosen = metric if metric in metrics else (metrics[0] if metrics else metric)
            try:
                board, note = backtests.leaderboard(sweep_id, chosen, rank_by, info=info), ""
            except ValidationError as e:  # no grid to smooth over: rank by the metric
                board, note = backtests.leaderboard(sweep_id, chosen, info=info), e.summary
            statistics = backtests.sweep_statistics(sweep_id, partitions, info=info)
            titles = self._parameter_titles(info.strategy)
            return (metrics, chosen, self._board_frame(board, statistics), note, statistics,
                    titles, *self._stability_view(sweep_id, info, chosen, x, y, titles))

        def ranked(outcome) -> None:
            self._ranking = False
            if self._rank_again:
                self._rank_again = False
                self._show_results()
            if sweep_id != self.sweep_id or ranking != self._latest_ranking:
                return
            if isinstance(outcome, Exception):
                if not isinstance(outcome, WorkbenchError):
                    log.error("ranking sweep %s failed", sweep_id, exc_info=outcome)
                self._show(str(outcome), "danger")
                return
            metrics, chosen, board, note, statistics, titles, reading, heatmaps = outcome
            if metrics != self.param.metric.objects:
                self.param.metric.objects = {metric_label(m): m for m in metrics}
            self._label_axes(titles)
            with param.parameterized.discard_events(self):
                self.metric = chosen
            self.statistics = statistics
            self._statistics.object = statistics_markdown(statistics)
            self._show_board(board, chosen, note, titles)
            self._stability.object = reading
            self._heatmap.object = heatmaps

        self._ranking = True
        run_off_loop(rank, ranked, busy=self._leaderboard)

    @staticmethod
    def _board_frame(board: pd.DataFrame, statistics: SweepStatistics) -> pd.DataFrame:
        """The leaderboard as shown: a link to each completed run, its status, the figures
        (the ranked one first) and PSR, the parameters, and the run id last, so the figures
        that matter fit the screen beside the form."""
        if board.empty:
            return board
        shown = board.copy()
        shown.insert(0, "open", [f'<a href="./results?run={r}">open</a>' if s == "Completed"
                                 else "" for r, s in zip(shown["run_id"], shown["status"],
                                                         strict=True)])
        shown["psr"] = [statistics.psr[r].value if r in statistics.psr else None
                        for r in shown["run_id"]]
        figures = [c for c in shown.columns
                   if c in METRIC_KEYS or c in ("smoothed", "worst_drop", "psr")]
        parameters = [c for c in shown.columns
                      if c not in figures and c not in ("open", "status", "run_id")]
        shown = shown[["open", "status", *figures, *parameters, "run_id"]]
        return shown.astype(object).where(shown.notna(), None)

    def _label_axes(self, titles: dict[str, str]) -> None:
        """The heatmap-axis menus read the parameters' titles ("Fast EMA period"), known once
        the template has been read off the loop."""
        labelled = {titles.get(name, name): name for name in self.param.x.objects}
        if labelled != (self.param.x.names or {}):
            self.param.x.objects, self.param.y.objects = labelled, dict(labelled)

    def _stability_view(self, sweep_id: str, info, metric: str, x: str | None, y: str | None,
                        titles: dict[str, str]):
        """The stability reading and the heatmaps of the metric and of its worst drop to a
        neighbour over ``x`` and ``y`` (Bokeh models, built off the loop), axes by title."""
        if not (x and y) or x == y:
            return "Vary two parameters (and choose them as x and y) to see the heatmaps.", None
        backtests = self.workbench.backtests
        try:
            grid = backtests.heatmap(sweep_id, metric, x, y, info=info)
        except WorkbenchError as e:
            return str(e), None
        if grid.empty:
            return "No completed runs yet.", None
        x_title, y_title, label = titles.get(x, x), titles.get(y, y), metric_label(metric)

        def titled(cells: pd.DataFrame) -> pd.DataFrame:
            return cells.rename_axis(index=y_title, columns=x_title)

        figures = [charts.grid_heatmap(titled(grid), f"{label} by {x_title} and {y_title}",
                                       label)]
        try:
            stability = backtests.stability(sweep_id, metric, info=info)
            figures.append(charts.grid_heatmap(
                titled(stability.heatmap("worst_drop", x, y)),
                f"Local stability: worst drop of {label} to a neighbour", "worst drop",
                reverse=True))
            reading = stability.reading
        except WorkbenchError as e:
            reading = f"No local stability: {e}"
        return reading, row(*figures, sizing_mode="stretch_width")

    def _show_board(self, board: pd.DataFrame, metric: str, note: str,
                    parameter_titles: dict[str, str]) -> None:
        if board.empty:
            self.best_run, self._best.object = None, ""
            self._leaderboard.value = board
            return
        key = "smoothed" if "smoothed" in board.columns else metric
        ranked = board[(board["status"] == "Completed") & board[key].notna()]
        self.best_run = ranked["run_id"].iloc[0] if len(ranked) else None
        if self.best_run:
            value = format_statistic(metric, ranked[metric].iloc[0])
            label = metric_label(metric)
            by = f"smoothed {label}" if key == "smoothed" else label
            self._best.object = (f"Best by {by}: `{self.best_run}` ({label} {value}) — "
                                 f"[Open the best run](./results?run={self.best_run})"
                                 + (f"\n\n{note}" if note else ""))
        else:
            self._best.object = note
        self._leaderboard.titles, self._leaderboard.formatters = board_formats(
            board, metric, parameter_titles)
        self._leaderboard.value = board

    def _parameter_titles(self, strategy: str) -> dict[str, str]:
        """A strategy's parameters by title, as the form labels them (reads its template)."""
        try:
            return {name: spec.title for name, spec in
                    self.workbench.templates.strategy(strategy).parameters.items()}
        except WorkbenchError:  # a template that no longer loads: its parameters' names
            return {}

    @param.depends("stop", watch=True)
    def _on_stop(self) -> None:
        """Ask first: stopping cancels every unfinished run of the sweep."""
        if not self.sweep_id:
            return
        sweep_id = self.sweep_id
        self.confirmation.ask(
            f"Stop sweep `{sweep_id}`? Every queued, running or paused run of it is cancelled; "
            "completed runs stay.", lambda _typed: self._stop(sweep_id), label="Stop sweep",
            danger=True, dismiss="Keep it running")

    def _stop(self, sweep_id: str) -> None:
        backtests = self.workbench.backtests

        def stopped(outcome) -> None:
            if isinstance(outcome, Exception):
                self._show(f"Could not stop the sweep: {outcome}", "danger")
                return
            self._show(f"Sweep `{sweep_id}` stopped: {outcome.count('Cancelled'):,} runs "
                       "cancelled.", "warning")
            self.poll()

        def stop():
            backtests.stop_sweep(sweep_id, principal=self.principal)
            return backtests.repository.sweep_summary(sweep_id)

        run_off_loop(stop, stopped, busy=self._stop_button)

    def _show(self, text: str, kind: str) -> None:
        self.message = text
        self._alert.object = text
        self._alert.alert_type = kind
        self._alert.visible = bool(text)

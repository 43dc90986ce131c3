"""How far one run can be trusted: the Monte Carlo of its trades (bands around its equity,
distributions of final return, max and longest drawdown) and its probabilistic Sharpe ratio."""

from __future__ import annotations

import logging

import panel as pn
import param
from panel.viewable import Viewer

from components import charts
from components.offloop import run_off_loop
from services import WorkbenchError
from services.backtest.metric_labels import format_statistic
from services.backtest.results import RunResults
from services.backtest.robustness import RunRobustness, run_robustness
from services.research.monte_carlo import DEFAULT_PATHS, MAX_PATHS, METHODS

log = logging.getLogger(__name__)


def robustness_markdown(figures: RunRobustness) -> str:
    """The readings and the distribution table, as markdown."""
    lines = []
    mc = figures.monte_carlo
    if mc is not None:
        lines.append(mc.reading)
        rows = []
        for label, key, dist in (("Final return", "total_return", mc.final_return),
                                 ("Max drawdown", "max_drawdown", mc.max_drawdown),
                                 ("Longest drawdown (trades)", "num_trades",
                                  mc.longest_drawdown)):
            cells = " | ".join(format_statistic(key, v)
                               for v in (dist.actual, dist.p5, dist.p50, dist.p95))
            rows.append(f"| {label} | {cells} |")
        lines.append("| | This run | 5 % | 50 % | 95 % |\n|---|---:|---:|---:|---:|\n"
                     + "\n".join(rows))
    for figure in (figures.psr, figures.min_track_record):
        if figure is not None:
            lines.append(figure.reading)
    lines += list(figures.notes)
    return "\n\n".join(lines)


class RobustnessPanel(Viewer):
    """Monte Carlo of a run's trades and its PSR, computed off the event loop."""

    results = param.ClassSelector(class_=RunResults, default=None, allow_None=True, doc="""
        The run to assess (set by the ResultsViewer when its tab is opened).""")

    method = param.Selector(default="bootstrap", objects=list(METHODS), doc="""
        bootstrap: draw the trades with replacement (other mixes of the same strategy);
        shuffle: the same trades in another order (same final return, other drawdowns).""")

    paths = param.Integer(default=DEFAULT_PATHS, bounds=(1, MAX_PATHS), doc="""
        Number of simulated paths.""")

    seed = param.Integer(default=0, bounds=(0, None), doc="""
        Seed of the simulation: the same seed gives the same paths.""")

    figures = param.ClassSelector(class_=RunRobustness, default=None, allow_None=True, doc="""
        The figures on display (read-only).""")

    message = param.String(default="", doc="Why nothing can be shown, if so.")

    def __init__(self, **params):
        super().__init__(**params)
        self._text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._charts = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.param.method, width=140),
                   pn.widgets.IntInput.from_param(self.param.paths, width=120),
                   pn.widgets.IntInput.from_param(self.param.seed, width=100)),
            self._text, self._charts, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    @param.depends("results", "method", "paths", "seed", watch=True)
    def _compute(self) -> None:
        results, method, paths, seed = self.results, self.method, self.paths, self.seed
        if results is None:
            self.figures, self._charts.object, self._text.object = None, None, ""
            return
        currency = results.summary.get("currency", "")

        def work():
            figures = run_robustness(results, method, paths, seed)
            layout = (charts.monte_carlo_charts(figures.monte_carlo, figures.starting_balance,
                                                currency)
                      if figures.monte_carlo is not None else None)
            return figures, layout

        def done(outcome) -> None:
            if results is not self.results:
                return  # another run was chosen meanwhile
            if isinstance(outcome, Exception):
                if not isinstance(outcome, WorkbenchError):
                    log.error("robustness of run %s failed", results.info.run_id,
                              exc_info=outcome)
                self.message = f"Cannot simulate run {results.info.run_id}: {outcome}"
                self._text.object = self.message
                self._charts.object = None
                return
            figures, layout = outcome
            self.message = ""
            self.figures = figures
            self._text.object = robustness_markdown(figures)
            self._charts.object = layout

        run_off_loop(work, done, busy=self._layout)

"""Study backtest results: runs list, statistics, equity/drawdown/price charts, trade tables."""

from __future__ import annotations

import json
import logging

import holoviews as hv
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from services import Workbench, WorkbenchError
from services.backtest.downsample import minmax_decimate
from services.backtest.statistics import HEADLINE_LABELS, format_statistic

log = logging.getLogger(__name__)

# Points per time chart: enough for a sharp 4K-wide line, small enough for any browser.
MAX_CHART_POINTS = 4000
# Fill markers drawn on the price chart; beyond this the markers are thinned (tables keep all).
MAX_FILL_MARKERS = 5000

_RUN_COLUMNS = {
    "run_id": "Run", "status": "Status", "strategy": "Strategy", "bar_type": "Bar type",
    "total_return": "Return", "sharpe": "Sharpe", "max_drawdown": "Max DD", "num_trades": "Trades",
    "created_at": "Created (UTC)",
}


def _card(label: str, value: str) -> pn.pane.HTML:
    return pn.pane.HTML(
        f'<div class="stat-label">{label}</div><div class="stat-value">{value}</div>',
        css_classes=["stat-card"], width=170, height=72, margin=4,
        stylesheets=[":host(.stat-card) {border: 1px solid var(--neutral-stroke-rest, #ccc);"
                     "border-radius: 6px; padding: 6px 10px;}"
                     ".stat-label {font-size: 0.8em; opacity: 0.7;}"
                     ".stat-value {font-size: 1.25em; font-weight: 600;}"],
    )


class ResultsViewer(Viewer):
    """List runs and study one: statistics, charts and the tables behind them."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the runs are read from.")

    run_id = param.Selector(default=None, objects=[], allow_None=True, label="Run", doc="""
        The run on display.""")

    refresh = param.Event(label="Refresh", doc="Reload the list of runs.")

    statistics = param.Dict(default={}, doc="Statistics of the run on display (read-only).")

    message = param.String(default="", doc="Why a run cannot be shown, if it cannot.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("ResultsViewer needs a workbench (services.Workbench.open()).")
        self._runs = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(_RUN_COLUMNS)), titles=_RUN_COLUMNS, show_index=False,
            selectable=1, disabled=True, pagination="local", page_size=8, height=300,
            sizing_mode="stretch_width", header_filters=True, layout="fit_data_stretch",
            formatters={"total_return": {"type": "money", "symbol": "%", "symbolAfter": True, "precision": 2},
                        "max_drawdown": {"type": "money", "symbol": "%", "symbolAfter": True, "precision": 2},
                        "sharpe": {"type": "money", "precision": 2}},
        )
        self._runs.param.watch(self._on_row_selected, "selection")
        self._alert = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self._header = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._cards = pn.FlexBox(sizing_mode="stretch_width")
        self._charts = pn.Column(sizing_mode="stretch_width")
        self._positions = self._table()
        self._fills = self._table()
        self._orders = self._table()
        self._config = pn.pane.JSON({}, depth=3, sizing_mode="stretch_width", theme="light")
        self._details = pn.Tabs(
            ("Positions", self._positions), ("Fills", self._fills), ("Orders", self._orders),
            ("Configuration", self._config), sizing_mode="stretch_width", dynamic=True,
        )
        self._body = pn.Column(self._header, self._cards, self._charts, self._details,
                               visible=False, sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(pn.pane.Markdown("### Runs"), pn.widgets.Button.from_param(
                self.param.refresh, button_type="default", width=100)),
            self._runs, self._alert, self._body, sizing_mode="stretch_width",
        )
        self._load_runs()
        if self.run_id:
            self._show_run()

    def __panel__(self):
        return self._layout

    @staticmethod
    def _table() -> pn.widgets.Tabulator:
        return pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, pagination="remote", page_size=15,
            header_filters=True, sizing_mode="stretch_width", layout="fit_data_stretch",
        )

    # -- runs list ----------------------------------------------------------------------------
    @param.depends("refresh", watch=True)
    def _load_runs(self) -> None:
        try:
            runs = self.workbench.backtests.list_runs()
        except WorkbenchError as e:
            self._warn(f"Cannot list runs: {e}")
            return
        frame = pd.DataFrame([{k: getattr(r, k) for k in _RUN_COLUMNS} for r in runs],
                             columns=list(_RUN_COLUMNS))
        for pct in ("total_return", "max_drawdown"):
            frame[pct] = pd.to_numeric(frame[pct]) * 100
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
        self._runs.value = frame
        current = self.run_id
        self.param.run_id.objects = [r.run_id for r in runs]
        if current in self.param.run_id.objects:
            self.run_id = current

    def _on_row_selected(self, event) -> None:
        if event.new:
            self.run_id = self._runs.value.iloc[event.new[0]]["run_id"]

    # -- one run ------------------------------------------------------------------------------
    @param.depends("run_id", watch=True)
    def _show_run(self) -> None:
        if not self.run_id:
            self._body.visible = False
            return
        try:
            results = self.workbench.backtests.results(self.run_id)
        except WorkbenchError as e:
            self.statistics = {}
            self._body.visible = False
            self._warn(str(e))
            return
        self._alert.visible = False
        self.message = ""
        self.statistics = results.statistics
        info, summary = results.info, results.summary
        currency = summary.get("currency", "")
        params = ", ".join(f"{k}={v}" for k, v in info.parameters.items()) or "defaults"
        warnings = "".join(f"\n\n> Warning: {w}" for w in summary.get("warnings", []))
        self._header.object = (
            f"### {info.strategy} on {info.bar_type}\n"
            f"Run `{info.run_id}` · {info.start:%Y-%m-%d %H:%M} to {info.end:%Y-%m-%d %H:%M} UTC · "
            f"parameters: {params} · {summary['orders']:,} orders, {summary['fills']:,} fills, "
            f"{summary['positions']:,} positions{warnings}"
        )
        self._cards.objects = [
            _card(label, format_statistic(key, results.statistics.get(key), currency))
            for key, (label, _) in HEADLINE_LABELS.items()
        ]
        self._charts.objects = [pn.pane.HoloViews(self._charts_for(results), sizing_mode="stretch_width",
                                                  linked_axes=True)]
        self._positions.value = self._display_frame(results.positions)
        self._fills.value = self._display_frame(results.fills)
        self._orders.value = self._display_frame(results.orders)
        self._config.object = json.loads(json.dumps(results.config))
        self._body.visible = True

    @staticmethod
    def _display_frame(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for column in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[column]):
                out[column] = out[column].dt.strftime("%Y-%m-%d %H:%M:%S")
            elif pd.api.types.is_timedelta64_dtype(out[column]):
                out[column] = out[column].astype(str)
        return out

    def _charts_for(self, results) -> hv.Layout:
        equity = results.equity.reset_index()
        equity["drawdown_pct"] = equity["drawdown"] * 100
        time_dim = hv.Dimension("ts", label="Time (UTC)")
        eq = minmax_decimate(equity, "equity", MAX_CHART_POINTS)
        dd = minmax_decimate(equity, "drawdown_pct", MAX_CHART_POINTS)
        px = minmax_decimate(equity, "close", MAX_CHART_POINTS)
        currency = results.summary.get("currency", "")
        equity_curve = hv.Curve(eq, time_dim, hv.Dimension("equity", label=f"Equity ({currency})")).opts(
            title="Mark-to-market equity", color="#1f77b4", tools=["hover"], height=260, yformatter="%.0f",
            responsive=True, show_grid=True)
        drawdown = hv.Area(dd, time_dim, hv.Dimension("drawdown_pct", label="Drawdown (%)")).opts(
            title="Drawdown", color="#d62728", alpha=0.5, line_width=0, tools=["hover"], height=160,
            responsive=True, show_grid=True)
        price = hv.Curve(px, time_dim, hv.Dimension("close", label="Price")).opts(
            color="#555555", line_width=1, tools=["hover"])
        fills = results.fills
        if len(fills) > MAX_FILL_MARKERS:
            fills = fills.iloc[:: len(fills) // MAX_FILL_MARKERS + 1]
        buys = fills[fills["side"] == "BUY"].rename(columns={"ts": "ts", "price": "close"})
        sells = fills[fills["side"] == "SELL"].rename(columns={"ts": "ts", "price": "close"})
        entries = hv.Scatter(buys, time_dim, ["close", "quantity"], label="Buy").opts(
            marker="triangle", size=9, color="#2ca02c", tools=["hover"])
        exits = hv.Scatter(sells, time_dim, ["close", "quantity"], label="Sell").opts(
            marker="inverted_triangle", size=9, color="#d62728", tools=["hover"])
        price_chart = (price * entries * exits).opts(
            title="Price with fills", height=300, responsive=True, show_grid=True, legend_position="top_left")
        return (equity_curve + drawdown + price_chart).cols(1).opts(shared_axes=True)

    def _warn(self, text: str) -> None:
        self.message = text
        self._alert.object = text
        self._alert.visible = True

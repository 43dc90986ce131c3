"""Study backtest results: runs list, statistics, linked charts, trades and exports."""

from __future__ import annotations

import html
import io
import json
import logging
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components import charts
from components.formats import (
    fixed_cell,
    parameters_text,
    ratio_cell,
    run_choices,
    run_heading,
    run_name,
)
from components.offloop import run_off_loop
from components.pipeline.create_version import VersionFromRun
from components.report import run_report_html
from components.robustness import RobustnessPanel
from services import Workbench, WorkbenchError
from services.backtest.metric_labels import HEADLINE_LABELS, METRIC_GROUPS, format_statistic
from services.errors import RunNotFound
from services.formatting import format_count, format_duration
from services.identity.principal import Principal

log = logging.getLogger(__name__)

# The columns that tell runs apart first; the id last (the URL and the CLI name runs by it).
_RUN_COLUMNS = {
    "name": "Run", "parameters": "Parameters", "status": "Status", "total_return": "Return",
    "sharpe": "Sharpe", "max_drawdown": "Max DD", "num_trades": "Trades",
    "bar_type": "Bar type", "created_at": "Created (UTC)", "run_id": "Run id",
}
# Time around a clicked trade shown on the price chart, as a fraction of the trade's length.
_ZOOM_PADDING = 1.0


_CARDS_CSS = [
    ".stat-cards {display: flex; flex-wrap: wrap; gap: 8px;}"
    ".stat-card {border: 1px solid var(--neutral-stroke-rest, #ccc); border-radius: 6px;"
    " padding: 6px 10px; min-width: 150px; height: 56px; white-space: nowrap;}"
    ".stat-label {font-size: 0.8em; opacity: 0.7;}"
    ".stat-value {font-size: 1.25em; font-weight: 600;}"]
_METRICS_CSS = [
    ".metric-groups {display: flex; flex-wrap: wrap; gap: 12px 28px;}"
    ".metric-groups h4 {margin: 8px 0 4px 0;}"
    ".metric-groups table {border-collapse: collapse; width: 320px;}"
    ".metric-groups td {padding: 2px 6px; border-bottom: 1px solid var(--neutral-stroke-rest, #ddd);}"
    ".metric-groups td.value {text-align: right; font-variant-numeric: tabular-nums;}"]


def cards_html(statistics: dict, currency: str) -> str:
    """The headline statistics as cards: one pane for all (a pane per card cost more to build
    than the run's charts)."""
    e = html.escape
    return '<div class="stat-cards">' + "".join(
        f'<div class="stat-card"><div class="stat-label">{e(label)}</div>'
        f'<div class="stat-value">{e(format_statistic(key, statistics.get(key), currency))}'
        "</div></div>" for key, (label, _) in HEADLINE_LABELS.items()) + "</div>"


def metrics_html(statistics: dict, currency: str) -> str:
    """Every metric, one table per group, in one pane."""
    e = html.escape
    groups = []
    for group, metrics in METRIC_GROUPS.items():
        rows = "".join(f'<tr><td>{e(label)}</td><td class="value">'
                       f"{e(format_statistic(key, statistics.get(key), currency))}</td></tr>"
                       for key, (label, _) in metrics.items())
        groups.append(f"<div><h4>{e(group)}</h4><table>{rows}</table></div>")
    return '<div class="metric-groups">' + "".join(groups) + "</div>"


# Tabs (by position) whose charts are built when first shown.
RETURNS_TAB, TRADES_TAB, ROBUSTNESS_TAB = 1, 3, 4  # indexes in the tabs


class _Prepared:
    """What showing a run needs at once, computed off the event loop: the Charts tab (the one
    shown first) and display tables. The Returns and Trades tabs' charts are built when their
    tab is first shown."""

    def __init__(self, time_charts, trades, fills, orders, config, formats) -> None:
        self.time_charts = time_charts
        self.trades, self.fills, self.orders, self.config = trades, fills, orders, config
        self.formats = formats  # (titles, formatters) per table

    @classmethod
    def of(cls, results, log_scale: bool) -> _Prepared:
        # Bokeh figures belong to one document and are built per session; the display tables
        # are shared by every session of the process that opens the run.
        return cls(charts.time_charts(results, log=log_scale), *_DISPLAY_TABLES.of(results),
                   table_formats(results))


class _DisplayTables:
    """The trades, fills and orders tables and the configuration as shown, per loaded run (the
    process's ResultsStore hands every session the same frames of a run): formatting 40k
    trades' and 80k fills' times costs more than everything else on a second open."""

    def __init__(self, capacity: int = 8) -> None:
        self._capacity = capacity
        self._cache: OrderedDict[str, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, results) -> tuple:
        run_id = results.info.run_id
        with self._lock:
            cached = self._cache.get(run_id)
            if cached is not None and cached[0] is results.fills:  # the same load of the run
                self._cache.move_to_end(run_id)
                return cached[1]
        display = ResultsViewer._display_frame
        tables = (display(trades_frame(results)), display(results.fills), display(results.orders),
                  json.loads(json.dumps(results.config)))
        with self._lock:
            self._cache[run_id] = (results.fills, tables)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return tables


_DISPLAY_TABLES = _DisplayTables()


def trades_frame(results) -> pd.DataFrame:
    """The trades table: one row per closed position; prices and sizes at the instrument's
    precision (no float noise in exports)."""
    p = results.positions
    price, size = results.precisions()
    return pd.DataFrame({
        "entry_time": p["opened"], "exit_time": p["closed"],
        "side": p["entry"].map({"BUY": "LONG", "SELL": "SHORT"}).fillna(p["entry"]),
        "quantity": p["quantity"].round(size), "entry_price": p["avg_px_open"].round(price),
        "exit_price": p["avg_px_close"].round(price),
        "pnl": p["realized_pnl"], "return_pct": results.net_returns() * 100,
        "duration": durations_text(p["closed"] - p["opened"]), "commission": p["commissions"],
    })


def durations_text(spans: pd.Series) -> np.ndarray:
    """Time spans as ``1h17m``, formatted once per distinct length (trades of bar data last
    whole bars: a few hundred lengths among 40k trades)."""
    # to_timedelta: a run without trades has empty object columns, not timedeltas.
    seconds = pd.to_timedelta(spans).dt.total_seconds().to_numpy()
    lengths, where = np.unique(seconds, return_inverse=True)
    return np.array([format_duration(s) for s in lengths], dtype=object)[where]


def datetimes_text(times: pd.Series) -> np.ndarray:
    """UTC times as ``2024-01-02 03:04:05`` (blank when missing), in numpy: four times
    faster than ``strftime`` on the 80k fills of a long run."""
    if times.empty:
        return np.array([], dtype=object)
    values = times.dt.tz_localize(None) if times.dt.tz is not None else times
    text = np.char.replace(np.datetime_as_string(values.to_numpy("datetime64[s]"), unit="s"),
                           "T", " ").astype(object)
    text[values.isna().to_numpy()] = ""
    return text


def table_formats(results) -> dict[str, tuple[dict, dict]]:
    """Titles and browser-side number formats of the trades, fills and orders tables: prices
    and sizes at the instrument's precision, money at 2 decimals with its currency."""
    price, size = results.precisions()
    currency = results.summary.get("currency", "")
    money = f" ({currency})" if currency else ""
    return {
        "trades": ({"entry_time": "Entry (UTC)", "exit_time": "Exit (UTC)", "side": "Side",
                    "quantity": "Quantity", "entry_price": "Entry price",
                    "exit_price": "Exit price", "pnl": f"PnL{money}",
                    "return_pct": "Return (after commission)",
                    "duration": "Duration", "commission": f"Commission{money}"},
                   {"quantity": fixed_cell(size), "entry_price": fixed_cell(price),
                    "exit_price": fixed_cell(price), "pnl": fixed_cell(2),
                    "return_pct": fixed_cell(2, " %"), "commission": fixed_cell(2)}),
        "fills": ({"ts": "Time (UTC)", "commission": f"commission{money}"},
                  {"quantity": fixed_cell(size), "price": fixed_cell(price),
                   "commission": fixed_cell(2)}),
        "orders": ({}, {"quantity": fixed_cell(size), "filled_qty": fixed_cell(size),
                        "avg_px": fixed_cell(price)}),
    }


class ResultsViewer(Viewer):
    """List runs and study one: statistics, linked charts, trades, exports."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the runs are read from.")

    run_id = param.Selector(default=None, objects=[], allow_None=True, label="Run", doc="""
        The run on display.""")

    refresh = param.Event(label="Refresh", doc="Reload the list of runs.")

    log_scale = param.Boolean(default=False, label="Log scale", doc="Equity on a log axis.")

    zoom = param.Tuple(default=None, allow_None=True, length=2, doc="""
        Time window of the trades tab's price chart; set by clicking a trade.""")

    statistics = param.Dict(default={}, doc="Statistics of the run on display (read-only).")

    message = param.String(default="", doc="Why a run cannot be shown, if it cannot.")

    principal = param.ClassSelector(class_=Principal, allow_None=True, doc="""
        Who acts (making a strategy version of the run); None: the workbench's default.""")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("ResultsViewer needs a workbench (services.Workbench.open()).")
        self._results = None
        self._all_trades = pd.DataFrame()  # the unfiltered trades table of the run on display
        self._runs = pn.widgets.Tabulator(
            pd.DataFrame(columns=list(_RUN_COLUMNS)), titles=_RUN_COLUMNS, show_index=False,
            selectable=1, disabled=True, pagination="local", page_size=8,
            sizing_mode="stretch_width", header_filters=True, layout="fit_data_stretch",
            formatters={"total_return": fixed_cell(2, " %"), "max_drawdown": fixed_cell(2, " %"),
                        "sharpe": ratio_cell(), "num_trades": fixed_cell(0)},
        )
        self._runs.param.watch(self._on_row_selected, "selection")
        self._alert = pn.pane.Alert("", alert_type="warning", visible=False, sizing_mode="stretch_width")
        self._header = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._cards = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=_CARDS_CSS)
        # Bokeh layouts from components.charts (the time charts share one x range: linked zoom).
        self._time_charts = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._distribution = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._metrics = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=_METRICS_CSS)
        self._trade_price = pn.pane.Bokeh(None, sizing_mode="stretch_width")
        self._trades = self._table(page_size=12)
        self._trades.on_click(self._on_trade_click)
        self._trade_search = pn.widgets.TextInput(placeholder="Search trades (side, dates, amounts)",
                                                  width=320)
        self._trade_search.param.watch(self._on_trade_search, "value_input")
        self._fills = self._table()
        self._orders = self._table()
        self._config = pn.pane.JSON({}, depth=3, sizing_mode="stretch_width", theme="light")
        self._robustness = RobustnessPanel()
        self._downloads = pn.Row(
            pn.widgets.FileDownload(callback=self._report_file, filename="report.html",
                                    label="Download HTML report", color="primary", width=210),
            pn.widgets.FileDownload(callback=lambda: self._csv("trades"), filename="trades.csv",
                                    label="Trades CSV", width=130),
            pn.widgets.FileDownload(callback=lambda: self._csv("equity"), filename="equity.csv",
                                    label="Equity CSV", width=130),
            pn.widgets.FileDownload(callback=lambda: self._parquet("trades"), filename="trades.parquet",
                                    label="Trades Parquet", width=140),
        )
        self.version_from_run = VersionFromRun(workbench=self.workbench,
                                               principal=self.principal)
        self._tabs = pn.Tabs(
            ("Charts", pn.Column(pn.widgets.Checkbox.from_param(self.param.log_scale), self._time_charts,
                                 sizing_mode="stretch_width")),
            ("Returns", self._distribution),
            ("Metrics", self._metrics),
            ("Trades", pn.Column(
                pn.pane.Markdown("Click a trade to zoom the price chart to it."),
                self._trade_price, self._trade_search, self._trades, sizing_mode="stretch_width")),
            ("Robustness", self._robustness),
            ("Fills", self._fills), ("Orders", self._orders), ("Configuration", self._config),
            sizing_mode="stretch_width", dynamic=True,
        )
        self._tabs.param.watch(self._on_tab, "active")
        self._body = pn.Column(self._header, self._downloads, self.version_from_run,
                               self._cards, self._tabs,
                               visible=False, sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(pn.pane.Markdown("### Runs"), pn.widgets.Button.from_param(
                self.param.refresh, color="default", width=100)),
            self._runs, self._alert, self._body, sizing_mode="stretch_width",
        )
        self._load_runs()
        if self.run_id:
            self._show_run()

    def __panel__(self):
        return self._layout

    @staticmethod
    def _table(page_size: int = 15) -> pn.widgets.Tabulator:
        # Remote pagination: the browser only ever receives the page it shows.
        return pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, pagination="remote", page_size=page_size,
            header_filters=True, sizing_mode="stretch_width", layout="fit_data_stretch",
        )

    # -- runs list ----------------------------------------------------------------------------
    @param.depends("refresh", watch=True)
    def _load_runs(self) -> None:
        try:
            runs = self.workbench.backtests.list_runs()
            if self.run_id and self.run_id not in {r.run_id for r in runs}:
                # The run on display stays listed, however many newer runs (a 1,000-run
                # sweep) push it off the newest ones.
                runs.append(self.workbench.backtests.get(self.run_id))
        except RunNotFound:
            self.run_id = None  # deleted meanwhile (catalog recovery, another process)
            return self._load_runs()
        except WorkbenchError as e:
            self._warn(f"Cannot list runs: {e}")
            return
        computed = {"name": run_name, "parameters": parameters_text}
        frame = pd.DataFrame([{k: computed[k](r) if k in computed else getattr(r, k)
                               for k in _RUN_COLUMNS} for r in runs], columns=list(_RUN_COLUMNS))
        for pct in ("total_return", "max_drawdown"):
            frame[pct] = pd.to_numeric(frame[pct]) * 100
        frame["sharpe"] = pd.to_numeric(frame["sharpe"])
        # Runs without results have no numbers: show blanks, not NaN or "368.0".
        frame["num_trades"] = pd.to_numeric(frame["num_trades"]).astype("Int64")
        frame = frame.astype(object).where(frame.notna(), None)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
        self._runs.value = frame
        current = self.run_id
        self.param.run_id.objects = run_choices(runs)
        if current in self.param.run_id.objects:
            self.run_id = current
        self._highlight_run()

    def open_run(self, run_id: str) -> bool:
        """Show ``run_id``, also a run older than the newest listed; False if there is none."""
        listed = run_id in self.param.run_id.objects
        if not listed:
            try:
                self.workbench.backtests.get(run_id)
            except WorkbenchError:
                return False
        self.run_id = run_id
        if not listed:
            self._load_runs()
        return True

    def open_latest(self) -> bool:
        """Show the newest completed run; False if there is none yet."""
        try:
            latest = self.workbench.backtests.latest_completed()
        except WorkbenchError as e:
            self._warn(f"Cannot list runs: {e}")
            return False
        return latest is not None and self.open_run(latest.run_id)

    def _on_row_selected(self, event) -> None:
        if event.new:
            self.run_id = self._runs.value.iloc[event.new[0]]["run_id"]

    @param.depends("run_id", watch=True)
    def _highlight_run(self) -> None:
        """The run on display is the selected row, however it was chosen (row, menu, URL)."""
        rows = self._runs.value.index[self._runs.value["run_id"] == self.run_id].tolist() \
            if len(self._runs.value) else []
        if self._runs.selection != rows[:1]:
            self._runs.selection = rows[:1]
        if rows:  # turn to the row's page: a run opened by its link may be on any page
            page = rows[0] // self._runs.page_size + 1
            if self._runs.page != page:
                self._runs.page = page

    # -- one run ------------------------------------------------------------------------------
    @param.depends("run_id", watch=True)
    def _show_run(self) -> None:
        """Load the run off the event loop (other sessions keep answering) and show it."""
        self._results = None
        run_id, log_scale = self.run_id, self.log_scale
        if not run_id:
            self._body.visible = False
            return

        def load():
            results = self.workbench.backtests.results(run_id)
            return results, _Prepared.of(results, log_scale)

        def loaded(outcome) -> None:
            if run_id != self.run_id:
                return  # another run was chosen meanwhile
            if isinstance(outcome, Exception):
                self._results = None
                self.statistics = {}
                self._body.visible = False
                if isinstance(outcome, WorkbenchError):
                    self._warn(str(outcome))
                else:  # a damaged run must not take the page down
                    log.error("showing run %s failed", run_id, exc_info=outcome)
                    self._warn(f"Run {run_id} cannot be shown: its results are damaged. "
                               "The details are in the server log; run the backtest again.")
                return
            self._show(*outcome)

        run_off_loop(load, loaded, busy=self._layout)

    def _show(self, results, prepared: _Prepared) -> None:
        self._results = results
        self._alert.visible = False
        self.message = ""
        self.statistics = results.statistics
        info, summary = results.info, results.summary
        currency = summary.get("currency", "")
        params = ", ".join(f"{k}={v}" for k, v in info.parameters.items()) or "defaults"
        warnings = "".join(f"\n\n> Warning: {w}" for w in summary.get("warnings", []))
        self._header.object = (
            f"{run_heading(info)}\n"
            f"Run `{info.run_id}` · {info.start:%Y-%m-%d %H:%M} to {info.end:%Y-%m-%d %H:%M} UTC · "
            f"parameters: {params} · {format_count(summary['orders'])} orders, "
            f"{format_count(summary['fills'])} fills, {format_count(summary['positions'])} "
            f"positions{warnings}"
        )
        for download, name in zip(self._downloads, ("report-{}.html", "trades-{}.csv",
                                                     "equity-{}.csv", "trades-{}.parquet"), strict=True):
            download.filename = name.format(info.run_id)
        self.version_from_run.run_id = info.run_id
        self._cards.object = cards_html(results.statistics, currency)
        self._metrics.object = metrics_html(results.statistics, currency)
        self._time_charts.object = prepared.time_charts
        self._distribution.object = None
        for table, name in ((self._trades, "trades"), (self._fills, "fills"),
                            (self._orders, "orders")):
            table.titles, table.formatters = prepared.formats[name]
        self._trades.value = prepared.trades
        self._all_trades = prepared.trades
        self._fills.value = prepared.fills
        self._orders.value = prepared.orders
        self._config.object = prepared.config
        with param.parameterized.discard_events(self):
            self.zoom = None
        self._trade_price.object = None
        self._body.visible = True
        self._robustness.results = None
        self._build_shown_tab()

    # -- charts built on demand, off the event loop ------------------------------------------
    def _on_tab(self, _event) -> None:
        self._build_shown_tab()

    def _build_shown_tab(self) -> None:
        """Build the Returns or Trades tab's charts the first time the tab shows for this run;
        hand the run to the Robustness tab (its Monte Carlo runs then: opening a run stays
        fast)."""
        results, tab = self._results, self._tabs.active
        if results is None:
            return
        if tab == ROBUSTNESS_TAB and self._robustness.results is not results:
            self._robustness.results = results
        elif tab == RETURNS_TAB and self._distribution.object is None:
            self._chart_off_loop(self._distribution, lambda: charts.distribution_charts(results))
        elif tab == TRADES_TAB and self._trade_price.object is None:
            zoom = self.zoom
            self._chart_off_loop(self._trade_price, lambda: charts.price_chart(results, xlim=zoom))

    def _chart_off_loop(self, pane: pn.pane.Bokeh, build) -> None:
        results = self._results

        def place(outcome) -> None:
            if results is not self._results:
                return  # another run is on display now
            if isinstance(outcome, Exception):
                log.error("building a chart of run %s failed", results.info.run_id,
                          exc_info=outcome)
                self._warn("A chart of this run cannot be drawn; the details are in the "
                           "server log.")
                return
            pane.object = outcome

        run_off_loop(build, place, busy=pane)

    @param.depends("log_scale", watch=True)
    def _render_time_charts(self) -> None:
        if self._results is not None:
            results, log_scale = self._results, self.log_scale
            self._chart_off_loop(self._time_charts,
                                 lambda: charts.time_charts(results, log=log_scale))

    @param.depends("zoom", watch=True)
    def _render_trade_price(self) -> None:
        if self._results is not None:
            results, zoom = self._results, self.zoom
            self._chart_off_loop(self._trade_price,
                                 lambda: charts.price_chart(results, xlim=zoom))

    def _on_trade_click(self, event) -> None:
        row = self._trades.value.iloc[event.row]
        opened, closed = pd.Timestamp(row["entry_time"], tz="UTC"), pd.Timestamp(row["exit_time"], tz="UTC")
        pad = max((closed - opened) * _ZOOM_PADDING, pd.Timedelta(minutes=30))
        self.zoom = (opened - pad, closed + pad)

    def _on_trade_search(self, event) -> None:
        text, frame = (event.new or "").strip().lower(), self._all_trades

        def search() -> pd.DataFrame:
            if not text:
                return frame
            found = frame.astype(str).apply(
                lambda col: col.str.lower().str.contains(text, regex=False)).any(axis=1)
            return frame[found]

        def show(outcome) -> None:
            if (self._trade_search.value_input or "").strip().lower() != text:
                return  # typed on meanwhile: a newer search follows
            if isinstance(outcome, Exception):
                log.error("searching trades failed", exc_info=outcome)
                return
            self._trades.value = outcome

        run_off_loop(search, show, busy=self._trades)

    @staticmethod
    def _display_frame(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for column in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[column]):
                out[column] = datetimes_text(out[column])
            elif pd.api.types.is_timedelta64_dtype(out[column]):
                out[column] = durations_text(out[column])
        return out

    # -- exports ------------------------------------------------------------------------------
    def _report_file(self) -> io.StringIO | None:
        if self._results is None:
            return None
        return io.StringIO(run_report_html(self._results))

    def _export_frame(self, what: str) -> pd.DataFrame:
        if what == "trades":
            return trades_frame(self._results)
        return self._results.equity.reset_index()

    def _csv(self, what: str) -> io.StringIO | None:
        if self._results is None:
            return None
        return io.StringIO(self._export_frame(what).to_csv(index=False))

    def _parquet(self, what: str) -> io.BytesIO | None:
        if self._results is None:
            return None
        buffer = io.BytesIO()
        self._export_frame(what).to_parquet(buffer, index=False)
        buffer.seek(0)
        return buffer

    def _warn(self, text: str) -> None:
        self.message = text
        self._alert.object = text
        self._alert.visible = True

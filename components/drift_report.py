"""The drift of a deployment: its equity overlaid on the backtest of the same window, and the
fill-by-fill and trade-by-trade comparison, as Bokeh charts and as a standalone HTML report
(offline: Bokeh inlined, tables as compressed columnar JSON, like the run reports)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
from bokeh.plotting import figure

from components.report import _encode_table, _page, _render_charts, _table_html
from services.backtest.downsample import minmax_indices
from services.pipeline import DriftReport

MAX_POINTS = 4000
_TOOLS = "pan,box_zoom,wheel_zoom,reset,save"
ENGINE_COLOR, BACKTEST_COLOR = "#d62728", "#1f77b4"


def _ms(index) -> np.ndarray:
    return (pd.DatetimeIndex(index).as_unit("ns").asi8 / 1e6).astype("float64")


def drift_chart(report: DriftReport, height: int = 300):
    """Equity of the engine and of the backtest on one time axis, and their difference."""
    equity = report.result.equity
    keep = np.unique(np.concatenate([
        minmax_indices(equity["engine"].to_numpy(float), MAX_POINTS // 2),
        minmax_indices(equity["backtest"].to_numpy(float), MAX_POINTS // 2)]))
    shown = equity.iloc[keep]
    source = ColumnDataSource({"ts": _ms(shown.index),
                               "engine": shown["engine"].to_numpy(float),
                               "backtest": shown["backtest"].to_numpy(float),
                               "gap": (shown["engine"] - shown["backtest"]).to_numpy(float)})
    top = figure(x_axis_type="datetime", height=height, sizing_mode="stretch_width",
                 tools=_TOOLS, title="Equity: engine (red) over the backtest of its window (blue)")
    top.line("ts", "backtest", source=source, color=BACKTEST_COLOR, line_width=3, alpha=0.6,
             legend_label="backtest")
    top.line("ts", "engine", source=source, color=ENGINE_COLOR, line_width=1.5,
             legend_label=report.deployment.stage)
    top.yaxis.formatter = NumeralTickFormatter(format="0,0")
    top.legend.location = "top_left"
    top.add_tools(HoverTool(tooltips=[("Time", "@ts{%F %T}"), ("Engine", "@engine{0,0.00}"),
                                      ("Backtest", "@backtest{0,0.00}")],
                            formatters={"@ts": "datetime"}, mode="vline"))
    bottom = figure(x_axis_type="datetime", height=height // 2, sizing_mode="stretch_width",
                    tools=_TOOLS, x_range=top.x_range, title="Engine minus backtest")
    bottom.line("ts", "gap", source=source, color="#444")
    bottom.yaxis.formatter = NumeralTickFormatter(format="0,0.00")
    return column(top, bottom, sizing_mode="stretch_width")


def _number(value, digits: int = 2, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def summary_rows(report: DriftReport) -> list[tuple[str, str]]:
    """(label, value) pairs of a drift's headline figures."""
    s = report.summary()
    latency = s["latency_ms"]
    return [
        ("Window", f"{s['window_start'][:16]} to {s['window_end'][:16]} UTC ({s['bars']:,} bars)"),
        ("Correlation of returns", _number(s["correlation"], 4)),
        ("PnL engine / backtest", f"{s['engine_pnl']:,.2f} / {s['backtest_pnl']:,.2f}"),
        ("PnL difference", (f"{s['pnl_difference']:,.2f} ("
                            f"{_number(s['pnl_difference_pct'], 2, ' %')})")),
        ("Fills engine / backtest", f"{s['engine_fills']:,} / {s['backtest_fills']:,}"),
        ("Matched / missed / extra",
         f"{s['matched_fills']:,} / {s['missed_fills']:,} / {s['extra_fills']:,}"),
        ("Slippage (cost, mean)", (f"{s['slippage_total']:,.2f} "
                                   f"({_number(s['slippage_mean_bps'], 2, ' bps')})")),
        ("Commissions engine / backtest",
         f"{s['engine_commissions']:,.2f} / {s['backtest_commissions']:,.2f}"),
        ("Largest time difference", _number(s["time_difference_max_s"], 1, " s")),
        ("Engine lateness (median / max)",
         f"{_number(latency.get('median'), 1)} / {_number(latency.get('max'), 1)} ms"
         if latency else "n/a"),
        ("Bounds", ("within: " if report.within_bounds else "OUT: ") + report.bounds),
    ]


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Column headings in words, as the run report's tables: "engine price", "slippage (bps)"."""
    return frame.rename(columns=lambda c: str(c).replace("_", " ").replace(" bps", " (bps)"))


def drift_report_html(report: DriftReport) -> str:
    """A standalone HTML drift report."""
    d = report.deployment
    script, (chart_div,) = _render_charts(drift_chart(report))
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                   for k, v in summary_rows(report))
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in report.notes)
    fills = _table_html("drift-fills", _encode_table(_readable(report.result.fills))[0])
    trades = _table_html("drift-trades", _encode_table(_readable(report.result.trades))[0])
    body = f"""
<section><h2>Summary</h2>{notes}<table>{rows}</table></section>
<section><h2>Equity</h2>{chart_div}</section>
<section><h2>Fills ({len(report.result.fills):,})</h2>{fills}</section>
<section><h2>Trades ({len(report.result.trades):,})</h2>{trades}</section>
"""
    subtitle = html.escape(f"{d.strategy} on {d.bar_type} · version {d.version_id[:12]} · "
                           f"{d.stage} deployment {d.deployment_id} (engine "
                           f"{d.engine_session_id}) · backtest run {report.run_id}")
    return _page(f"Drift: {d.strategy} in {d.stage}", subtitle, body, script)


def write_drift_report(report: DriftReport, path: str | Path) -> Path:
    """Write the HTML drift report to ``path``."""
    path = Path(path)
    path.write_text(drift_report_html(report), encoding="utf-8")
    return path

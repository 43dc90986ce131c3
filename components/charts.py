"""HoloViews charts of backtest results, shared by the ResultsViewer, the comparison view and
the standalone HTML report. Time series are decimated (extremes kept) so that no chart ships
more than a few thousand points, whatever the run's length."""

from __future__ import annotations

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401 (registers the Bokeh backend, also outside notebooks)
import numpy as np
import pandas as pd

from services.backtest.downsample import minmax_decimate
from services.backtest.statistics import daily_returns

# Points per time chart: enough for a sharp 4K-wide line, small enough for any browser.
MAX_CHART_POINTS = 4000
# Fill markers drawn on the price chart; beyond this they are thinned (tables keep every fill).
MAX_FILL_MARKERS = 5000
ROLLING_DAYS = 30
TIME = hv.Dimension("ts", label="Time (UTC)")
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _time_opts(height: int, title: str) -> dict:
    return dict(title=title, height=height, responsive=True, show_grid=True, tools=["hover"],
                active_tools=["box_zoom"], default_tools=["pan", "box_zoom", "wheel_zoom", "reset", "save"])


def equity_frame(results) -> pd.DataFrame:
    """Per-bar equity with the buy-and-hold benchmark (same starting balance) and drawdown in %."""
    frame = results.equity.reset_index()
    start = results.statistics.get("starting_balance") or float(frame["equity"].iloc[0])
    first_close = float(frame["close"].iloc[0]) if len(frame) else 1.0
    frame["benchmark"] = start * frame["close"] / first_close if first_close else np.nan
    frame["drawdown_pct"] = frame["drawdown"] * 100
    return frame


def equity_chart(results, log: bool = False) -> hv.Overlay:
    frame = equity_frame(results)
    currency = results.summary.get("currency", "")
    y = hv.Dimension("equity", label=f"Equity ({currency})")
    strategy = hv.Curve(minmax_decimate(frame, "equity", MAX_CHART_POINTS), TIME, y,
                        label="Strategy").opts(color=PALETTE[0], line_width=2)
    bench = hv.Curve(minmax_decimate(frame, "benchmark", MAX_CHART_POINTS), TIME,
                     hv.Dimension("benchmark", label=f"Equity ({currency})"),
                     label="Buy and hold").opts(color="#999999", line_dash="dashed")
    return (strategy * bench).opts(
        **_time_opts(280, "Mark-to-market equity vs buy-and-hold" + (" (log)" if log else "")),
        logy=log, legend_position="top_left", yformatter="%.0f")


def drawdown_chart(results) -> hv.Overlay:
    frame = equity_frame(results)
    area = hv.Area(minmax_decimate(frame, "drawdown_pct", MAX_CHART_POINTS), TIME,
                   hv.Dimension("drawdown_pct", label="Drawdown (%)")).opts(
        color="#d62728", alpha=0.55, line_width=0)
    end = frame["ts"].iloc[-1] if len(frame) else None
    spans = [
        hv.VSpan(pd.Timestamp(p["peak"]), pd.Timestamp(p["recovery"]) if p["recovery"] else end).opts(
            color="#d62728", alpha=0.08)
        for p in results.statistics.get("worst_drawdowns", [])
    ]
    return hv.Overlay([area, *spans]).opts(
        **_time_opts(180, "Underwater (worst 5 drawdowns shaded)"))


def price_chart(results, xlim: tuple | None = None) -> hv.Overlay:
    frame = results.equity.reset_index()
    if xlim is not None:
        # Slice before decimating, so a zoomed window shows every bar inside it.
        frame = frame[(frame["ts"] >= xlim[0]) & (frame["ts"] <= xlim[1])]
    price = hv.Curve(minmax_decimate(frame, "close", MAX_CHART_POINTS), TIME,
                     hv.Dimension("close", label="Price"), label="Close").opts(
        color="#555555", line_width=1)
    fills = results.fills
    if xlim is not None:
        fills = fills[(fills["ts"] >= xlim[0]) & (fills["ts"] <= xlim[1])]
    if len(fills) > MAX_FILL_MARKERS:
        fills = fills.iloc[:: len(fills) // MAX_FILL_MARKERS + 1]
    marks = fills.rename(columns={"price": "close"})
    buys = hv.Scatter(marks[marks["side"] == "BUY"], TIME, ["close", "quantity"], label="Buy").opts(
        marker="triangle", size=9, color="#2ca02c")
    sells = hv.Scatter(marks[marks["side"] == "SELL"], TIME, ["close", "quantity"], label="Sell").opts(
        marker="inverted_triangle", size=9, color="#d62728")
    overlay = price * buys * sells
    opts = _time_opts(300, "Price with entries and exits")
    if xlim is not None:
        opts["xlim"] = xlim
    return overlay.opts(**opts, legend_position="top_left")


def position_chart(results) -> hv.Curve:
    frame = results.equity.reset_index()
    step = minmax_decimate(frame, "position", MAX_CHART_POINTS)
    return hv.Curve(step, TIME, hv.Dimension("position", label="Position")).opts(
        interpolation="steps-post", color="#9467bd", yformatter="%.4g", **_time_opts(130, "Net position"))


def monthly_heatmap(statistics: dict) -> hv.HeatMap:
    rows = []
    for key, value in (statistics.get("monthly_returns") or {}).items():
        year, month = key.split("-")
        rows.append((_MONTHS[int(month) - 1], year, None if value is None else value * 100))
    frame = pd.DataFrame(rows, columns=["month", "year", "return_pct"])
    heat = hv.HeatMap(frame, ["month", "year"], hv.Dimension("return_pct", label="Return (%)"))
    labels = hv.Labels(frame.assign(text=frame["return_pct"].map(
        lambda v: "n/a" if v is None or pd.isna(v) else f"{v:.1f}")), ["month", "year"], "text")
    return (heat * labels).opts(
        hv.opts.HeatMap(cmap="RdYlGn", symmetric=True, colorbar=True, tools=["hover"], height=220,
                        responsive=True, title="Monthly returns (%)", xlabel="", ylabel="",
                        xticks=None),
        hv.opts.Labels(text_font_size="8pt", text_color="black"),
    )


def yearly_bars(statistics: dict) -> hv.Bars:
    frame = pd.DataFrame([(y, (v or 0.0) * 100) for y, v in (statistics.get("yearly_returns") or {}).items()],
                         columns=["year", "return_pct"])
    return hv.Bars(frame, "year", hv.Dimension("return_pct", label="Return (%)")).opts(
        title="Yearly returns (%)", height=220, responsive=True, tools=["hover"], color="#1f77b4")


def returns_histogram(results) -> hv.Histogram:
    returns = daily_returns(results.equity["equity"], results.statistics.get("starting_balance")) * 100
    values = returns.to_numpy()
    bins = max(10, min(60, int(np.sqrt(max(len(values), 1))) * 2))
    counts, edges = np.histogram(values, bins=bins) if len(values) else (np.array([]), np.array([0, 1]))
    return hv.Histogram((edges, counts), kdims=[hv.Dimension("daily_return", label="Daily return (%)")],
                        vdims=["Days"]).opts(title="Distribution of daily returns", height=220,
                                     responsive=True, color="#1f77b4", tools=["hover"])


def rolling_chart(results) -> hv.Overlay:
    returns = daily_returns(results.equity["equity"], results.statistics.get("starting_balance"))
    ppy = results.statistics.get("periods_per_year") or 365.0
    rolling = returns.rolling(ROLLING_DAYS, min_periods=max(5, ROLLING_DAYS // 3))
    std = rolling.std()
    frame = pd.DataFrame({
        "ts": returns.index,
        "sharpe": (rolling.mean() / std.where(std > 0) * np.sqrt(ppy)).to_numpy(),
        "volatility": (std * np.sqrt(ppy) * 100).to_numpy(),
    })
    sharpe = hv.Curve(frame, TIME, hv.Dimension("sharpe", label="Rolling Sharpe"),
                      label=f"Sharpe ({ROLLING_DAYS} d)").opts(color="#2ca02c")
    vol = hv.Curve(frame, TIME, hv.Dimension("volatility", label="Rolling volatility (%)"),
                   label=f"Volatility % ({ROLLING_DAYS} d)").opts(color="#ff7f0e")
    return (sharpe * vol).opts(**_time_opts(200, f"Rolling {ROLLING_DAYS}-day Sharpe and volatility"),
                               legend_position="top_left", multi_y=True)


def time_charts(results, log: bool = False) -> hv.Layout:
    """Equity, drawdown, price and position charts, linked in zoom (shared time axis)."""
    return (equity_chart(results, log) + drawdown_chart(results) + price_chart(results)
            + position_chart(results) + rolling_chart(results)).cols(1).opts(shared_axes=True)


def distribution_charts(results) -> hv.Layout:
    return (monthly_heatmap(results.statistics) + yearly_bars(results.statistics)
            + returns_histogram(results)).cols(3).opts(shared_axes=False)


def comparison_charts(all_results: list) -> hv.Layout:
    """Equity (as % return, so different balances and currencies compare) and drawdown overlaid."""
    equity_curves, drawdown_curves = [], []
    for i, results in enumerate(all_results):
        frame = results.equity.reset_index()
        start = results.statistics.get("starting_balance") or float(frame["equity"].iloc[0])
        frame["return_pct"] = (frame["equity"] / start - 1) * 100
        frame["drawdown_pct"] = frame["drawdown"] * 100
        label = f"{results.info.run_id} {results.info.strategy}"
        color = PALETTE[i % len(PALETTE)]
        equity_curves.append(hv.Curve(minmax_decimate(frame, "return_pct", MAX_CHART_POINTS), TIME,
                                      hv.Dimension("return_pct", label="Return (%)"),
                                      label=label).opts(color=color))
        drawdown_curves.append(hv.Curve(minmax_decimate(frame, "drawdown_pct", MAX_CHART_POINTS), TIME,
                                        hv.Dimension("drawdown_pct", label="Drawdown (%)"),
                                        label=label).opts(color=color))
    return (hv.Overlay(equity_curves).opts(**_time_opts(300, "Return on starting balance (%)"),
                                           legend_position="top_left")
            + hv.Overlay(drawdown_curves).opts(**_time_opts(200, "Drawdown (%)"), show_legend=False)
            ).cols(1).opts(shared_axes=True)

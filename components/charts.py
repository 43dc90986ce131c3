"""Bokeh charts of backtest results, shared by the ResultsViewer, the comparison view and the
standalone HTML report.

Built directly from Bokeh models (one ColumnDataSource per glyph, numeric columns only), not
through HoloViews: a report renders in a fraction of the time and ships nothing but the points
drawn. Time series are decimated (extremes kept) so that no chart ships more than a few thousand
points, whatever the run's length; the time charts of one layout share one x range, so zooming
one zooms them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from bokeh.layouts import column, row
from bokeh.models import (
    BoxAnnotation,
    ColorBar,
    ColumnDataSource,
    DataRange1d,
    FactorRange,
    HoverTool,
    Label,
    LinearAxis,
    LinearColorMapper,
    NumeralTickFormatter,
    Range1d,
    Span,
)
from bokeh.palettes import RdYlGn11
from bokeh.plotting import figure

from components.formats import plain_ticks, run_names
from services.backtest.downsample import minmax_indices
from services.backtest.statistics import daily_returns
from services.formatting import format_number, format_ratio, numeral_format

# Points per time chart: enough for a sharp 4K-wide line, small enough for any browser.
MAX_CHART_POINTS = 4000
# Fill markers drawn on the price chart; beyond this they are thinned (tables keep every fill).
MAX_FILL_MARKERS = 5000
ROLLING_DAYS = 30
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
PRICE_TITLE = "Price with entries and exits"
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_TOOLS = "pan,box_zoom,wheel_zoom,reset,save"
_EPOCH = pd.Timestamp(0, tz="UTC")
_MS = pd.Timedelta(milliseconds=1)
_TIME_TOOLTIP = ("Time", "@ts{%F %T}")


def _ms(times) -> np.ndarray:
    """Epoch milliseconds of UTC timestamps, whatever their resolution: what a datetime axis
    reads, sent to the browser as one binary float64 array."""
    times = pd.DatetimeIndex(pd.to_datetime(times, utc=True))
    return ((times - _EPOCH) / _MS).to_numpy(dtype="float64", na_value=np.nan)


def _values(series) -> np.ndarray:
    return pd.Series(series).to_numpy(dtype="float64", na_value=np.nan)


def _source(times, **columns) -> ColumnDataSource:
    return ColumnDataSource({"ts": _ms(times), **{k: _values(v) for k, v in columns.items()}})


@dataclass(frozen=True)
class Bars:
    """A run's per-bar series as float64 arrays (time in epoch ms), converted once for all of
    its charts; each chart decimates the columns it draws."""

    ts: np.ndarray
    columns: dict[str, np.ndarray]

    @classmethod
    def of(cls, results, xlim: tuple | None = None) -> Bars:
        equity = results.equity
        if xlim is not None:
            equity = equity.loc[xlim[0]:xlim[1]]
        columns = {name: equity[name].to_numpy(dtype="float64", na_value=np.nan)
                   for name in ("equity", "close", "position", "drawdown")}
        start = results.statistics.get("starting_balance") or (
            float(columns["equity"][0]) if len(equity) else 1.0)
        first_close = float(results.equity["close"].iloc[0]) if len(results.equity) else 0.0
        columns["benchmark"] = (start * columns["close"] / first_close if first_close
                                else np.full(len(equity), np.nan))
        columns["drawdown_pct"] = columns["drawdown"] * 100
        return cls(_ms(equity.index), columns)

    def source(self, *names: str) -> ColumnDataSource:
        """The decimated series ``names`` (extremes of the first kept) with their times."""
        keep = minmax_indices(self.columns[names[0]], MAX_CHART_POINTS)
        return ColumnDataSource({"ts": self.ts[keep], **{n: self.columns[n][keep] for n in names}})

    def x_range(self) -> Range1d:
        """The x range the time charts of one layout share (zoom one, the others follow)."""
        start, end = (float(self.ts[0]), float(self.ts[-1])) if len(self.ts) else (0.0, 1.0)
        return Range1d(start, end if end > start else start + 60_000.0)


def _time_figure(title: str, height: int, y_label: str, x_range, log: bool = False):
    fig = figure(title=title, height=height, sizing_mode="stretch_width", x_axis_type="datetime",
                 y_axis_type="log" if log else "linear", x_range=x_range, tools=_TOOLS,
                 active_drag="box_zoom", x_axis_label="Time (UTC)", y_axis_label=y_label,
                 min_border_left=70)
    fig.toolbar.logo = None
    if not log:
        fig.yaxis.formatter = plain_ticks()
    return fig


def _hover(fig, renderers: list, *tooltips: tuple[str, str]) -> None:
    fig.add_tools(HoverTool(renderers=renderers, tooltips=[_TIME_TOOLTIP, *tooltips],
                            formatters={"@ts": "datetime"}, mode="vline"))


def _legend(fig) -> None:
    """The legend above the plot, in one line: never over the data, and the linked time charts
    keep one plot width (a legend at the side would shift their x axes apart)."""
    legend = fig.legend[0]
    if legend in fig.center:
        fig.center.remove(legend)
    legend.orientation = "horizontal"
    legend.location = "top_left"
    legend.click_policy = "hide"
    legend.margin = 0
    legend.padding = 2
    fig.add_layout(legend, "above")


def equity_chart(results, bars: Bars, x_range, log: bool = False):
    currency = results.summary.get("currency", "")
    fig = _time_figure("Mark-to-market equity vs buy-and-hold" + (" (log)" if log else ""), 280,
                       f"Equity ({currency})", x_range, log=log)
    line = fig.line("ts", "equity", source=bars.source("equity"), color=PALETTE[0],
                    line_width=2, legend_label="Strategy", name="equity")
    fig.line("ts", "benchmark", source=bars.source("benchmark"), color="#999999",
             line_dash="dashed", legend_label="Buy and hold", name="benchmark")
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    _hover(fig, [line], ("Equity", "@equity{0,0.00}"))
    _legend(fig)
    return fig


def drawdown_chart(results, bars: Bars, x_range):
    fig = _time_figure("Underwater (worst 5 drawdowns shaded)", 180, "Drawdown (%)", x_range)
    source = bars.source("drawdown_pct")
    source.data["zero"] = np.zeros(len(source.data["ts"]))
    area = fig.varea("ts", y1="zero", y2="drawdown_pct", source=source, color="#d62728",
                     alpha=0.55, name="drawdown")
    end = float(bars.ts[-1]) if len(bars.ts) else None
    for period in results.statistics.get("worst_drawdowns", []):
        left = float(_ms([period["peak"]])[0])
        right = float(_ms([period["recovery"]])[0]) if period["recovery"] else end
        if right is not None:
            fig.add_layout(BoxAnnotation(left=left, right=right, fill_color="#d62728",
                                         fill_alpha=0.08, line_alpha=0))
    _hover(fig, [area], ("Drawdown", "@drawdown_pct{0.00}%"))
    return fig


def price_chart(results, xlim: tuple | None = None, x_range=None, bars: Bars | None = None):
    """Close with every fill marked. ``xlim`` (a trade's window) slices before decimating, so a
    zoomed window shows every bar inside it."""
    fills = results.fills
    if xlim is not None:
        bars = Bars.of(results, xlim)
        fills = fills[(fills["ts"] >= xlim[0]) & (fills["ts"] <= xlim[1])]
        x_range = Range1d(*_ms(list(xlim)))
    bars = bars or Bars.of(results)
    fig = _time_figure(PRICE_TITLE, 300, "Price", x_range or bars.x_range())
    holes = results.summary.get("data_holes", [])
    close = _broken_at_holes(bars.source("close"), holes)
    line = fig.line("ts", "close", source=close, color="#555555", line_width=1,
                    legend_label="Close", name="close")
    for after, until in holes:  # shaded: the market was open and the data has no bar
        left, right = _ms([after, until])
        fig.add_layout(BoxAnnotation(left=float(left), right=float(right), fill_color="#c0392b",
                                     fill_alpha=0.07, line_alpha=0))
    if len(fills) > MAX_FILL_MARKERS:
        fills = fills.iloc[:: len(fills) // MAX_FILL_MARKERS + 1]
    markers = []
    for side, marker, color in (("BUY", "triangle", "#2ca02c"),
                                ("SELL", "inverted_triangle", "#d62728")):
        side_fills = fills[fills["side"] == side]
        source = _source(side_fills["ts"], price=side_fills["price"],
                         quantity=side_fills["quantity"])
        markers.append(fig.scatter("ts", "price", source=source, marker=marker, size=9,
                                   color=color, legend_label=side.title(), name=side.lower()))
    price_digits, size_digits = results.precisions()
    price_format, size_format = numeral_format(price_digits), numeral_format(size_digits)
    _hover(fig, [line], ("Close", f"@close{{{price_format}}}"))
    fig.add_tools(HoverTool(renderers=markers, tooltips=[
        _TIME_TOOLTIP, ("Price", f"@price{{{price_format}}}"),
        ("Quantity", f"@quantity{{{size_format}}}")],
        formatters={"@ts": "datetime"}))
    _legend(fig)
    return fig


def _broken_at_holes(source: ColumnDataSource, holes: list) -> ColumnDataSource:
    """``source`` with a gap (NaN) inside each hole of the data, so the line does not draw a
    straight stroke across months without a bar. ``holes``: [after, until] ISO pairs."""
    if not holes:
        return source
    inside = _ms([pd.Timestamp(a) + (pd.Timestamp(u) - pd.Timestamp(a)) / 2 for a, u in holes])
    data = source.data
    ts = np.concatenate([data["ts"], inside])
    order = np.argsort(ts, kind="stable")
    columns = {name: np.concatenate([values, np.full(len(inside), np.nan)])[order]
               for name, values in data.items() if name != "ts"}
    return ColumnDataSource({"ts": ts[order], **columns})


def position_chart(bars: Bars, x_range, size_digits: int = 4):
    fig = _time_figure("Net position", 130, "Position", x_range)
    step = fig.step("ts", "position", source=bars.source("position"), mode="after",
                    color="#9467bd", name="position")
    _hover(fig, [step], ("Position", f"@position{{{numeral_format(size_digits)}}}"))
    return fig


def rolling_frame(results) -> pd.DataFrame:
    """Rolling Sharpe and volatility (%) of the daily returns of the last ``ROLLING_DAYS``
    calendar days; empty (NaN) until the first full window, so a "30-day" value always
    covers 30 days."""
    returns = daily_returns(results.equity["equity"], results.statistics.get("starting_balance"))
    ppy = results.statistics.get("periods_per_year") or 365.0
    rolling = returns.rolling(f"{ROLLING_DAYS}D", min_periods=2)
    mean, std = rolling.mean(), rolling.std()
    if len(returns):
        full = returns.index >= returns.index[0] + pd.Timedelta(days=ROLLING_DAYS - 1)
        mean, std = mean.where(full), std.where(full)
    return pd.DataFrame({
        "ts": returns.index,
        "sharpe": (mean / std.where(std > 0) * np.sqrt(ppy)).to_numpy(),
        "volatility": (std * np.sqrt(ppy) * 100).to_numpy(),
    })


def rolling_chart(results, x_range):
    frame = rolling_frame(results)
    source = _source(frame["ts"], sharpe=frame["sharpe"], volatility=frame["volatility"])
    fig = _time_figure(f"Rolling {ROLLING_DAYS}-day Sharpe and volatility", 200, "Rolling Sharpe",
                       x_range)
    sharpe = fig.line("ts", "sharpe", source=source, color="#2ca02c",
                      legend_label=f"Sharpe ({ROLLING_DAYS} d)", name="sharpe")
    # Volatility on its own axis (right): the two are on different scales.
    fig.extra_y_ranges = {"volatility": DataRange1d()}
    vol = fig.line("ts", "volatility", source=source, color="#ff7f0e", y_range_name="volatility",
                   legend_label=f"Volatility % ({ROLLING_DAYS} d)", name="volatility")
    fig.y_range = DataRange1d(renderers=[sharpe])
    fig.extra_y_ranges["volatility"].renderers = [vol]
    fig.add_layout(LinearAxis(y_range_name="volatility", axis_label="Rolling volatility (%)",
                              formatter=plain_ticks()), "right")
    _hover(fig, [sharpe], ("Sharpe", "@sharpe{0.00}"), ("Volatility", "@volatility{0.00}%"))
    _legend(fig)
    if not frame["volatility"].notna().any():
        fig.add_layout(Label(x=80, y=60, x_units="screen", y_units="screen", name="no-data",
                             text=f"Needs {ROLLING_DAYS} days of returns; this run has "
                                  f"{_days(frame['ts'])}", text_color="#8a8f98",
                             text_font_size="11pt"))
    return fig


def _days(ts: pd.Series) -> str:
    if not len(ts):
        return "none"
    days = (ts.iloc[-1] - ts.iloc[0]).days + 1
    return f"{days} day{'s' if days != 1 else ''}"


def time_charts(results, log: bool = False):
    """Equity, drawdown, price, position and rolling charts, linked in zoom (one x range)."""
    bars = Bars.of(results)
    x_range = bars.x_range()
    return column(equity_chart(results, bars, x_range, log), drawdown_chart(results, bars, x_range),
                  price_chart(results, x_range=x_range, bars=bars),
                  position_chart(bars, x_range, results.precisions()[1]),
                  rolling_chart(results, x_range), sizing_mode="stretch_width")


def monthly_heatmap(statistics: dict):
    cells = []
    for key, value in (statistics.get("monthly_returns") or {}).items():
        year, month = key.split("-")
        cells.append((_MONTHS[int(month) - 1], year, np.nan if value is None else value * 100))
    frame = pd.DataFrame(cells, columns=["month", "year", "return_pct"])
    years = sorted(frame["year"].unique(), reverse=True)
    fig = figure(title="Monthly returns (%)", height=max(220, 60 + 28 * len(years)),
                 sizing_mode="stretch_width", x_range=FactorRange(*_MONTHS),
                 y_range=FactorRange(*years), tools="hover,save", toolbar_location="right",
                 tooltips=[("Month", "@month @year"), ("Return", "@label%")])
    fig.toolbar.logo = None
    extreme = float(np.nanmax(np.abs(frame["return_pct"]))) if frame["return_pct"].notna().any() else 1.0
    mapper = LinearColorMapper(palette=list(reversed(RdYlGn11)), low=-extreme or -1.0,
                               high=extreme or 1.0, nan_color="#eeeeee")
    source = ColumnDataSource({
        "month": frame["month"].tolist(), "year": frame["year"].tolist(),
        "return_pct": _values(frame["return_pct"]),
        "label": [format_number(v, 1) for v in frame["return_pct"]],  # never "-0.0"
    })
    fig.rect("month", "year", 1, 1, source=source, line_color="white",
             fill_color={"field": "return_pct", "transform": mapper}, name="months")
    fig.text("month", "year", text="label", source=source, text_align="center",
             text_baseline="middle", text_font_size="8pt", text_color="black")
    fig.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
    fig.grid.visible = False
    fig.axis.axis_line_color = None
    fig.axis.major_tick_line_color = None
    return fig


def yearly_bars(statistics: dict):
    years = [(str(y), (v or 0.0) * 100) for y, v in (statistics.get("yearly_returns") or {}).items()]
    fig = figure(title="Yearly returns (%)", height=220, sizing_mode="stretch_width",
                 x_range=FactorRange(*[y for y, _ in years]), tools="hover,save",
                 tooltips=[("Year", "@year"), ("Return", "@return_pct{0.00}%")],
                 y_axis_label="Return (%)")
    fig.toolbar.logo = None
    source = ColumnDataSource({
        "year": [y for y, _ in years], "return_pct": np.array([v for _, v in years], dtype=float),
        "color": ["#2ca02c" if v >= 0 else "#d62728" for _, v in years]})
    fig.vbar(x="year", top="return_pct", width=0.7, color="color", source=source, name="years")
    fig.xgrid.visible = False
    fig.yaxis.formatter = plain_ticks()
    return fig


def returns_histogram(results):
    returns = daily_returns(results.equity["equity"], results.statistics.get("starting_balance")) * 100
    values = returns.to_numpy(dtype="float64")
    bins = max(10, min(60, int(np.sqrt(max(len(values), 1))) * 2))
    counts, edges = (np.histogram(values, bins=bins) if len(values)
                     else (np.array([]), np.array([0.0, 1.0])))
    fig = figure(title="Distribution of daily returns", height=220, sizing_mode="stretch_width",
                 tools="hover,save", x_axis_label="Daily return (%)", y_axis_label="Days",
                 tooltips=[("Return", "@left{0.00}% to @right{0.00}%"), ("Days", "@days")])
    fig.toolbar.logo = None
    source = ColumnDataSource({"left": edges[:-1].astype(float), "right": edges[1:].astype(float),
                               "days": counts.astype(float)})
    fig.quad(left="left", right="right", bottom=0, top="days", source=source, color="#1f77b4",
             line_color="white", name="days")
    fig.xaxis.formatter, fig.yaxis.formatter = plain_ticks(), plain_ticks()
    return fig


def distribution_charts(results):
    return row(monthly_heatmap(results.statistics), yearly_bars(results.statistics),
               returns_histogram(results), sizing_mode="stretch_width")


def comparison_charts(all_results: list):
    """Equity (as % return, so different balances and currencies compare) and drawdown overlaid."""
    all_bars = []
    for results in all_results:
        bars = Bars.of(results)
        start = results.statistics.get("starting_balance") or (
            float(bars.columns["equity"][0]) if len(bars.ts) else 1.0)
        bars.columns["return_pct"] = (bars.columns["equity"] / start - 1) * 100
        all_bars.append(bars)
    spans = [(b.ts[0], b.ts[-1]) for b in all_bars if len(b.ts)]
    x_range = Bars(np.array([min(s for s, _ in spans), max(e for _, e in spans)]) if spans
                   else np.array([]), {}).x_range()
    returns = _time_figure("Return on starting balance (%)", 300, "Return (%)", x_range)
    drawdowns = _time_figure("Drawdown (%)", 200, "Drawdown (%)", x_range)
    lines = []
    names = run_names([results.info for results in all_results])
    for i, (bars, label) in enumerate(zip(all_bars, names, strict=True)):
        color = PALETTE[i % len(PALETTE)]
        lines.append(returns.line("ts", "return_pct", source=bars.source("return_pct"),
                                  color=color, legend_label=label))
        drawdowns.line("ts", "drawdown_pct", source=bars.source("drawdown_pct"), color=color)
    _hover(returns, lines, ("Return", "@return_pct{0.00}%"))
    _legend(returns)
    return column(returns, drawdowns, sizing_mode="stretch_width")


# -- robustness: Monte Carlo of trades, parameter grids, out-of-sample equity -----------------
def _thin(count: int, points: int = MAX_CHART_POINTS) -> np.ndarray:
    """Evenly spaced indices 0..count-1, the first and last kept (bands are smooth: no extremes
    to keep)."""
    if count <= points:
        return np.arange(count)
    return np.unique(np.r_[np.linspace(0, count - 1, points).astype(int), count - 1])


def monte_carlo_bands_chart(monte_carlo, starting_balance: float, currency: str = ""):
    """The run's equity after each trade inside the 5-95 % band of the simulated paths."""
    bands = monte_carlo.bands
    keep = _thin(len(bands))
    scale = starting_balance or 1.0
    source = ColumnDataSource({
        "trade": bands.index.to_numpy(dtype="float64")[keep],
        **{name: bands[name].to_numpy(dtype="float64")[keep] * scale
           for name in ("p5", "p50", "p95", "actual")}})
    how = "resampled" if monte_carlo.method == "bootstrap" else "shuffled"
    fig = figure(title=f"Equity after each trade: the run and {monte_carlo.paths:,} {how} paths "
                       "(5-95 % band, median)", height=300, sizing_mode="stretch_width",
                 tools=_TOOLS, x_axis_label="Trade", y_axis_label=f"Equity ({currency})".strip(),
                 min_border_left=70)
    fig.toolbar.logo = None
    fig.varea("trade", y1="p5", y2="p95", source=source, color=PALETTE[0], alpha=0.18,
              legend_label="5-95 % of paths", name="band")
    fig.line("trade", "p50", source=source, color=PALETTE[0], line_dash="dashed",
             legend_label="Median path", name="median")
    actual = fig.line("trade", "actual", source=source, color="#222222", line_width=2,
                      legend_label="This run", name="actual")
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    fig.add_tools(HoverTool(renderers=[actual], mode="vline", tooltips=[
        ("Trade", "@trade{0,0}"), ("Run", "@actual{0,0.00}"), ("5 %", "@p5{0,0.00}"),
        ("Median", "@p50{0,0.00}"), ("95 %", "@p95{0,0.00}")]))
    _legend(fig)
    return fig


def distribution_chart(distribution, title: str, x_label: str, scale: float = 1.0):
    """Histogram of a figure over the simulated paths, with the run's own value and the 5 % and
    95 % quantiles marked."""
    values = np.asarray(distribution.values, dtype="float64") * scale
    finite = values[np.isfinite(values)]
    if finite.size and np.ptp(finite) > 0:
        counts, edges = np.histogram(finite, bins=40)
    else:  # every path alike (shuffled trades all end on the same return)
        centre = float(finite[0]) if finite.size else 0.0
        half = max(abs(centre) * 0.01, 1e-9)
        counts, edges = np.array([finite.size]), np.array([centre - half, centre + half])
    fig = figure(title=title, height=220, sizing_mode="stretch_width", tools="hover,save",
                 x_axis_label=x_label, y_axis_label="Paths",
                 tooltips=[("From", "@left{0,0.00}"), ("To", "@right{0,0.00}"), ("Paths", "@paths")])
    fig.toolbar.logo = None
    source = ColumnDataSource({"left": edges[:-1].astype(float), "right": edges[1:].astype(float),
                               "paths": counts.astype(float)})
    fig.quad(left="left", right="right", bottom=0, top="paths", source=source,
             color=PALETTE[0], alpha=0.7, line_color="white", name="paths")
    fig.xaxis.formatter, fig.yaxis.formatter = plain_ticks(), plain_ticks()
    for value, color, dash in ((distribution.actual * scale, "#222222", "solid"),
                               (distribution.p5 * scale, "#d62728", "dashed"),
                               (distribution.p95 * scale, "#2ca02c", "dashed")):
        if np.isfinite(value):
            fig.add_layout(Span(location=float(value), dimension="height", line_color=color,
                                line_dash=dash, line_width=2))
    return fig


def monte_carlo_charts(monte_carlo, starting_balance: float, currency: str = ""):
    """Bands around the equity after each trade, and the distributions of final return, max
    drawdown and longest drawdown (black: the run; dashed: 5 % and 95 %)."""
    return column(
        monte_carlo_bands_chart(monte_carlo, starting_balance, currency),
        row(distribution_chart(monte_carlo.final_return, "Final return", "Return (%)", 100),
            distribution_chart(monte_carlo.max_drawdown, "Max drawdown", "Drawdown (%)", 100),
            distribution_chart(monte_carlo.longest_drawdown, "Longest drawdown",
                               "Trades under water"),
            sizing_mode="stretch_width"),
        sizing_mode="stretch_width")


def grid_heatmap(grid: pd.DataFrame, title: str, value_label: str, reverse: bool = False,
                 percent: bool = False):
    """A value over two parameters (``grid``: rows y, columns x, as pandas' pivot gives), each
    cell labelled; ``reverse`` puts red on high values (for drops, where lower is better)."""
    x_name, y_name = grid.columns.name or "x", grid.index.name or "y"
    cells = grid.stack(future_stack=True).rename("value").reset_index()
    cells.columns = ["y", "x", "value"]
    xs = [str(v) for v in grid.columns]
    ys = [str(v) for v in grid.index]
    values = cells["value"].to_numpy(dtype="float64") * (100 if percent else 1)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high <= low:
        low, high = low - 1.0, high + 1.0
    palette = list(RdYlGn11) if reverse else list(reversed(RdYlGn11))
    mapper = LinearColorMapper(palette=palette, low=low, high=high, nan_color="#eeeeee")
    fig = figure(title=title, height=max(260, 80 + 34 * len(ys)), sizing_mode="stretch_width",
                 x_range=FactorRange(*xs), y_range=FactorRange(*ys), tools="hover,save",
                 x_axis_label=x_name, y_axis_label=y_name,
                 tooltips=[(x_name, "@x"), (y_name, "@y"), (value_label, "@label")])
    fig.toolbar.logo = None
    source = ColumnDataSource({
        "x": cells["x"].astype(str).tolist(), "y": cells["y"].astype(str).tolist(),
        "value": values,
        "label": [format_number(v, 2) if percent else format_ratio(v) for v in values]})
    fig.rect("x", "y", 1, 1, source=source, line_color="white",
             fill_color={"field": "value", "transform": mapper}, name="cells")
    fig.text("x", "y", text="label", source=source, text_align="center",
             text_baseline="middle", text_font_size="8pt", text_color="black")
    fig.add_layout(ColorBar(color_mapper=mapper, width=10), "right")
    fig.grid.visible = False
    return fig


def equity_curve_chart(equity: pd.Series, title: str, currency: str = "",
                       boundaries: list | None = None):
    """One equity curve over time (decimated, extremes kept), with optional vertical lines at
    ``boundaries`` (e.g. where each walk-forward test window starts)."""
    values = equity.to_numpy(dtype="float64")
    keep = minmax_indices(values, MAX_CHART_POINTS) if len(values) else np.arange(0)
    times = _ms(equity.index)
    fig = _time_figure(title, 280, f"Equity ({currency})".strip(),
                       Bars(times, {}).x_range())
    source = ColumnDataSource({"ts": times[keep], "equity": values[keep]})
    line = fig.line("ts", "equity", source=source, color=PALETTE[0], line_width=2, name="equity")
    for boundary in boundaries or []:
        fig.add_layout(Span(location=float(_ms([boundary])[0]), dimension="height",
                            line_color="#999999", line_dash="dotted"))
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    _hover(fig, [line], ("Equity", "@equity{0,0.00}"))
    return fig

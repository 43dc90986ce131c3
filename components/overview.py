"""What is going on now: engines with their state and PnL, the backtest queue, the last runs,
and the data catalog — from the process-level live state, redrawn when it changes."""

from __future__ import annotations

import html

import panel as pn
import param
from panel.viewable import Viewer

from components.formats import run_name
from components.live import follow
from components.theme import RUN_STATE_COLOURS, signed_colour, state_badge
from services import Workbench, WorkbenchError
from services.backtest.metric_labels import format_statistic
from services.identity.principal import Principal

LAST_RUNS = 8
_CSS = [
    ".overview-grid {display: grid; grid-template-columns: 1fr 1fr; gap: 12px 28px;}"
    ".overview-grid h3 {margin: 4px 0 6px 0; font-size: 1.1em;}"
    ".overview-grid table {border-collapse: collapse; width: 100%;}"
    ".overview-grid th {text-align: left; font-weight: 600; opacity: 0.75; padding: 3px 6px;}"
    ".overview-grid td {padding: 3px 6px; border-top: 1px solid var(--neutral-stroke-rest,"
    " #e2e2e2);}"
    ".overview-grid td.num {text-align: right; font-variant-numeric: tabular-nums;}"
    ".overview-grid .empty {opacity: 0.7;}"
    ".queue-counts > span {margin-right: 18px;}"
    # The theme's link colour: the browser's default blue is unreadable on the dark theme.
    "a {color: var(--bs-link-color, #0f6e8c);}"]

_ACTIVE_ENGINE_STATES = ("Starting", "Running", "Stopping", "Error")


def _table(heads: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{h}</th>" for h in heads)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pnl(value) -> str:
    if not isinstance(value, (int, float)):
        return "–"
    return f'<span style="color:{signed_colour(value)}">{value:,.2f}</span>'


class Overview(Viewer):
    """The start page: engines, queue, last runs and data at a glance."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the figures come from.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        The signed-in user (nothing here is an action; kept for the page's header).""")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("Overview needs a workbench (services.Workbench.open()).")
        self.live = self.workbench.live.start()
        self._now = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=_CSS,
                                 css_classes=["overview-now"])
        self._data = pn.pane.HTML(self._data_html(), sizing_mode="stretch_width",
                                  stylesheets=_CSS, css_classes=["overview-data"])
        self._layout = pn.Column(
            pn.pane.Markdown("## Nautilus Workbench\nConfigure, run and study NautilusTrader "
                             "backtests on the **Backtest** and **Sweeps** pages, study them "
                             "on **Results**; run paper and live engines on **Engines**.",
                             sizing_mode="stretch_width"),
            self._now, self._data, sizing_mode="stretch_width")
        self._redraw()
        follow(self.live, ["runs", "engines", "scheduler"], self._redraw)

    def __panel__(self):
        return self._layout

    def _redraw(self) -> None:
        self._now.object = ('<div class="overview-grid">' + self._engines_html()
                            + self._queue_html() + "</div>")

    def _engines_html(self) -> str:
        e = html.escape
        engines = sorted((i for i in self.live.engines.values()
                          if i.state in _ACTIVE_ENGINE_STATES),
                         key=lambda i: i.created_at, reverse=True)
        if not engines:
            body = '<p class="empty">No engine is running. Start a paper engine on ' \
                   "<b>Engines</b>.</p>"
        else:
            body = _table(["Engine", "Mode", "State", "Realized PnL", "Unrealized PnL"], [
                [f'<a href="./engines">{e(i.name)}</a>', e(i.mode), state_badge(i.state),
                 _pnl(i.status.get("realized_pnl")), _pnl(i.status.get("unrealized_pnl"))]
                for i in engines], numeric={3, 4})
        return f"<div><h3>Engines running now</h3>{body}</div>"

    def _queue_html(self) -> str:
        e = html.escape
        runs = self.live.runs
        counts = {status: sum(1 for r in runs if r.status == status)
                  for status in ("Running", "Paused", "Queued")}
        scheduler = (f"Scheduler: {e(self.live.scheduler)}" if self.live.scheduler
                     else "No scheduler runs: queued runs wait for the server or "
                          "<code>nautilus-workbench scheduler</code>.")
        counts_html = "".join(f"<span>{state_badge(s, RUN_STATE_COLOURS)}: {n}</span>"
                              for s, n in counts.items())
        finished = [r for r in runs if r.status not in ("Running", "Paused", "Queued")]
        finished.sort(key=lambda r: r.finished_at or r.created_at, reverse=True)
        if finished:
            last = _table(["Run", "Status", "Return", "Sharpe"], [
                [f'<a href="./results?run={e(r.run_id)}" title="{e(r.run_id)}">'
                 f"{e(run_name(r))}</a>", state_badge(r.status, RUN_STATE_COLOURS),
                 f'<span style="color:{signed_colour(r.total_return)}">'
                 f"{e(format_statistic('total_return', r.total_return))}</span>",
                 e(format_statistic("sharpe", r.sharpe))]
                for r in finished[:LAST_RUNS]], numeric={2, 3})
        else:
            last = '<p class="empty">No runs yet: run one on the <b>Backtest</b> page.</p>'
        return (f'<div><h3>Backtest queue</h3><div class="queue-counts">{counts_html}</div>'
                f"<p>{scheduler}</p><h3>Last runs</h3>{last}</div>")

    def _data_html(self) -> str:
        e = html.escape
        catalog = self.workbench.catalog
        try:
            series = catalog.series()
        except WorkbenchError as error:
            return f'<div><h3>Data catalog</h3><p class="empty">{e(str(error))}</p></div>'
        kind = ("Sample catalog: synthetic sample data from a fixed seed (not market data), "
                "except what was imported; the Catalog page labels each series"
                if catalog.is_sample else "Market data")
        rows = [[e(s.key), e(s.data_type), f"{s.first:%Y-%m-%d %H:%M}",
                 f"{s.last:%Y-%m-%d %H:%M}", f"{s.rows:,}", f"{s.bytes / 1e6:,.1f}"]
                for s in series]
        table = (_table(["Series", "Type", "First (UTC)", "Last (UTC)", "Rows", "MB"], rows,
                        numeric={4, 5})
                 if rows else '<p class="empty">The catalog holds no data: import some on '
                              "<b>Catalog</b>.</p>")
        return (f'<div class="overview-grid" style="grid-template-columns: 1fr"><div>'
                f"<h3>Data catalog</h3><p><code>{e(str(catalog.location))}</code> · {kind}</p>"
                f"{table}</div></div>")


__all__ = ["Overview"]

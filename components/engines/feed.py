"""Feed health of one engine: per instrument the age of the last update, the latency
(ts_init - ts_event, last and worst), gaps; the data clients' connections."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.engines.common import frame
from components.live import follow
from services.live import LiveState

COLUMNS = ["Instrument", "Last update (s ago)", "Latency (ms)", "Worst (ms)", "Updates", "Gaps"]


class FeedHealthView(Viewer):
    live = param.ClassSelector(class_=LiveState, doc="The live state the view follows.")

    session_id = param.String(default=None, allow_None=True, doc="The engine shown.")

    def __init__(self, **params):
        super().__init__(**params)
        self._table = pn.widgets.Tabulator(frame([], COLUMNS), show_index=False, disabled=True,
                                           sizing_mode="stretch_width",
                                           css_classes=["feed-health"])
        self._clients = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._layout = pn.Column(self._table, self._clients, sizing_mode="stretch_width")
        follow(self.live, ["engines"], self._redraw)
        self._redraw()

    def __panel__(self):
        return self._layout

    @param.depends("session_id", watch=True)
    def _redraw(self) -> None:
        info = self.live.engines.get(self.session_id) if self.session_id else None
        feed = (info.status.get("feed") if info is not None else None) or {}
        self._table.value = frame([{
            "Instrument": instrument, "Last update (s ago)": health["age_s"],
            "Latency (ms)": health["latency_ms"], "Worst (ms)": health["latency_max_ms"],
            "Updates": health["updates"], "Gaps": health["gaps"]}
            for instrument, health in (feed.get("instruments") or {}).items()], COLUMNS)
        clients = feed.get("clients") or {}
        self._clients.object = (
            "Data clients: " + ", ".join(f"{name} {'connected' if up else '**DISCONNECTED**'}"
                                         for name, up in clients.items())
            + f" · {feed.get('disconnections', 0)} disconnection(s) · a gap is more than "
              f"{feed.get('gap_seconds', 10):g} s without an update") if clients else ""

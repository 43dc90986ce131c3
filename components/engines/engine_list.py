"""The engine sessions, newest first, from the live state; selecting one selects it."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.engines.common import frame
from components.live import follow
from components.theme import state_badge
from services.live import LiveState

COLUMNS = ["State", "Name", "Mode", "Template", "Started (UTC)", "Session", "Actor"]


class EngineList(Viewer):
    """A table of engine sessions that follows the live state."""

    live = param.ClassSelector(class_=LiveState, doc="The live state the list follows.")

    selected = param.String(default=None, allow_None=True, doc="Session id of the chosen engine.")

    def __init__(self, **params):
        super().__init__(**params)
        self._sessions: list[str] = []
        self._table = pn.widgets.Tabulator(
            frame([], COLUMNS), show_index=False, disabled=True, selectable=1, pagination="local",
            page_size=10,
            sizing_mode="stretch_width", formatters={"State": {"type": "html"}},
            widths={"State": 115}, css_classes=["engine-list"])
        self._table.param.watch(self._on_selection, "selection")
        follow(self.live, ["engines"], self._redraw)
        self._redraw()

    def __panel__(self):
        return self._table

    def _redraw(self) -> None:
        engines = sorted(self.live.engines.values(), key=lambda i: i.created_at, reverse=True)
        self._sessions = [i.session_id for i in engines]
        table = frame([{
            "State": state_badge(i.state), "Name": i.name, "Mode": i.mode,
            "Template": i.template,
            "Started (UTC)": f"{(i.started_at or i.created_at):%Y-%m-%d %H:%M:%S}",
            "Session": i.session_id, "Actor": i.actor} for i in engines], COLUMNS)
        if not table.equals(self._table.value):
            self._table.value = table
        if self.selected is None and engines:
            active = [i for i in engines if i.is_active]
            self.selected = (active or engines)[0].session_id
        self._select_row()

    def _on_selection(self, event) -> None:
        if event.new and event.new[0] < len(self._sessions):
            chosen = self._sessions[event.new[0]]
            if chosen != self.selected:
                self.selected = chosen

    @param.depends("selected", watch=True)
    def _select_row(self) -> None:
        rows = [self._sessions.index(self.selected)] if self.selected in self._sessions else []
        if self._table.selection != rows:
            self._table.selection = rows

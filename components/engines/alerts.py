"""Alerts, newest first: those stored when the view opens, then each as it is raised."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.engines.common import frame
from components.live import follow
from services import Workbench, WorkbenchError
from services.live import LiveState

COLUMNS = ["Time (UTC)", "Severity", "Rule", "Engine", "Times", "Delivered", "Message"]


class AlertList(Viewer):
    workbench = param.ClassSelector(class_=Workbench, doc="Services alerts are read from.")

    live = param.ClassSelector(class_=LiveState, doc="The live state new alerts arrive in.")

    session_id = param.String(default=None, allow_None=True, doc="Only this engine's; None: all.")

    def __init__(self, **params):
        super().__init__(**params)
        self._stored: list[dict] = []
        try:
            self._stored = [a.to_json() for a in self.workbench.alerts.list(limit=100)]
        except WorkbenchError:
            self._stored = []
        self._table = pn.widgets.Tabulator(frame([], COLUMNS), show_index=False, disabled=True,
                                           height=220, sizing_mode="stretch_width",
                                           css_classes=["alert-list"])
        follow(self.live, ["alerts"], self._redraw)
        self._redraw()

    def __panel__(self):
        return self._table

    @param.depends("session_id", watch=True)
    def _redraw(self) -> None:
        seen, rows = set(), []
        for alert in [*self.live.alerts, *self._stored]:
            if alert["id"] in seen or (self.session_id and alert["session_id"] != self.session_id):
                continue
            seen.add(alert["id"])
            rows.append({"Time (UTC)": alert["first_at"][:19].replace("T", " "),
                         "Severity": alert["severity"], "Rule": alert["rule"],
                         "Engine": alert.get("engine") or "–", "Times": alert["occurrences"],
                         "Delivered": ", ".join(f"{k}: {v}" for k, v in
                                                alert["deliveries"].items()) or "–",
                         "Message": alert["message"]})
        self._table.value = frame(rows, COLUMNS)

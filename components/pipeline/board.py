"""Strategies and their versions as a pipeline (research -> paper -> live), and the versions
table a version is picked from."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.pipeline.model import PipelineModel
from components.theme import ACCENT, GAIN, NEUTRAL, WRAPPED_HEADERS

STAGES = ("research", "paper", "live")
STAGE_COLOURS = {"research": NEUTRAL, "paper": ACCENT, "live": GAIN}
COLUMNS = ["Version", "Strategy", "Bar type", "Stage", "Backtests", "Deployments",
           "Created (UTC)", "By", "Note"]
_CSS = """
.pipeline-board {display: flex; flex-direction: column; gap: 10px;}
.pipeline-strategy {border: 1px solid var(--neutral-stroke-rest, #ddd); border-radius: 6px;
 padding: 8px 10px;}
.pipeline-strategy h4 {margin: 0 0 6px 0; font-size: 1em;}
.pipeline-stages {display: grid; grid-template-columns: 1fr auto 1fr auto 1fr; gap: 8px;
 align-items: stretch;}
.pipeline-arrow {align-self: center; font-size: 1.6em; color: #888;}
.pipeline-stage {border-radius: 6px; padding: 6px; min-height: 44px;
 background: var(--neutral-layer-2, #f6f7f8);}
.pipeline-stage .title {font-size: 0.8em; text-transform: uppercase; font-weight: 600;}
.pipeline-chip {display: inline-block; margin: 3px 4px 0 0; padding: 1px 8px;
 border-radius: 10px; color: white; font-family: monospace; font-size: 0.85em;}
.pipeline-chip.selected {outline: 2px solid #222;}
.pipeline-chip.running::after {content: " ●"; color: #b6f5c6;}
"""


class PipelineBoard(Viewer):
    """Each strategy's versions in the stage they reached, and a table to pick one from."""

    model = param.ClassSelector(class_=PipelineModel, doc="The session's pipeline.")

    def __init__(self, **params):
        super().__init__(**params)
        self._ids: list[str] = []
        self._board = pn.pane.HTML("", stylesheets=[_CSS], sizing_mode="stretch_width",
                                   css_classes=["pipeline-board-pane"])
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=COLUMNS), show_index=False, disabled=True, selectable=1,
            sizing_mode="stretch_width", layout="fit_columns", pagination="local", page_size=5,
            # Bar type and note wrap, so the time and the note fit at 1280 px and above.
            widths={"Version": 115, "Strategy": 100, "Bar type": 195, "Stage": 80,
                    "Backtests": 100, "Deployments": 125, "Created (UTC)": 150, "By": 90},
            formatters={"Bar type": {"type": "textarea"}, "Note": {"type": "textarea"}},
            css_classes=["pipeline-versions"],
            configuration=WRAPPED_HEADERS)
        self._table.param.watch(self._picked, "selection")
        self._layout = pn.Column(self._board, self._table, sizing_mode="stretch_width")
        self.model.param.watch(lambda *_: self._draw(), ["versions", "version", "deployments"])
        self._draw()

    def __panel__(self):
        return self._layout

    def _draw(self) -> None:
        versions = self.model.versions
        running = {d.version_id for d in self.model.deployments if d.is_active}
        self._board.object = self._board_html(versions, running)
        self._ids = [v.version_id for v in versions]
        table = pd.DataFrame([{
            "Version": v.short_id, "Strategy": v.strategy, "Bar type": v.bar_type,
            "Stage": v.stage, "Backtests": len(v.completed_run_ids),
            "Deployments": len(v.deployment_ids),
            "Created (UTC)": f"{v.created_at:%Y-%m-%d %H:%M}", "By": v.created_by,
            "Note": v.note} for v in versions], columns=COLUMNS)
        if not table.equals(self._table.value):
            self._table.value = table
        self._table.visible = bool(versions)  # none: the board says how to make one
        rows = [self._ids.index(self.model.version)] if self.model.version in self._ids else []
        if self._table.selection != rows:
            self._table.selection = rows

    def _board_html(self, versions, running: set[str]) -> str:
        if not versions:
            return ("<p>No strategy versions yet. On the <b>Results</b> page, press <b>Create "
                    "version from this run</b>.</p>")
        strategies: dict[str, list] = {}
        for v in versions:
            strategies.setdefault(v.strategy_key, []).append(v)
        blocks = []
        for key, members in strategies.items():
            columns = []
            for stage in STAGES:
                chips = "".join(
                    f'<span class="pipeline-chip{" selected" if v.version_id == self.model.version else ""}'
                    f'{" running" if v.version_id in running else ""}" '
                    f'style="background:{STAGE_COLOURS[stage]}" title="{html.escape(v.note)}">'
                    f"{html.escape(v.short_id)}</span>"
                    for v in members if v.stage == stage)
                columns.append(f'<div class="pipeline-stage stage-{stage}" style="border-top: 3px '
                               f'solid {STAGE_COLOURS[stage]}"><div class="title">{stage}</div>'
                               f"{chips or '–'}</div>")
            arrow = '<div class="pipeline-arrow">&#10132;</div>'
            blocks.append(f'<div class="pipeline-strategy"><h4>{html.escape(key)}</h4>'
                          f'<div class="pipeline-stages">{arrow.join(columns)}</div></div>')
        return f'<div class="pipeline-board">{"".join(blocks)}</div>'

    def _picked(self, event) -> None:
        if event.new and event.new[0] < len(self._ids):
            chosen = self._ids[event.new[0]]
            if chosen != self.model.version:
                self.model.version = chosen

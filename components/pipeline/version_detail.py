"""One version: what it is (parameters, venue, NautilusTrader), its evidence, and its diff with
another version, side by side."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.pipeline.model import PipelineModel
from services.pipeline.content import diff

DIFF_COLUMNS = ["Section", "Field", "Selected", "Other"]


def _cell(value) -> str:
    text = "–" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


class VersionDetail(Viewer):
    """The selected version and what differs between it and another one."""

    model = param.ClassSelector(class_=PipelineModel, doc="The session's pipeline.")

    other = param.String(default=None, allow_None=True, doc="""
        The id of the version the selected one is compared with (None: none).""")

    differences = param.List(default=[], doc="Differences with ``other`` (read-only).")

    def __init__(self, **params):
        super().__init__(**params)
        self._summary = pn.pane.Markdown("", sizing_mode="stretch_width",
                                         css_classes=["version-summary"])
        self._diff = pn.widgets.Tabulator(pd.DataFrame(columns=DIFF_COLUMNS), show_index=False,
                                          disabled=True, sizing_mode="stretch_width",
                                          layout="fit_columns", pagination="local",
                                          page_size=10, visible=False,
                                          css_classes=["version-diff"])
        self._diff_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        # A plain Select: its options name versions by short id, strategy and stage.
        self._other = pn.widgets.Select(label="Compare with", options={"–": None}, width=320,
                                        css_classes=["version-compare"])
        self._other.param.watch(lambda event: setattr(self, "other", event.new), "value")
        self._layout = pn.Column(
            self._summary, self._other,
            self._diff_note, self._diff, sizing_mode="stretch_width")
        self.model.param.watch(lambda *_: self._draw(), ["versions", "version"])
        self._draw()

    def __panel__(self):
        return self._layout

    def _draw(self) -> None:
        version = self.model.selected_version()
        if version is None:
            self._summary.object = "Select a version."
            self._other.options = {"–": None}
            self.other = None
            return
        runs = ", ".join(f"[{r}](./results?run={r})" for r in version.completed_run_ids[-5:])
        parameters = ", ".join(f"`{k}={v}`" for k, v in version.parameters.items())
        venue = version.spec.get("venue", {})
        self._summary.object = (
            f"#### Version `{version.short_id}` · {version.stage}\n"
            f"{version.strategy} on `{version.bar_type}` · parameters {parameters}  \n"
            f"venue: {venue.get('oms_type')}, {venue.get('account_type')}, "
            f"{venue.get('starting_balance')} {venue.get('currency')}, fees "
            f"{venue.get('fee_model')} · NautilusTrader {version.nautilus_version}  \n"
            f"made {version.created_at:%Y-%m-%d %H:%M} UTC by {version.created_by}"
            + (f" from run [{version.source_run_id}](./results?run={version.source_run_id})"
               if version.source_run_id else "") + "  \n"
            f"evidence: {len(version.completed_run_ids)} completed backtest(s) {runs}"
            + (f"; sweeps {', '.join(version.sweep_ids)}" if version.sweep_ids else "")
            + (f"; deployments {', '.join(version.deployment_ids)}"
               if version.deployment_ids else "")
            + (f"  \nnote: {version.note}" if version.note else ""))
        others = {f"{v.short_id} ({v.strategy}, {v.stage})": v.version_id
                  for v in self.model.versions if v.version_id != version.version_id}
        keep, before = (self.other if self.other in others.values() else None), self.other
        self._other.options = {"–": None, **others}
        self._other.value = keep  # a change moves ``other``, which compares again
        if self.other == before:
            self._compare()

    @param.depends("other", watch=True)
    def _compare(self) -> None:
        version = self.model.selected_version()
        other = next((v for v in self.model.versions if v.version_id == self.other), None)
        if version is None or other is None:
            self.differences = []
            self._diff_note.object = "Pick a version to compare with."
            self._diff.value = pd.DataFrame(columns=DIFF_COLUMNS)
            self._diff.visible = False
            return
        found = diff(version.content, other.content)
        self.differences = found
        self._diff_note.object = (f"**{len(found)}** field(s) differ between "
                                  f"`{version.short_id}` and `{other.short_id}`."
                                  if found else "The two versions are identical.")
        self._diff.value = pd.DataFrame(
            [[d.section, d.field, _cell(d.left), _cell(d.right)] for d in found],
            columns=DIFF_COLUMNS)
        self._diff.titles = {"Selected": f"{version.short_id} (selected)",
                             "Other": other.short_id}
        self._diff.visible = bool(found)

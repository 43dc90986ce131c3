"""Promotion requests of the selected version: ask for paper or live (with the live risk
limits), see each request's gate checklist and decisions, approve or reject with a comment.
Every action asks for confirmation first."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import ConfirmAction, button
from components.permissions import reason_note
from components.pipeline.model import PipelineModel
from components.theme import WRAPPED_HEADERS

COLUMNS = ["Request", "Stage", "Status", "Approvals", "Gates", "By"]


def checklist_html(request) -> str:
    """The request's gates as a checklist, then its decisions."""
    lines = [f'<li class="{"gate-pass" if g.passed else "gate-fail"}">'
             f'{"&#10004;" if g.passed else "&#10008;"} <b>{html.escape(g.name)}</b>: '
             f"{html.escape(g.detail)}</li>" for g in request.gates]
    decisions = [f"<li>{html.escape(d.decision)}d by <b>{html.escape(d.actor)}</b> at "
                 f"{d.ts:%Y-%m-%d %H:%M}" + (f": {html.escape(d.comment)}" if d.comment else "")
                 + "</li>" for d in request.decisions]
    return (f'<div class="gate-checklist"><b>{html.escape(request.request_id)}</b> — '
            f"{html.escape(request.stage)}, {html.escape(request.status)} "
            f"({len(request.approvals)} of {request.approvals_needed} approvals)"
            f'<ul style="list-style:none;padding-left:4px">{"".join(lines)}</ul>'
            + (f"<ul>{''.join(decisions)}</ul>" if decisions else "") + "</div>")


class PromotionPanel(Viewer):
    """Requests of the selected version and the actions on them."""

    model = param.ClassSelector(class_=PipelineModel, doc="The session's pipeline.")

    request_id = param.String(default=None, allow_None=True, doc="The selected request.")

    max_position = param.Number(default=None, allow_None=True, bounds=(0, None),
                                label="Max position (units)", doc="Live limit.")

    max_daily_loss = param.Number(default=None, allow_None=True, bounds=(0, None),
                                  label="Max daily loss", doc="Live limit, account currency.")

    max_drawdown_pct = param.Number(default=None, allow_None=True, bounds=(0, 100),
                                    label="Max drawdown %", doc="Live limit.")

    comment = param.String(default="", label="Comment", doc="Said with an approval or rejection.")

    request_paper = param.Event(label="Request paper promotion…", doc="Ask to go to paper.")

    request_live = param.Event(label="Request live promotion…", doc="Ask to go live.")

    approve = param.Event(label="Approve…", doc="Approve the selected request.")

    reject = param.Event(label="Reject…", doc="Reject the selected request.")

    def __init__(self, **params):
        super().__init__(**params)
        self.confirmation = ConfirmAction()
        self._ids: list[str] = []
        self._table = pn.widgets.Tabulator(pd.DataFrame(columns=COLUMNS), show_index=False,
                                           disabled=True, selectable=1, layout="fit_columns",
                                           pagination="local", page_size=4,
                                           widths={"Request": 125, "Stage": 85,
                                                   "Status": 90, "Approvals": 125},
                                           sizing_mode="stretch_width",
                                           css_classes=["promotion-list"],
            configuration=WRAPPED_HEADERS)
        self._table.param.watch(self._picked, "selection")
        self._checklist = pn.pane.HTML("", sizing_mode="stretch_width")
        self._buttons = {name: button(self.param[name]) for name in
                         ("request_paper", "request_live", "approve", "reject")}
        checks = [self.model.allows("strategy.promote"),
                  self.model.allows("strategy.approve_paper")]
        self._note = reason_note(*checks)
        limits = pn.FlexBox(*(pn.widgets.FloatInput.from_param(self.param[n], width=150)
                              for n in ("max_position", "max_daily_loss", "max_drawdown_pct")),
                            flex_wrap="wrap", sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.pane.Markdown("#### Promotions"),
            pn.Row(self._buttons["request_paper"], self._buttons["request_live"]), limits,
            self._table, self._checklist,
            pn.widgets.TextInput.from_param(self.param.comment, sizing_mode="stretch_width"),
            pn.Row(self._buttons["approve"], self._buttons["reject"]), self.confirmation,
            self._note, sizing_mode="stretch_width")
        self.model.param.watch(lambda *_: self._draw(), ["promotions", "version", "versions"])
        self._draw()

    def __panel__(self):
        return self._layout

    def _mine(self):
        return [p for p in self.model.promotions if p.version_id == self.model.version]

    def _selected(self):
        return next((p for p in self.model.promotions if p.request_id == self.request_id), None)

    def _draw(self) -> None:
        mine = self._mine()
        self._ids = [p.request_id for p in mine]
        self._table.value = pd.DataFrame([{
            "Request": p.request_id, "Stage": p.stage, "Status": p.status,
            "Approvals": f"{len(p.approvals)}/{p.approvals_needed}",
            "Gates": "pass" if p.gates_pass else
            "fail: " + ", ".join(g.name for g in p.gates if not g.passed),
            "By": p.requested_by}
            for p in mine], columns=COLUMNS)
        self._table.visible = bool(mine)  # no empty table: the checklist says there is none
        if self.request_id not in self._ids:
            pending = [p for p in mine if p.status == "Pending"]
            with param.parameterized.discard_events(self):
                self.request_id = (pending or mine)[0].request_id if mine else None
        self._show_request()

    @param.depends("request_id", watch=True)
    def _show_request(self) -> None:
        request = self._selected()
        rows = [self._ids.index(self.request_id)] if self.request_id in self._ids else []
        if self._table.selection != rows:
            self._table.selection = rows
        self._checklist.object = checklist_html(request) if request else (
            "<p>No promotion requests for this version yet.</p>")
        may_promote, why = self.model.allows("strategy.promote")
        chosen = self.model.selected_version() is not None
        for name in ("request_paper", "request_live"):  # nothing to promote: not active
            widget = self._buttons[name]
            widget.disabled = not (chosen and may_promote)
            widget.description = why if not may_promote else (
                None if chosen else "Select a version first.")
        pending = request is not None and request.status == "Pending"
        action = ("strategy.approve_live" if request is not None and request.stage == "live"
                  else "strategy.approve_paper")
        allowed, reason = self.model.allows(action)
        for name in ("approve", "reject"):
            widget = self._buttons[name]
            widget.disabled = not (pending and allowed)
            widget.description = None if allowed else reason
        checks = [self.model.allows("strategy.promote"), (allowed, reason)]
        self._note.object = "\n\n".join(sorted({r for ok, r in checks if not ok}))
        self._note.visible = bool(self._note.object)

    def _picked(self, event) -> None:
        if event.new and event.new[0] < len(self._ids):
            self.request_id = self._ids[event.new[0]]

    # -- actions ----------------------------------------------------------------------------
    @param.depends("request_paper", watch=True)
    def _ask_paper(self) -> None:
        self._ask_promotion("paper", {})

    @param.depends("request_live", watch=True)
    def _ask_live(self) -> None:
        limits = {k: getattr(self, k) for k in ("max_position", "max_daily_loss",
                                                 "max_drawdown_pct")
                  if getattr(self, k) is not None}
        self._ask_promotion("live", limits)

    def _ask_promotion(self, stage: str, limits: dict) -> None:
        version = self.model.selected_version()
        if version is None:
            self.model.outcome.say("Select a version first.", "warning")
            return
        shown = ", ".join(f"{k}={v:g}" for k, v in limits.items()) or "none"
        pipeline, principal = self.model.pipeline, self.model.principal

        async def confirmed(_typed: str) -> None:
            await self.model.act(
                lambda: pipeline.promotions.request(version.version_id, stage,
                                                    risk_limits=limits, principal=principal),
                f"Requested promotion of version {version.short_id} to {stage}.",
                "Could not request the promotion")

        self.confirmation.ask(f"Ask to promote version **{version.short_id}** "
                              f"({version.strategy}) to **{stage}**? Risk limits: {shown}.",
                              confirmed, label=f"Request {stage}")

    @param.depends("approve", watch=True)
    def _ask_approve(self) -> None:
        self._ask_decision("approve")

    @param.depends("reject", watch=True)
    def _ask_reject(self) -> None:
        self._ask_decision("reject")

    def _ask_decision(self, decision: str) -> None:
        request = self._selected()
        if request is None:
            return
        comment, pipeline, principal = self.comment, self.model.pipeline, self.model.principal
        call = pipeline.promotions.approve if decision == "approve" else \
            pipeline.promotions.reject

        async def confirmed(_typed: str) -> None:
            result = await self.model.act(
                lambda: call(request.request_id, comment=comment, principal=principal),
                f"{decision.capitalize()}d request {request.request_id}.",
                f"Could not {decision} request {request.request_id}")
            if result is not None:
                self.comment = ""

        self.confirmation.ask(
            f"**{decision.capitalize()}** request {request.request_id} (version "
            f"{request.version_id[:12]} to {request.stage})"
            + (f" with the comment \u201c{comment}\u201d" if comment else "") + "?",
            confirmed, label=decision.capitalize(), danger=decision == "reject")

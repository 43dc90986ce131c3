"""Risk: a red banner while a limit is breached or trading is not ACTIVE, the engine's limits
against their current values, and changing them (approvers only)."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import ConfirmAction, button
from components.engines.common import Outcome, frame
from components.live import follow
from services import Workbench
from services.engine_runtime.risk import ACTIONS, LIMITS
from services.identity.principal import Principal
from services.live import LiveState

COLUMNS = ["Limit", "Limit value", "Now", "On breach", "Cancels orders", "State"]


def _value(value) -> str:
    return "–" if value is None else f"{value:,.4g}"


class RiskPanel(Viewer):
    """One engine's risk limits, live."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services limits change through.")

    live = param.ClassSelector(class_=LiveState, doc="The live state the panel follows.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    session_id = param.String(default=None, allow_None=True, doc="The engine shown.")

    limit = param.Selector(default="max_daily_loss", objects=list(LIMITS), doc="Limit to change.")

    value = param.String(default="", doc="New value; 0 or off: no limit.")

    action = param.Selector(default="HALTED", objects=list(ACTIONS), label="On breach",
                            doc="Trading state a breach switches to.")

    cancel_orders = param.Boolean(default=True, label="Cancel open orders on breach")

    apply = param.Event(label="Change limit…", doc="Ask to confirm the change.")

    banner = param.String(default="", doc="The banner's text; empty: nothing is breached.")

    def __init__(self, **params):
        super().__init__(**params)
        self.outcome = Outcome()
        self.confirmation = ConfirmAction()
        self._banner = pn.pane.Alert("", alert_type="danger", visible=False,
                                     sizing_mode="stretch_width", css_classes=["risk-banner"])
        self._table = pn.widgets.Tabulator(frame([], COLUMNS), show_index=False, disabled=True,
                                           sizing_mode="stretch_width",
                                           css_classes=["risk-limits"])
        allowed, reason = self.workbench.authorizer.allows(self.principal, "engine.risk_limits")
        self._apply = button(self.param.apply, disabled=not allowed)
        self._who = pn.pane.Markdown("" if allowed else f"*{reason}*",
                                     sizing_mode="stretch_width")
        self._message = pn.pane.Alert("", visible=False, sizing_mode="stretch_width")
        self.outcome.param.watch(self._show, ["message", "message_kind"])
        self._layout = pn.Column(
            self._banner, self._table,
            pn.Row(pn.widgets.Select.from_param(self.param.limit, width=190),
                   pn.widgets.TextInput.from_param(self.param.value, width=110,
                                                   placeholder="e.g. 500"),
                   pn.widgets.Select.from_param(self.param.action, width=110),
                   pn.widgets.Checkbox.from_param(self.param.cancel_orders, align="end"),
                   self._apply, sizing_mode="stretch_width"),
            self._who, self.confirmation, self._message, sizing_mode="stretch_width",
            css_classes=["risk-panel"])
        follow(self.live, ["engines", "risk_events"], self._redraw)
        self._redraw()

    def __panel__(self):
        return self._layout

    def _risk(self) -> tuple[dict, str | None, dict]:
        info = self.live.engines.get(self.session_id) if self.session_id else None
        if info is None:
            return {}, None, {}
        return (info.status.get("risk") or {}), info.status.get("trading_state"), info.risk_limits

    @param.depends("session_id", watch=True)
    def _redraw(self) -> None:
        risk, trading, configured = self._risk()
        limits = risk.get("limits") or configured
        values = risk.get("values") or {}
        breached = {b["limit"] for b in risk.get("breached") or []}
        currency = risk.get("currency", "")
        self._table.value = frame([{
            "Limit": name, "Limit value": "off" if limit["value"] is None else
            f"{limit['value']:g} {currency if LIMITS[name].unit == 'account currency' else ''}",
            "Now": _value(values.get(name)), "On breach": limit["action"],
            "Cancels orders": "yes" if limit["cancel_orders"] else "no",
            "State": "BREACHED" if name in breached else "ok" if limit["value"] else "off"}
            for name, limit in limits.items()], COLUMNS)
        lines = [f"**RISK LIMIT BREACHED:** {b['message']}" for b in risk.get("breached") or []]
        if trading in ("HALTED", "REDUCING") and not lines:
            lines.append(f"**Trading {trading}:** "
                         + ("no new orders are accepted." if trading == "HALTED" else
                            "only orders that shrink a position are accepted."))
        self.banner = "  \n".join(lines)
        self._banner.object, self._banner.visible = self.banner, bool(self.banner)

    @param.depends("limit", watch=True)
    def _on_limit(self) -> None:
        _, _, configured = self._risk()
        current = configured.get(self.limit) or {}
        self.param.update(value="" if current.get("value") is None else f"{current['value']:g}",
                          action=current.get("action", LIMITS[self.limit].default_action),
                          cancel_orders=current.get("cancel_orders",
                                                    LIMITS[self.limit].default_cancel))

    @param.depends("apply", watch=True)
    def _on_apply(self) -> None:
        settings = {self.limit: self.value.strip() or "off",
                    f"{self.limit}.action": self.action,
                    f"{self.limit}.cancel_orders": str(self.cancel_orders).lower()}
        session_id, actor = self.session_id, self.principal
        commands = self.workbench.commands
        self.confirmation.ask(
            f"Set **{self.limit}** to **{self.value.strip() or 'off'}**, on breach "
            f"**{self.action}**{', canceling open orders' if self.cancel_orders else ''}? The "
            "engine applies it at once.",
            lambda _typed: self.outcome.run(
                lambda: commands.update_risk_limits(session_id, settings, principal=actor),
                done=f"{self.limit} changed.", failed="Not changed"),
            label="Change the limit")

    def _show(self, *_events) -> None:
        self._message.object = self.outcome.message
        self._message.alert_type = self.outcome.message_kind
        self._message.visible = bool(self.outcome.message)

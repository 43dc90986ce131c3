"""The order ticket: a manual order into a running engine, confirmed with its notional and the
position it leaves (live engines above the confirmation notional: a risk warning and the
engine's name typed, which the service checks again)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import ConfirmAction, button
from components.engines.common import Outcome
from components.live import follow
from components.permissions import permission, reason_note
from services import Workbench
from services.identity.principal import Principal
from services.live import LiveState

LIVE_ORDER_RISK = ("**This order goes to a real venue with real money.** It may fill at once "
                   "and at a worse price than shown.")


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


class OrderTicket(Viewer):
    """Instrument, side, quantity, type, price, time in force, reduce-only; then confirm."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the order goes through.")

    live = param.ClassSelector(class_=LiveState, doc="Live prices and positions.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    session_id = param.String(default=None, allow_None=True, doc="The engine orders go to.")

    instrument = param.Selector(default=None, objects=[], doc="Instrument to trade.")

    side = param.Selector(default="BUY", objects=["BUY", "SELL"], doc="Buy or sell.")

    quantity = param.String(default="", doc="Quantity in the instrument's units.")

    order_type = param.Selector(default="MARKET", objects=["MARKET", "LIMIT"], label="Type",
                                doc="MARKET fills now; LIMIT rests at its price.")

    price = param.String(default="", label="Limit price", doc="Price of a LIMIT order.")

    tif = param.Selector(default="GTC", objects=["GTC", "IOC"], label="Time in force", doc="""
        GTC rests until canceled; IOC fills what it can now and cancels the rest.""")

    reduce_only = param.Boolean(default=False, label="Reduce only", doc="""
        Only shrink the position; never open or grow one.""")

    submit = param.Event(label="Review order…", doc="Check the order, then ask to confirm.")

    last_order = param.String(default=None, allow_None=True, doc="Client id of the last order.")

    def __init__(self, **params):
        super().__init__(**params)
        self.outcome = Outcome()
        self.confirmation = ConfirmAction()
        self._price = pn.widgets.TextInput.from_param(self.param.price, placeholder="e.g. 42000.5")
        self._message = pn.pane.Alert("", visible=False, sizing_mode="stretch_width",
                                      css_classes=["ticket-message"])
        self._submit = button(self.param.submit, color="primary",
                              sizing_mode="stretch_width")
        self._note = reason_note()
        self._layout = pn.Card(
            pn.widgets.Select.from_param(self.param.instrument, sizing_mode="stretch_width"),
            pn.Row(pn.widgets.RadioButtonGroup.from_param(self.param.side, color="primary"),
                   pn.widgets.RadioButtonGroup.from_param(self.param.order_type)),
            pn.widgets.TextInput.from_param(self.param.quantity, placeholder="e.g. 0.01"),
            self._price,
            pn.Row(pn.widgets.Select.from_param(self.param.tif, width=120),
                   pn.widgets.Checkbox.from_param(self.param.reduce_only, align="end")),
            self._submit, self._note, self.confirmation, self._message,
            title="Order ticket", collapsible=False, sizing_mode="stretch_width",
            css_classes=["order-ticket"])
        self.outcome.param.watch(self._show, ["message", "message_kind"])
        follow(self.live, ["engines"], self._instruments)
        self._instruments()
        self._on_type()

    def __panel__(self):
        return self._layout

    @param.depends("session_id", watch=True)
    def _instruments(self) -> None:
        info = self.live.engines.get(self.session_id) if self.session_id else None
        prices = (info.status.get("prices") if info is not None else None) or {}
        if info is not None:
            allowed, reason = permission(self.workbench, self.principal, "engine.command",
                                         live=info.mode == "live")
            self._submit.disabled = not allowed
            self._note.object, self._note.visible = reason, not allowed
        names = sorted(prices)
        if names != self.param.instrument.objects:
            self.param.instrument.objects = names
            if self.instrument not in names:
                self.instrument = names[0] if names else None

    @param.depends("order_type", watch=True)
    def _on_type(self) -> None:
        self._price.visible = self.order_type == "LIMIT"

    def _market(self) -> dict:
        info = self.live.engines.get(self.session_id) if self.session_id else None
        return ((info.status.get("prices") or {}).get(self.instrument) or {}) if info else {}

    def position(self) -> float:
        """The engine's net position in the ticket's instrument (every strategy's), from its
        latest status snapshot."""
        info = self.live.engines.get(self.session_id) if self.session_id else None
        positions = (info.status.get("positions") or []) if info is not None else []
        return sum(p.get("signed_qty") or 0.0 for p in positions
                   if p.get("instrument_id") == self.instrument)

    def notional(self) -> float | None:
        """Quantity x price x multiplier; the price is the limit, else the side's quote."""
        quantity = _decimal(self.quantity)
        market = self._market()
        if self.order_type == "LIMIT":
            price = _decimal(self.price)
            price = float(price) if price is not None else None
        else:
            price = market.get("ask" if self.side == "BUY" else "bid") or market.get("last")
        if quantity is None or price is None:
            return None
        return float(quantity) * price * float(market.get("multiplier") or 1.0)

    @param.depends("submit", watch=True)
    def _review(self) -> None:
        self.confirmation.dismiss()
        info = self.live.engines.get(self.session_id) if self.session_id else None
        if info is None or info.state != "Running":
            self.outcome.say("Select a running engine first.", "warning")
            return
        if not self.instrument:
            self.outcome.say("This engine has reported no instrument yet; wait for its first "
                             "status.", "warning")
            return
        quantity = _decimal(self.quantity)
        if quantity is None or quantity <= 0:
            self.outcome.say(f"Quantity must be a positive number, was {self.quantity!r}.",
                             "danger")
            return
        if self.order_type == "LIMIT" and _decimal(self.price) is None:
            self.outcome.say(f"A LIMIT order needs a price, was {self.price!r}.", "danger")
            return
        market = self._market()
        currency = market.get("currency", "")
        notional = self.notional()
        signed = float(quantity) if self.side == "BUY" else -float(quantity)
        now = self.position()
        after = now + signed
        shown = f"{notional:,.2f} {currency}" if notional is not None else "unknown (no price yet)"
        summary = (f"**{self.side} {self.quantity} {self.instrument}** {self.order_type}"
                   + (f" @ {self.price}" if self.order_type == "LIMIT" else "")
                   + f" {self.tif}{' reduce-only' if self.reduce_only else ''}  \n"
                   f"Notional ≈ **{shown}** · position now **{now:g}**, after a full fill "
                   f"**{after:g}** · engine **{info.name}** ({info.mode})")
        threshold = self.workbench.commands.live_confirm_notional
        typed = info.mode == "live" and (notional is None or notional > threshold)
        warning = (f"{LIVE_ORDER_RISK} The notional is above {threshold:,.0f}: type **{info.name}** "
                   "below to confirm." if typed else
                   LIVE_ORDER_RISK if info.mode == "live" else "")
        order = dict(session_id=self.session_id, instrument_id=self.instrument, side=self.side,
                     quantity=self.quantity.strip(), order_type=self.order_type,
                     price=self.price.strip() if self.order_type == "LIMIT" else None,
                     tif=self.tif, reduce_only=self.reduce_only)
        self.confirmation.ask(summary, lambda text: self._send(order, text), label="Send order",
                              warning=warning, expected=info.name if typed else "",
                              danger=info.mode == "live")

    async def _send(self, order: dict, typed: str) -> None:
        commands, actor = self.workbench.commands, self.principal
        result = await self.outcome.run(
            lambda: commands.submit_order(**order, principal=actor, confirm=typed or None),
            failed="Order not placed")
        if result is None:
            return
        placed = result.result["order"]
        self.last_order = placed["client_order_id"]
        self.outcome.say(f"Order `{placed['client_order_id']}` {placed['status']}"
                         + (f" at {placed['avg_px']:g}" if placed.get("avg_px") else "")
                         + (f" ({result.result['note']})" if result.result.get("note") else "")
                         + f" in {result.took_ms:.0f} ms.", "success")

    def _show(self, *_events) -> None:
        self._message.object = self.outcome.message
        self._message.alert_type = self.outcome.message_kind
        self._message.visible = bool(self.outcome.message)

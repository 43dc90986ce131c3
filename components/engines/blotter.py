"""The blotter: an engine's orders, fills and positions (realized and unrealized PnL), updated
as the events arrive; cancel or modify an open order and close a position from its row."""

from __future__ import annotations

import asyncio

import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import ConfirmAction, button
from components.engines.common import Outcome, frame, number
from components.live import follow
from components.offloop import in_thread
from services import Workbench, WorkbenchError
from services.identity.principal import Principal
from services.live import LiveState

ORDER_COLUMNS = ["Order", "Strategy", "Instrument", "Side", "Type", "Quantity", "Filled",
                 "Price", "Avg price", "TIF", "Status"]
FILL_COLUMNS = ["Trade", "Order", "Instrument", "Side", "Quantity", "Price", "Commission",
                "Liquidity"]
POSITION_COLUMNS = ["Position", "Strategy", "Instrument", "Side", "Quantity", "Avg open",
                    "Last", "Realized PnL", "Unrealized PnL", "Currency", "State"]
OPEN_STATUSES = ("ACCEPTED", "PARTIALLY_FILLED", "SUBMITTED", "PENDING_UPDATE", "TRIGGERED")
SHOWN = 200  # rows per table: the blotter is for now, the engine's cache keeps the rest


class Blotter(Viewer):
    """Orders, fills and positions of one engine, from the live state."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services cancels and closes go through.")

    live = param.ClassSelector(class_=LiveState, doc="The live state the tables follow.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    session_id = param.String(default=None, allow_None=True, doc="The engine shown.")

    modify_order = param.String(default=None, allow_None=True, doc="Order being modified.")

    new_quantity = param.String(default="", label="New quantity", doc="Empty: unchanged.")

    new_price = param.String(default="", label="New price", doc="Empty: unchanged.")

    modify = param.Event(label="Modify…", doc="Ask to confirm the modification.")

    def __init__(self, **params):
        super().__init__(**params)
        self.outcome = Outcome()
        self.confirmation = ConfirmAction()
        self._orders = pn.widgets.Tabulator(
            frame([], ORDER_COLUMNS), show_index=False, disabled=True, height=240,
            sizing_mode="stretch_width", buttons={"cancel": "Cancel", "edit": "Modify"},
            css_classes=["blotter-orders"])
        self._fills = pn.widgets.Tabulator(frame([], FILL_COLUMNS), show_index=False,
                                           disabled=True, height=200, sizing_mode="stretch_width",
                                           css_classes=["blotter-fills"])
        self._positions = pn.widgets.Tabulator(
            frame([], POSITION_COLUMNS), show_index=False, disabled=True, height=200,
            sizing_mode="stretch_width", buttons={"close": "Close"},
            css_classes=["blotter-positions"])
        self._orders.on_click(self._on_order_click)
        self._positions.on_click(self._on_position_click)
        self._modify_box = pn.Row(
            pn.widgets.TextInput.from_param(self.param.new_quantity, width=140),
            pn.widgets.TextInput.from_param(self.param.new_price, width=140),
            button(self.param.modify, align="end"), visible=False)
        self._message = pn.pane.Alert("", visible=False, sizing_mode="stretch_width",
                                      css_classes=["blotter-message"])
        self.outcome.param.watch(self._show, ["message", "message_kind"])
        self._layout = pn.Column(
            pn.Tabs(("Orders", pn.Column(self._orders, self._modify_box,
                                         sizing_mode="stretch_width")),
                    ("Positions", self._positions), ("Fills", self._fills),
                    sizing_mode="stretch_width"),
            self.confirmation, self._message, sizing_mode="stretch_width",
            css_classes=["blotter"])
        self._order_ids: list[str] = []
        self._position_ids: list[str] = []
        follow(self.live, ["orders", "fills", "positions"], self._redraw)
        self._redraw()

    def __panel__(self):
        return self._layout

    # -- the tables ---------------------------------------------------------------------------
    @param.depends("session_id", watch=True)
    def _redraw(self) -> None:
        orders = sorted(self.live.orders.get(self.session_id, {}).values(),
                        key=lambda o: o.get("ts_init") or 0, reverse=True)[:SHOWN]
        self._order_ids = [o["client_order_id"] for o in orders]
        self._set(self._orders, frame([{
            "Order": o["client_order_id"], "Strategy": o["strategy_id"],
            "Instrument": o["instrument_id"], "Side": o["side"], "Type": o["type"],
            "Quantity": number(o["quantity"]), "Filled": number(o["filled_qty"]),
            "Price": number(o.get("price")), "Avg price": number(o.get("avg_px")),
            "TIF": o["tif"], "Status": o["status"]} for o in orders], ORDER_COLUMNS))
        fills = list(reversed(self.live.fills.get(self.session_id, [])))[:SHOWN]
        self._set(self._fills, frame([{
            "Trade": f["trade_id"], "Order": f["client_order_id"],
            "Instrument": f["instrument_id"], "Side": f["side"],
            "Quantity": number(f["last_qty"]), "Price": number(f["last_px"]),
            "Commission": f"{number(f['commission'])} {f['currency']}",
            "Liquidity": f["liquidity"]} for f in fills], FILL_COLUMNS))
        positions = sorted(self.live.positions.get(self.session_id, {}).values(),
                           key=lambda p: (not p.get("is_open"), -(p.get("ts_opened") or 0)))
        positions = positions[:SHOWN]
        self._position_ids = [p["position_id"] for p in positions]
        self._set(self._positions, frame([{
            "Position": p["position_id"], "Strategy": p["strategy_id"],
            "Instrument": p["instrument_id"], "Side": p["side"],
            "Quantity": number(p["quantity"]), "Avg open": number(p["avg_px_open"]),
            "Last": number(p.get("last_px")), "Realized PnL": number(p["realized_pnl"]),
            "Unrealized PnL": number(p.get("unrealized_pnl")), "Currency": p["currency"],
            "State": "open" if p["is_open"] else "closed"} for p in positions],
            POSITION_COLUMNS))

    @staticmethod
    def _set(table: pn.widgets.Tabulator, value) -> None:
        if not value.equals(table.value):
            table.value = value

    def order(self, client_order_id: str) -> dict | None:
        return self.live.orders.get(self.session_id, {}).get(client_order_id)

    # -- acting from a row --------------------------------------------------------------------
    def _on_order_click(self, event) -> None:
        if event.row is None or event.row >= len(self._order_ids):
            return
        client_order_id = self._order_ids[event.row]
        if event.column == "cancel":
            self.ask_cancel(client_order_id)
        elif event.column == "edit":
            self.ask_modify(client_order_id)

    def _on_position_click(self, event) -> None:
        if event.column == "close" and event.row is not None \
                and event.row < len(self._position_ids):
            self.ask_close(self._position_ids[event.row])

    def ask_cancel(self, client_order_id: str) -> None:
        order = self.order(client_order_id)
        if order is None or order["status"] not in OPEN_STATUSES:
            self.outcome.say(f"Order `{client_order_id}` is not open "
                             f"({order['status'] if order else 'unknown'}).", "warning")
            return
        self.confirmation.ask(
            f"Cancel order `{client_order_id}` ({order['side']} {number(order['quantity'])} "
            f"{order['instrument_id']} {order['type']})?",
            lambda _typed: self._call(lambda c, p: c.cancel_order(
                self.session_id, client_order_id, principal=p), "Canceled"),
            label="Cancel the order", danger=True)

    def ask_modify(self, client_order_id: str) -> None:
        order = self.order(client_order_id)
        if order is None or order["status"] not in OPEN_STATUSES:
            self.outcome.say(f"Order `{client_order_id}` is not open.", "warning")
            return
        self.param.update(modify_order=client_order_id,
                          new_quantity=str(order["quantity"]),
                          new_price="" if order.get("price") is None else str(order["price"]))
        self._modify_box.visible = True

    @param.depends("modify", watch=True)
    def _on_modify(self) -> None:
        client_order_id = self.modify_order
        if client_order_id is None:
            return
        quantity, price = self.new_quantity.strip() or None, self.new_price.strip() or None
        self.confirmation.ask(
            f"Modify order `{client_order_id}`: quantity **{quantity or 'unchanged'}**, price "
            f"**{price or 'unchanged'}**?",
            lambda _typed: self._call(lambda c, p: c.modify_order(
                self.session_id, client_order_id, quantity=quantity, price=price, principal=p),
                "Modified"), label="Modify the order")
        self._modify_box.visible = False

    def ask_close(self, position_id: str) -> None:
        position = self.live.positions.get(self.session_id, {}).get(position_id)
        if position is None or not position.get("is_open"):
            self.outcome.say(f"Position `{position_id}` is not open.", "warning")
            return
        self.confirmation.ask(
            f"Close position `{position_id}` ({position['side']} {number(position['quantity'])}"
            f" {position['instrument_id']}, unrealized {number(position.get('unrealized_pnl'))}"
            f" {position['currency']}) with a market order?",
            lambda _typed: self._call(lambda c, p: c.close_position(
                self.session_id, position_id=position_id, principal=p), "Closing"),
            label="Close the position", danger=True)

    async def _call(self, call, done: str) -> None:
        commands, actor = self.workbench.commands, self.principal
        result = await self.outcome.run(lambda: call(commands, actor), failed="Refused")
        if result is not None:
            order = result.result.get("order") or {}
            self.outcome.say(f"{done}: `{order.get('client_order_id', '')}` "
                             f"{order.get('status', '')}".strip(), "success")

    async def load(self) -> None:
        """Fill the tables from the engine's cache (for an engine opened while running)."""
        session_id, commands = self.session_id, self.workbench.commands
        try:
            orders, fills, positions = await asyncio.gather(
                in_thread(commands.orders, session_id),
                in_thread(commands.fills, session_id),
                in_thread(commands.positions, session_id))
        except WorkbenchError as e:
            self.outcome.say(f"Cannot read the engine's orders: {e}", "warning")
            return
        self.live.seed(session_id, orders, fills, positions["positions"])

    def _show(self, *_events) -> None:
        self._message.object = self.outcome.message
        self._message.alert_type = self.outcome.message_kind
        self._message.visible = bool(self.outcome.message)

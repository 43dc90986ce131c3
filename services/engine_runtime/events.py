"""NautilusTrader orders, fills and positions as JSON, and the relay of their events to the log.

Runs inside the engine container. :class:`EventRelay` subscribes to the message bus topics the
execution and risk engines publish on (``events.order.*``, ``events.position.*``,
``events.risk``) and prints each event as one status line, so the workbench sees an order's
life, every fill and every position change as it happens.
"""

from __future__ import annotations

from collections.abc import Callable

from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.events import OrderFilled, OrderInitialized


def _num(value) -> float | None:
    if value is None:
        return None
    if hasattr(value, "as_double"):
        return float(value.as_double())
    return float(value)


def _name(value) -> str | None:
    return None if value is None else getattr(value, "name", str(value))


def order_json(order) -> dict:
    return {
        "client_order_id": str(order.client_order_id),
        "venue_order_id": str(order.venue_order_id) if order.venue_order_id else None,
        "strategy_id": str(order.strategy_id),
        "instrument_id": str(order.instrument_id),
        "side": order.side_string(),
        "type": order.type_string(),
        "quantity": _num(order.quantity),
        "filled_qty": _num(order.filled_qty),
        "leaves_qty": _num(order.leaves_qty),
        "price": _num(order.price) if order.has_price else None,
        "avg_px": _num(order.avg_px) if order.filled_qty.as_double() > 0 else None,
        "tif": order.tif_string(),
        "reduce_only": bool(order.is_reduce_only),
        "status": order.status_string(),
        "ts_init": order.ts_init,
        "ts_last": order.ts_last,
    }


def fill_json(event: OrderFilled) -> dict:
    return {
        "trade_id": str(event.trade_id),
        "client_order_id": str(event.client_order_id),
        "venue_order_id": str(event.venue_order_id) if event.venue_order_id else None,
        "strategy_id": str(event.strategy_id),
        "instrument_id": str(event.instrument_id),
        "side": _name(event.order_side),
        "last_qty": _num(event.last_qty),
        "last_px": _num(event.last_px),
        "commission": _num(event.commission),
        "currency": str(event.currency),
        "liquidity": _name(event.liquidity_side),
        "position_id": str(event.position_id) if event.position_id else None,
        "ts_event": event.ts_event,
    }


def mark_price(cache, position):
    """The price a position would close at now: the bid for a long, the ask for a short (from
    the last quote), else the last trade; None before any market data."""
    quote = cache.quote_tick(position.instrument_id)
    if quote is not None:
        return quote.bid_price if position.is_long else quote.ask_price
    return cache.price(position.instrument_id, PriceType.LAST)


def position_json(position, cache) -> dict:
    price = mark_price(cache, position) if position.is_open else None
    unrealized = position.unrealized_pnl(price) if price is not None else None
    return {
        "position_id": str(position.id),
        "instrument_id": str(position.instrument_id),
        "strategy_id": str(position.strategy_id),
        "side": _name(position.side),
        "quantity": _num(position.quantity),
        "signed_qty": float(position.signed_qty),
        "avg_px_open": _num(position.avg_px_open),
        "avg_px_close": _num(position.avg_px_close) if position.is_closed else None,
        "last_px": _num(price),
        "realized_pnl": _num(position.realized_pnl),
        "unrealized_pnl": _num(unrealized) if position.is_open else 0.0,
        "currency": str(position.settlement_currency),
        "is_open": bool(position.is_open),
        "ts_opened": position.ts_opened,
        "ts_closed": position.ts_closed or None,
    }


class EventRelay:
    """Prints every order, position and risk event the node publishes as one event line."""

    def __init__(self, msgbus, cache, emit: Callable[..., None]) -> None:
        self._cache = cache
        self._emit = emit
        msgbus.subscribe("events.order.*", self.on_order_event)
        msgbus.subscribe("events.position.*", self.on_position_event)
        msgbus.subscribe("events.risk*", self.on_risk_event)

    def on_order_event(self, event) -> None:
        if isinstance(event, OrderInitialized):
            return  # the order is not in the cache yet; its next event carries it
        order = self._cache.order(event.client_order_id)
        payload = {"type": type(event).__name__, "client_order_id": str(event.client_order_id)}
        reason = getattr(event, "reason", None)
        if reason:
            payload["reason"] = str(reason)
        if order is not None:
            payload["order"] = order_json(order)
        if isinstance(event, OrderFilled):
            payload["fill"] = fill_json(event)
        self._emit(event="order", **payload)

    def on_position_event(self, event) -> None:
        position = self._cache.position(event.position_id)
        payload = {"type": type(event).__name__, "position_id": str(event.position_id)}
        if position is not None:
            payload["position"] = position_json(position, self._cache)
        self._emit(event="position", **payload)

    def on_risk_event(self, event) -> None:
        state = getattr(event, "state", None)
        self._emit(event="risk", type=type(event).__name__,
                   trading_state=_name(state) if state is not None else None)

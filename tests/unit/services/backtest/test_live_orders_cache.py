"""Tests of LiveOrdersCache (services/backtest/position_orders_fix.py) against NautilusTrader's
Cache.

Every check performs the same calls on a ``LiveOrdersCache`` and on a plain ``Cache``: the fixed
``orders_for_position`` must return exactly the plain one's orders that are not closed, and
``all_orders_for_position`` exactly the plain list, through linking, closing, purging, clearing,
resetting and rebuilding the index. Constructing the class patches nothing (only ``install()``
does), so these run in the pytest process.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import LiquiditySide, OmsType, OrderSide, OrderType
from nautilus_trader.model.events import OrderDenied, OrderFilled
from nautilus_trader.model.identifiers import (
    AccountId,
    PositionId,
    StrategyId,
    TradeId,
    TraderId,
    VenueOrderId,
)
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.model.position import Position
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from services.backtest.position_orders_fix import LiveOrdersCache

TRADER = TraderId("TESTER-001")
STRATEGY = StrategyId("S-001")
P1, P2 = PositionId("P-1"), PositionId("P-2")


@pytest.fixture
def instrument():
    return TestInstrumentProvider.btcusdt_perp_binance()


@pytest.fixture
def caches(instrument):
    """``(fixed, plain)``, both holding the instrument."""
    pair = (LiveOrdersCache(), Cache())
    for cache in pair:
        cache.add_instrument(instrument)
    return pair


def _orders(instrument, n: int) -> list:
    factory = OrderFactory(TRADER, STRATEGY, TestClock())
    return [factory.limit(instrument.id, OrderSide.SELL, Quantity.from_str("0.100"),
                          Price.from_str(f"{50_000 + i}.0"), reduce_only=True) for i in range(n)]


def _add(caches, order, position_id=None) -> None:
    for cache in caches:
        cache.add_order(order, position_id)


def _deny(caches, order) -> None:
    order.apply(OrderDenied(TRADER, STRATEGY, order.instrument_id, order.client_order_id,
                            "test", UUID4(), 0))
    for cache in caches:
        cache.update_order(order)


def _ids(orders) -> list[str]:
    return [o.client_order_id.value for o in orders]


def _assert_consistent(fixed, plain, position_id) -> None:
    everything = plain.orders_for_position(position_id)
    live = {o.client_order_id.value for o in everything if not o.is_closed}
    assert set(_ids(fixed.orders_for_position(position_id))) == live
    assert sorted(_ids(fixed.all_orders_for_position(position_id))) == sorted(_ids(everything))


def test_returns_the_linked_orders_not_closed_in_link_order(caches, instrument):
    # Arrange
    fixed, plain = caches
    o1, o2, o3, o4 = _orders(instrument, 4)
    # Cache.add_order links through a Cython call to add_position_id, which must reach the override.
    for order in (o1, o2, o3):
        _add(caches, order, P1)
    _add(caches, o4, P2)
    for cache in caches:
        cache.add_position_id(P1, instrument.id.venue, o1.client_order_id, STRATEGY)  # again

    # Act
    _deny(caches, o2)

    # Assert
    assert _ids(fixed.orders_for_position(P1)) == _ids([o1, o3])
    assert _ids(fixed.orders_for_position(P2)) == _ids([o4])
    assert fixed.orders_for_position(PositionId("P-9")) == []
    assert sorted(_ids(fixed.all_orders_for_position(P1))) == sorted(_ids([o1, o2, o3]))
    for position_id in (P1, P2):
        _assert_consistent(fixed, plain, position_id)


def test_closed_orders_stay_out_after_being_pruned(caches, instrument):
    # Arrange
    fixed, plain = caches
    orders = _orders(instrument, 3)
    for order in orders:
        _add(caches, order, P1)
    fixed.orders_for_position(P1)
    _deny(caches, orders[0])
    fixed.orders_for_position(P1)  # prunes orders[0]

    # Act
    _deny(caches, orders[2])

    # Assert
    assert _ids(fixed.orders_for_position(P1)) == _ids([orders[1]])
    _assert_consistent(fixed, plain, P1)


@pytest.mark.parametrize("operation", ["purge_position", "purge_order", "clear_index", "reset"])
def test_index_maintenance_keeps_step_with_nautilus_trader(caches, instrument, operation):
    # Arrange
    fixed, plain = caches
    orders = _orders(instrument, 3)
    for order in orders:
        _add(caches, order, P1)

    # Act
    for cache in caches:
        if operation == "purge_position":
            cache.purge_position(P1)
        elif operation == "purge_order":
            cache.purge_order(orders[1].client_order_id)
        else:
            getattr(cache, operation)()

    # Assert
    expected = _ids([orders[0], orders[2]]) if operation == "purge_order" else []
    assert _ids(fixed.orders_for_position(P1)) == expected
    _assert_consistent(fixed, plain, P1)


def test_build_index_links_the_orders_of_the_positions_in_memory(caches, instrument):
    # Arrange: a position opened by one order, the index then cleared and rebuilt.
    fixed, plain = caches
    (order,) = _orders(instrument, 1)
    _add(caches, order)
    fill = OrderFilled(TRADER, STRATEGY, instrument.id, order.client_order_id,
                       VenueOrderId("V-1"), AccountId("BINANCE-001"), TradeId("T-1"), P1,
                       OrderSide.SELL, OrderType.LIMIT, Quantity.from_str("0.100"),
                       Price.from_str("50000.0"), USDT, Money(Decimal("0.1"), USDT),
                       LiquiditySide.MAKER, UUID4(), 0, 0)
    for cache in caches:
        cache.add_position(Position(instrument, fill), OmsType.NETTING)
        cache.clear_index()
    assert fixed.orders_for_position(P1) == []

    # Act
    for cache in caches:
        cache.build_index()

    # Assert
    assert _ids(fixed.orders_for_position(P1)) == _ids([order])
    _assert_consistent(fixed, plain, P1)

"""A narrowly scoped fix for NautilusTrader 1.231's quadratic fill path under NETTING.

After every fill on an existing position, ``OrderMatchingEngine.fill_order`` (backtest/engine.pyx)
loops over ``cache.orders_for_position(position.id)`` to resync the position's open, passive,
reduce-only orders. ``Cache.orders_for_position`` returns every order ever linked to the position
id, and under NETTING one id (``{instrument}-{strategy}``) lasts the whole run, so fill k walks
~k orders and a run's cost grows with the square of its orders.

The loop acts only on orders that are open when it reaches them, and in a backtest an order that
has closed never opens again (the simulated venue drops an order from its book when it closes;
the order state machine's CANCELED -> FILLED exists for real venues). :class:`LiveOrdersCache`
therefore answers ``orders_for_position`` with the position's orders that had not closed when
last looked at, pruning each closed order once, so a call costs what the position has live
instead of what it has ever had. It is a subclass of NautilusTrader's ``Cache``: everything else
is the real cache. The full list stays available as :meth:`LiveOrdersCache.all_orders_for_position`.

The returned orders are in the order they were linked to the position. NautilusTrader's own order
is that of a Python ``set`` of ``ClientOrderId`` objects, whose string hashes change with every
process (``PYTHONHASHSEED``); when the loop acts on two orders at the same fill (a bracket's
stop-loss and take-profit cancelled when the position is flattened) only the sequence of their
events at the same timestamp can differ, never the fills, orders, positions or account reports
(``tests/integration/test_position_orders_fix.py`` compares them cell by cell).

Applied only inside backtest workers, through :func:`install`, which makes NautilusKernel (and so
BacktestEngine and BacktestNode) build this cache instead of ``Cache``.
"""

from __future__ import annotations

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.identifiers import ClientOrderId, PositionId, StrategyId, Venue
from nautilus_trader.system import kernel


class LiveOrdersCache(Cache):
    """NautilusTrader's ``Cache`` whose ``orders_for_position`` skips orders already closed."""

    # No instance __dict__: the links are the only state this class adds.
    __slots__ = ("_live_position_orders",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # PositionId -> {ClientOrderId: None}: the position's linked orders not yet seen closed,
        # in the order they were linked (a dict is an insertion-ordered set).
        self._live_position_orders: dict[PositionId, dict[ClientOrderId, None]] = {}

    def add_position_id(self, position_id: PositionId, venue: Venue,
                        client_order_id: ClientOrderId, strategy_id: StrategyId) -> None:
        """Index the position ID with the other IDs, and remember the link."""
        super().add_position_id(position_id, venue, client_order_id, strategy_id)
        self._live_position_orders.setdefault(position_id, {})[client_order_id] = None

    def orders_for_position(self, position_id: PositionId) -> list:
        """Return the position's orders that are not closed, in the order they were linked.

        Closed orders are pruned from the index here, each once.
        """
        links = self._live_position_orders.get(position_id)
        if not links:
            return []
        orders, closed = [], []
        for client_order_id in links:
            order = self.order(client_order_id)
            if order is None or order.is_closed:
                closed.append(client_order_id)  # purged or closed: never acted on again
            else:
                orders.append(order)
        for client_order_id in closed:
            del links[client_order_id]
        return orders

    def all_orders_for_position(self, position_id: PositionId) -> list:
        """Return every order ever linked to the position, as NautilusTrader's method does."""
        return Cache.orders_for_position(self, position_id)

    def purge_position(self, position_id: PositionId, purge_from_database: bool = False) -> None:
        """Purge the position; its links go with it, as NautilusTrader's index does."""
        super().purge_position(position_id, purge_from_database)
        if self.position(position_id) is None:  # an open position is not purged
            self._live_position_orders.pop(position_id, None)

    def clear_index(self) -> None:
        """Clear the indexes (also called by ``reset`` and ``dispose``)."""
        super().clear_index()
        self._live_position_orders.clear()

    def build_index(self) -> None:
        """Build the indexes from the objects in memory, the links from the positions' orders."""
        super().build_index()
        for position in self.positions():
            links = self._live_position_orders.setdefault(position.id, {})
            for client_order_id in position.client_order_ids:
                links[client_order_id] = None


def install() -> None:
    """Make every NautilusKernel of this process build a :class:`LiveOrdersCache` (idempotent)."""
    kernel.Cache = LiveOrdersCache

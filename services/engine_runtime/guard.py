"""The engine-side risk guard: measures the portfolio against the workbench's limits and, on a
breach, switches trading through NautilusTrader's own risk engine.

Runs inside the engine container, on the node's event loop, so the limits hold whether or not
the workbench is running. Measures after every fill and position change and every
``CHECK_INTERVAL`` seconds (unrealized PnL moves with the market); counts every order submitted
by any strategy for the orders-per-minute limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.events import OrderFilled, OrderSubmitted

from services.engine_runtime.risk import RiskBook, is_looser, stricter

CHECK_INTERVAL = 0.5


def trading_state_name(risk_engine) -> str:
    return risk_engine.trading_state.name


def account_currency(cache) -> str:
    """The currency money limits are measured in: the only one of the accounts, else the
    settlement currency of the first instrument traded."""
    currencies = {str(c) for account in cache.accounts() for c in account.balances_total()}
    if len(currencies) == 1:
        return currencies.pop()
    instruments = cache.instruments()
    if instruments:
        currency = getattr(instruments[0], "settlement_currency", None) or \
            instruments[0].quote_currency
        return str(currency)
    return sorted(currencies)[0] if currencies else ""


class RiskGuard(Actor):
    """Evaluates a :class:`RiskBook` and applies its breaches; ``cancel_all`` cancels every
    open order of every strategy and returns how many it asked to cancel."""

    def __init__(self, book: RiskBook, risk_engine, emit: Callable[..., None],
                 cancel_all: Callable[[], int]) -> None:
        super().__init__(ActorConfig(component_id="WorkbenchRiskGuard"))
        self.book = book
        self._risk_engine = risk_engine
        self._emit = emit
        self._cancel_all = cancel_all

    def on_start(self) -> None:
        self.msgbus.subscribe("events.order.*", self._on_order_event)
        self.msgbus.subscribe("events.position.*", self._on_position_event)
        self.clock.set_timer("workbench-risk", timedelta(seconds=CHECK_INTERVAL),
                             callback=lambda _event: self.check())
        self.check()

    def _on_order_event(self, event) -> None:
        if isinstance(event, OrderSubmitted):
            self.book.record_order(time.time())
            self.check()
        elif isinstance(event, OrderFilled):
            self.check()

    def _on_position_event(self, _event) -> None:
        self.check()

    def measure(self) -> tuple[dict[str, float], float | None, float | None]:
        """(net position per instrument, gross exposure, equity) in the account currency."""
        cache, portfolio = self.cache, self.portfolio
        if not self.book.currency:
            self.book.currency = account_currency(cache)
        instruments = {p.instrument_id for p in cache.positions_open()}
        positions = {str(i): float(portfolio.net_position(i)) for i in instruments}
        exposures = [portfolio.net_exposure(i) for i in instruments]
        gross = (sum(abs(e.as_double()) for e in exposures if e is not None)
                 if all(e is not None for e in exposures) else None)
        equity = None
        for account in cache.accounts():
            for currency, money in portfolio.equity(account_id=account.id).items():
                if str(currency) == self.book.currency:
                    equity = (equity or 0.0) + money.as_double()
        return positions, gross, equity

    def check(self) -> None:
        positions, gross, equity = self.measure()
        for breach in self.book.evaluate(time.time(), positions, gross, equity):
            self._apply(breach)
        required = self.book.required_state()
        current = trading_state_name(self._risk_engine)
        if is_looser(current, required):  # loosened behind the guard's back: put it back
            self._risk_engine.set_trading_state(TradingState[required])
            self._emit(event="risk", type="RiskStateRestored", trading_state=required,
                       message=f"trading {required} again: a limit is still breached")

    def _apply(self, breach) -> None:
        current = trading_state_name(self._risk_engine)
        target = stricter(current, breach.action)
        if target != current:
            self._risk_engine.set_trading_state(TradingState[target])
        canceled = self._cancel_all() if breach.cancel_orders else 0
        self.log.warning(f"Risk limit breached: {breach.message}")
        self._emit(event="risk", type="RiskLimitBreached", breach=breach.to_json(),
                   trading_state=target, canceled_orders=canceled, message=breach.message)

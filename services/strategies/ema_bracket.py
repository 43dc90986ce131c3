"""EMA cross with bracket orders: a market entry protected by a stop-loss and a take-profit."""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.config import PositiveFloat, PositiveInt, StrategyConfig
from nautilus_trader.indicators import AverageTrueRange, ExponentialMovingAverage
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class EMACrossBracketConfig(StrategyConfig, frozen=True):
    """Configuration for :class:`EMACrossBracket`.

    The stop-loss sits ``stop_loss_atr`` ATRs from the entry bar's close, the take-profit
    ``take_profit_atr`` ATRs on the other side.
    """

    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    fast_ema_period: PositiveInt = 10
    slow_ema_period: PositiveInt = 20
    atr_period: PositiveInt = 20
    stop_loss_atr: PositiveFloat = 2.0
    take_profit_atr: PositiveFloat = 3.0
    close_positions_on_stop: bool = True


class EMACrossBracket(Strategy):
    """Enter on an EMA cross with a bracket; flatten on the opposite cross and enter again.

    The entry is a market order; its stop-loss (stop-market) and take-profit (limit) are
    reduce-only and cancel each other (OUO). Flattening does not cancel them: like a real
    exchange, the simulated venue cancels reduce-only orders once their position is flat.
    """

    def __init__(self, config: EMACrossBracketConfig) -> None:
        if config.fast_ema_period >= config.slow_ema_period:
            raise ValueError(f"fast_ema_period ({config.fast_ema_period}) must be shorter than "
                             f"slow_ema_period ({config.slow_ema_period})")
        super().__init__(config)
        self.fast_ema = ExponentialMovingAverage(config.fast_ema_period)
        self.slow_ema = ExponentialMovingAverage(config.slow_ema_period)
        self.atr = AverageTrueRange(config.atr_period)
        self.instrument = None
        self._fast_above: bool | None = None

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        if self.instrument is None:
            self.log.error(f"Could not find instrument for {self.config.instrument_id}")
            self.stop()
            return
        for indicator in (self.fast_ema, self.slow_ema, self.atr):
            self.register_indicator_for_bars(self.config.bar_type, indicator)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not self.indicators_initialized():
            return
        fast_above = self.fast_ema.value > self.slow_ema.value
        crossed = self._fast_above is not None and fast_above != self._fast_above
        self._fast_above = fast_above
        if not crossed:
            return
        instrument_id = self.config.instrument_id
        if not self.portfolio.is_flat(instrument_id):
            self.close_all_positions(instrument_id)
        self._enter(OrderSide.BUY if fast_above else OrderSide.SELL, bar.close.as_double())

    def _enter(self, side: OrderSide, close: float) -> None:
        sign = 1.0 if side == OrderSide.BUY else -1.0
        atr = self.atr.value
        stop_loss = close - sign * self.config.stop_loss_atr * atr
        take_profit = close + sign * self.config.take_profit_atr * atr
        bracket = self.order_factory.bracket(
            instrument_id=self.config.instrument_id,
            order_side=side,
            quantity=self.instrument.make_qty(self.config.trade_size),
            sl_trigger_price=self.instrument.make_price(stop_loss),
            tp_price=self.instrument.make_price(take_profit),
        )
        self.submit_order_list(bracket)

    def on_stop(self) -> None:
        self.cancel_all_orders(self.config.instrument_id)
        if self.config.close_positions_on_stop:
            self.close_all_positions(self.config.instrument_id)
        self.unsubscribe_bars(self.config.bar_type)

    def on_reset(self) -> None:
        for indicator in (self.fast_ema, self.slow_ema, self.atr):
            indicator.reset()
        self._fast_above = None

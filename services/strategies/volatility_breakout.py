"""A simple momentum strategy: trade breakouts of the recent range by a multiple of the ATR."""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from nautilus_trader.config import PositiveFloat, PositiveInt, StrategyConfig
from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.model.data import Bar, BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class VolatilityBreakoutConfig(StrategyConfig, frozen=True):
    """Configuration for :class:`VolatilityBreakout`.

    A long entry needs the close above the highest high of ``lookback_bars`` bars plus
    ``breakout_atr_multiple`` ATRs (a short entry mirrors it below the lowest low). A position
    is closed after ``max_holding_bars`` bars or on a breakout the other way.
    """

    instrument_id: InstrumentId
    bar_type: BarType
    trade_size: Decimal
    atr_period: PositiveInt = 20
    lookback_bars: PositiveInt = 20
    breakout_atr_multiple: PositiveFloat = 0.5
    max_holding_bars: PositiveInt = 60
    allow_short: bool = True
    close_positions_on_stop: bool = True


class VolatilityBreakout(Strategy):
    """Enter on a volatility-scaled breakout of the recent high/low range; exit on time."""

    def __init__(self, config: VolatilityBreakoutConfig) -> None:
        super().__init__(config)
        self.atr = AverageTrueRange(config.atr_period)
        self._highs: deque[float] = deque(maxlen=config.lookback_bars)
        self._lows: deque[float] = deque(maxlen=config.lookback_bars)
        self._bars_held = 0
        self.instrument = None

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        if self.instrument is None:
            self.log.error(f"Could not find instrument for {self.config.instrument_id}")
            self.stop()
            return
        self.register_indicator_for_bars(self.config.bar_type, self.atr)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        high, low, close = bar.high.as_double(), bar.low.as_double(), bar.close.as_double()
        ready = self.atr.initialized and len(self._highs) == self._highs.maxlen
        if ready:
            band = self.config.breakout_atr_multiple * self.atr.value
            breakout_up = close > max(self._highs) + band
            breakout_down = close < min(self._lows) - band
            self._trade(breakout_up, breakout_down)
        self._highs.append(high)
        self._lows.append(low)

    def _trade(self, breakout_up: bool, breakout_down: bool) -> None:
        instrument_id = self.config.instrument_id
        if not self.portfolio.is_flat(instrument_id):
            self._bars_held += 1
            is_long = self.portfolio.is_net_long(instrument_id)
            reversal = (is_long and breakout_down) or (not is_long and breakout_up)
            if self._bars_held >= self.config.max_holding_bars or reversal:
                self.close_all_positions(instrument_id)
            return
        if breakout_up:
            self._enter(OrderSide.BUY)
        elif breakout_down and self.config.allow_short:
            self._enter(OrderSide.SELL)

    def _enter(self, side: OrderSide) -> None:
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=side,
            quantity=self.instrument.make_qty(self.config.trade_size),
        )
        self._bars_held = 0
        self.submit_order(order)

    def on_stop(self) -> None:
        self.cancel_all_orders(self.config.instrument_id)
        if self.config.close_positions_on_stop:
            self.close_all_positions(self.config.instrument_id)
        self.unsubscribe_bars(self.config.bar_type)

    def on_reset(self) -> None:
        self.atr.reset()
        self._highs.clear()
        self._lows.clear()
        self._bars_held = 0

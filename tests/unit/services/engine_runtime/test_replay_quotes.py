"""The replay client's quotes for bar-only instruments: the sandbox fills against them."""

from __future__ import annotations

import asyncio

import pytest
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.model.data import Bar, BarType, QuoteTick
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.test_kit.providers import TestInstrumentProvider

from services.engine_runtime.replay import ReplayDataClient, ReplayDataClientConfig


@pytest.fixture
def replay():
    """A replay client on a real message bus; what it hands the data engine is collected."""
    clock = LiveClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    cache = Cache()
    instrument = TestInstrumentProvider.btcusdt_perp_binance()
    cache.add_instrument(instrument)
    handed = []
    msgbus.register("DataEngine.process", handed.append)
    loop = asyncio.new_event_loop()
    client = ReplayDataClient(loop, msgbus, cache, clock, ReplayDataClientConfig(), catalog=None)
    yield client, instrument, handed
    loop.close()


def _bar(instrument, close: str, volume: str) -> Bar:
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    price = Price.from_str(close)
    return Bar(bar_type, price, price, price, price, Quantity.from_str(volume), 0, 0)


def test_each_bar_is_followed_by_a_quote_at_its_close_sized_by_its_volume(replay):
    client, instrument, handed = replay

    client._emit(_bar(instrument, "45000.5", "2.500"))

    bar, quote = handed
    assert isinstance(bar, Bar) and isinstance(quote, QuoteTick)
    assert (str(quote.bid_price), str(quote.ask_price)) == ("45000.5", "45000.5")
    assert (str(quote.bid_size), str(quote.ask_size)) == ("2.500", "2.500")


def test_a_bar_without_volume_is_quoted_at_the_smallest_size(replay):
    """Without a quote the sandbox would fill the next order at the previous bar's price and
    time, one bar earlier than NautilusTrader's backtest, which trades such a bar."""
    client, instrument, handed = replay

    client._emit(_bar(instrument, "45001.0", "0.000"))

    quote = handed[1]
    assert str(quote.bid_price) == "45001.0"
    assert quote.bid_size == quote.ask_size == instrument.size_increment == Quantity.from_str(
        "0.001")

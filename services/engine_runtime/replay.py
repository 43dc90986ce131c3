"""A NautilusTrader live data client that replays catalog data at a chosen speed.

Paper and sandbox engines trade against NautilusTrader's SandboxExecutionClient, which needs a
live data client for its venue. This one streams quotes and bars from a ParquetDataCatalog, so a
paper engine really trades with no network. Replayed data is stamped with the live clock (the
strategy sees it as arriving now); the original timestamps only set the pace: ``ts_event`` is
when the replay's schedule says the record happens, ``ts_init`` when it is handed to the engine,
so ``ts_init - ts_event`` is the replay's real delivery latency (the feed health measures it).

For an instrument with bars but no quotes in the catalog, each bar is followed by a quote at its
close (bid = ask = close, size = the bar's volume): the sandbox matching engine fills orders
against quotes only, and a zero spread invents nothing the bar does not say. A bar with no
volume is quoted at the instrument's smallest size, as NautilusTrader's backtest matching engine
does for it: without that quote the sandbox would fill the next order at the previous bar's
price and time, one bar earlier than the backtest.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.live.config import LiveDataClientConfig
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.data import Bar, BarType, QuoteTick
from nautilus_trader.model.identifiers import ClientId, InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

CHUNK = timedelta(days=1)


class ReplayDataClientConfig(LiveDataClientConfig, frozen=True, kw_only=True):
    """Where to read data and how fast to replay it.

    speed: seconds of market data per second of wall-clock time (60 = one minute per second).
    start: ISO time in the data to start from (default: the first record of each series).
    """

    catalog_path: str = "/catalog"
    instrument_ids: list[str] = []
    start: str | None = None
    speed: float = 60.0


def _start_ns(config: ReplayDataClientConfig) -> int | None:
    return pd.Timestamp(config.start, tz="UTC").value if config.start else None


class ReplayDataClient(LiveMarketDataClient):
    """Streams subscribed quote ticks and external bars from the catalog, paced by ``speed``."""

    def __init__(self, loop, msgbus, cache, clock, config: ReplayDataClientConfig, catalog) -> None:
        super().__init__(
            loop=loop, client_id=ClientId("REPLAY"), venue=None, msgbus=msgbus, cache=cache,
            clock=clock, instrument_provider=InstrumentProvider(), config=config,
        )
        self._catalog = catalog
        self._speed = float(config.speed)
        self._start_ns = _start_ns(config)
        self._streams: dict[str, asyncio.Task] = {}
        self._quoted_instruments: set[InstrumentId] = set()
        # One replay clock for every series: data time t is emitted at wall time
        # wall_origin + (t - data_origin) / speed, so quotes and bars stay in step.
        self._data_origin: int | None = None
        self._wall_origin: float | None = None

    async def _connect(self) -> None:
        for instrument in self._cache.instruments():
            self._handle_data(instrument)
        self._log.info(f"Replaying {self._catalog.path} at {self._speed:g}x")

    async def _disconnect(self) -> None:
        for task in self._streams.values():
            task.cancel()
        self._streams.clear()

    async def _subscribe_quote_ticks(self, command) -> None:
        instrument_id = command.instrument_id
        self._quoted_instruments.add(instrument_id)
        self._start_stream(f"quotes:{instrument_id}", self._quotes(instrument_id))

    async def _subscribe_bars(self, command) -> None:
        bar_type: BarType = command.bar_type
        if not bar_type.is_externally_aggregated():
            return  # the data engine builds internal bars from the quotes it subscribes to
        self._start_stream(f"bars:{bar_type}", self._bars(bar_type))

    async def _unsubscribe_quote_ticks(self, command) -> None:
        self._stop_stream(f"quotes:{command.instrument_id}")

    async def _unsubscribe_bars(self, command) -> None:
        self._stop_stream(f"bars:{command.bar_type}")

    def _start_stream(self, key: str, chunks) -> None:
        if key not in self._streams:
            self._streams[key] = self.create_task(self._replay(key, chunks), log_msg=f"replay {key}")

    def _stop_stream(self, key: str) -> None:
        task = self._streams.pop(key, None)
        if task is not None:
            task.cancel()

    def _quotes(self, instrument_id: InstrumentId):
        def query(start, end):
            return self._catalog.quote_ticks(instrument_ids=[str(instrument_id)], start=start, end=end)
        return self._chunks(query, self._catalog.query_first_timestamp(QuoteTick, str(instrument_id)))

    def _bars(self, bar_type: BarType):
        def query(start, end):
            return self._catalog.bars(bar_types=[str(bar_type)], start=start, end=end)
        return self._chunks(query, self._catalog.query_first_timestamp(Bar, str(bar_type)))

    def _chunks(self, query, first: pd.Timestamp | None):
        """Yield lists of records a day at a time, so a year of data is never loaded at once."""
        if first is None:
            return
        cursor = pd.Timestamp(self._start_ns or first.value, tz="UTC")
        last = None
        empty_days = 0
        while empty_days < 30:
            end = cursor + CHUNK
            records = [r for r in query(cursor, end - pd.Timedelta(1, "ns"))
                       if last is None or r.ts_event > last]
            cursor = end
            if not records:
                empty_days += 1  # weekends and holidays; stop after a month without data
                continue
            empty_days = 0
            last = records[-1].ts_event
            yield records

    async def _replay(self, key: str, chunks) -> None:
        count = 0
        for records in chunks:
            for record in records:
                late = await self._wait_until(record.ts_event)
                self._emit(record, int(late * 1e9))
                count += 1
        self._log.info(f"Replay of {key} finished after {count} records")

    async def _wait_until(self, ts_data: int) -> float:
        """Sleep until the record is due; return how many seconds late it is then."""
        now = self._loop.time()
        if self._data_origin is None:
            self._data_origin, self._wall_origin = ts_data, now
        due = self._wall_origin + (ts_data - self._data_origin) / 1e9 / self._speed
        if due > now:
            await asyncio.sleep(due - now)
        return max(0.0, self._loop.time() - due)

    def _emit(self, record, late_ns: int = 0) -> None:
        now = self._clock.timestamp_ns()
        due = now - late_ns
        if isinstance(record, QuoteTick):
            self._handle_data(QuoteTick(record.instrument_id, record.bid_price, record.ask_price,
                                        record.bid_size, record.ask_size, due, now))
            return
        bar = Bar(record.bar_type, record.open, record.high, record.low, record.close,
                  record.volume, due, now)
        self._handle_data(bar)
        instrument_id = record.bar_type.instrument_id
        if instrument_id not in self._quoted_instruments:
            size = record.volume
            if size.as_double() <= 0:
                instrument = self._cache.instrument(instrument_id)
                size = instrument.size_increment if instrument is not None else None
            if size is not None:
                self._handle_data(QuoteTick(instrument_id, record.close, record.close, size,
                                            size, due, now))


class ReplayDataClientFactory(LiveDataClientFactory):
    """Builds the replay client and puts the configured instruments in the cache.

    Instruments must be cached before the node connects: the SandboxExecutionClient reads them
    from the cache when it connects, which happens before any data client has connected.
    """

    @staticmethod
    def create(loop, name: str, config: ReplayDataClientConfig, msgbus: MessageBus, cache: Cache,
               clock: LiveClock) -> ReplayDataClient:
        catalog = ParquetDataCatalog(config.catalog_path)
        wanted = list(config.instrument_ids)
        found = catalog.instruments(instrument_ids=wanted or None)
        missing = set(wanted) - {str(i.id) for i in found}
        if missing:
            raise ValueError(f"instruments not in the catalog at {config.catalog_path}: "
                             f"{', '.join(sorted(missing))}")
        for instrument in found:
            cache.add_instrument(instrument)
        return ReplayDataClient(loop, msgbus, cache, clock, config, catalog)

"""A deterministic, clearly labelled synthetic sample catalog for first start.

Three instruments, generated from a fixed seed (the same bytes on every machine):
  * BTCUSDT-PERP.BINANCE, a crypto perpetual: one year of 1-minute LAST bars, 24/7;
  * EUR/USD.SIM, an FX pair: three months of bid/ask quotes every 15 s, closed at weekends;
  * AAPL.XNAS, an equity: one year of 1-minute LAST bars in regular trading hours.
Prices are random walks with fat tails and volatility regimes: realistic enough to exercise
strategies and charts, and never to be mistaken for market data (``SAMPLE_MARKER`` says so).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_MARKER = "WORKBENCH_SAMPLE.json"
log = logging.getLogger(__name__)
SEED = 20240101
# What the generator writes, series by series: first and last timestamp (UTC). In a sample
# catalog, data of these series inside these ranges is synthetic; anything else was imported.
SAMPLE_SERIES = {
    "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL": ("2024-01-01T00:01Z", "2025-01-01T00:00Z"),
    "AAPL.XNAS-1-MINUTE-LAST-EXTERNAL": ("2024-01-01T14:31Z", "2024-12-31T21:00Z"),
    "EUR/USD.SIM:quotes": ("2024-01-01T00:00Z", "2024-03-31T23:59:45Z"),
}


def is_sample_catalog(path: str | os.PathLike) -> bool:
    return (Path(path) / SAMPLE_MARKER).exists()


def _walk(rng: np.random.Generator, n: int, sigma: float, start: float) -> np.ndarray:
    """Log-price random walk with Student-t shocks and slowly changing volatility regimes."""
    regime = np.repeat(rng.lognormal(0.0, 0.35, n // 1440 + 1), 1440)[:n]
    # Weekly drift regimes, small next to the noise (a week's drift ~ half a week's volatility).
    drift = np.repeat(rng.normal(0.0, sigma * 0.005, n // 10080 + 1), 10080)[:n]
    shocks = rng.standard_t(4, n) / np.sqrt(2.0)  # t(4) has variance 2
    return start * np.exp(np.cumsum(drift + sigma * regime * shocks))


def _ohlc(rng: np.random.Generator, close: np.ndarray, sigma: float, precision: int):
    open_ = np.r_[close[0], close[:-1]]
    wick = np.abs(rng.normal(0.0, sigma * 0.6, (2, close.size)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    # Round after the envelope so rounding cannot put high below open/close or low above.
    o, c = np.round(open_, precision), np.round(close, precision)
    h = np.maximum(np.round(high, precision), np.maximum(o, c))
    lo = np.minimum(np.round(low, precision), np.minimum(o, c))
    return o, h, lo, c


def _writable(values) -> np.ndarray:
    # NautilusTrader's Cython constructors need writable buffers; pandas 3 hands out read-only
    # views (copy-on-write), so always pass fresh copies.
    return np.array(values, dtype=np.float64, copy=True)


def _bars(bar_type_text: str, index: pd.DatetimeIndex, ohlc, volume, price_prec: int, size_prec: int):
    from nautilus_trader.model.data import Bar, BarType

    # Bars are stamped at their close: a 1-minute bar opened at 10:00 has ts_event 10:01.
    ts = np.array(index.as_unit("ns").asi8 + 60_000_000_000, dtype=np.uint64)
    o, h, lo, c = ohlc
    return Bar.from_raw_arrays_to_list(
        BarType.from_str(bar_type_text), price_prec, size_prec,
        _writable(o), _writable(h), _writable(lo), _writable(c), _writable(np.round(volume, size_prec)),
        ts.copy(), ts.copy(),
    )


def _instruments():
    from nautilus_trader.model.currencies import BTC, EUR, USD, USDT
    from nautilus_trader.model.identifiers import InstrumentId, Symbol
    from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair, Equity
    from nautilus_trader.model.objects import Money, Price, Quantity

    btc = CryptoPerpetual(
        instrument_id=InstrumentId.from_str("BTCUSDT-PERP.BINANCE"), raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC, quote_currency=USDT, settlement_currency=USDT, is_inverse=False,
        price_precision=1, size_precision=3, price_increment=Price.from_str("0.1"),
        size_increment=Quantity.from_str("0.001"), max_quantity=Quantity.from_str("1000.000"),
        min_quantity=Quantity.from_str("0.001"), max_notional=None, min_notional=Money(5, USDT),
        max_price=Price.from_str("1000000.0"), min_price=Price.from_str("0.1"),
        margin_init=Decimal("0.05"), margin_maint=Decimal("0.025"),
        maker_fee=Decimal("0.0002"), taker_fee=Decimal("0.0004"), ts_event=0, ts_init=0,
    )
    eurusd = CurrencyPair(
        instrument_id=InstrumentId.from_str("EUR/USD.SIM"), raw_symbol=Symbol("EUR/USD"),
        base_currency=EUR, quote_currency=USD, price_precision=5, size_precision=0,
        price_increment=Price.from_str("0.00001"), size_increment=Quantity.from_int(1),
        lot_size=Quantity.from_int(1000), max_quantity=Quantity.from_int(100_000_000),
        min_quantity=Quantity.from_int(1000), max_price=None, min_price=None, max_notional=None,
        min_notional=None, margin_init=Decimal("0.03"), margin_maint=Decimal("0.03"),
        maker_fee=Decimal("0.00002"), taker_fee=Decimal("0.00002"), ts_event=0, ts_init=0,
    )
    aapl = Equity(
        instrument_id=InstrumentId.from_str("AAPL.XNAS"), raw_symbol=Symbol("AAPL"), currency=USD,
        price_precision=2, price_increment=Price.from_str("0.01"), lot_size=Quantity.from_int(1),
        isin="US0378331005", maker_fee=Decimal("0.0001"), taker_fee=Decimal("0.0001"),
        ts_event=0, ts_init=0,
    )
    return btc, eurusd, aapl


def generate_sample_catalog(path: str | os.PathLike) -> Path:
    """Write the sample catalog to ``path`` atomically (built aside, then renamed into place).

    Processes starting at once on a fresh checkout take turns: the first builds it, the others
    wait for it and use it.
    """
    target = Path(path)
    if is_sample_catalog(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes, or when a builder dies
        if is_sample_catalog(target):
            return target
        return _generate(target)
    finally:
        os.close(fd)


def _generate(target: Path) -> Path:
    from nautilus_trader.model.data import QuoteTick
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not the workbench's sample catalog")
    staging = target.with_name(f".{target.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    catalog = ParquetDataCatalog(str(staging))
    log.info("generating the synthetic sample catalog at %s (first start only, ~10 s): "
             "1/3 BTCUSDT-PERP bars", target)
    rng = np.random.default_rng(SEED)
    btc, eurusd, aapl = _instruments()
    catalog.write_data([btc, eurusd, aapl])

    # Crypto perpetual: 2024 in full, every minute (527,040 bars).
    index = pd.date_range("2024-01-01", "2024-12-31 23:59", freq="1min", tz="UTC")
    sigma = 0.60 / np.sqrt(365 * 1440)
    close = _walk(rng, index.size, sigma, 42_000.0)
    volume = rng.gamma(2.0, 4.0, index.size)
    catalog.write_data(_bars("BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL", index,
                             _ohlc(rng, close, sigma, 1), volume, 1, 3))

    log.info("sample catalog: 2/3 AAPL bars")
    # Equity: regular US hours (14:30-21:00 UTC), weekdays of 2024.
    minutes = pd.date_range("2024-01-01", "2024-12-31 23:59", freq="1min", tz="UTC")
    minute_of_day = minutes.hour * 60 + minutes.minute
    open_mask = (minutes.day_of_week < 5) & (minute_of_day >= 870) & (minute_of_day < 1260)
    index = minutes[open_mask]
    sigma = 0.25 / np.sqrt(252 * 390)
    close = _walk(rng, index.size, sigma, 185.0)
    volume = np.round(rng.gamma(2.0, 5_000.0, index.size))
    catalog.write_data(_bars("AAPL.XNAS-1-MINUTE-LAST-EXTERNAL", index,
                             _ohlc(rng, close, sigma, 2), volume, 2, 0))

    log.info("sample catalog: 3/3 EUR/USD quotes")
    # FX: quotes every 15 s, Sunday 22:00 to Friday 22:00 UTC, January to March 2024.
    ticks = pd.date_range("2024-01-01", "2024-03-31 23:59:45", freq="15s", tz="UTC")
    hour_of_week = ticks.day_of_week * 24 + ticks.hour
    fx_open = ~((hour_of_week >= 4 * 24 + 22) & (hour_of_week < 6 * 24 + 22))
    ticks = ticks[fx_open]
    sigma = 0.07 / np.sqrt(252 * 5760)
    mid = _walk(rng, ticks.size, sigma, 1.1040)
    half_spread = np.round(rng.uniform(0.00002, 0.00008, ticks.size), 5)
    bid = np.round(mid - half_spread, 5)
    ask = np.maximum(np.round(mid + half_spread, 5), bid + 0.00001)
    sizes = np.round(rng.uniform(1e6, 5e6, (2, ticks.size)), -3)
    ts = np.array(ticks.as_unit("ns").asi8, dtype=np.uint64)
    quotes = QuoteTick.from_raw_arrays_to_list(
        InstrumentId.from_str("EUR/USD.SIM"), 5, 0, _writable(bid), _writable(ask),
        _writable(sizes[0]), _writable(sizes[1]), ts.copy(), ts.copy(),
    )
    catalog.write_data(quotes)

    (staging / SAMPLE_MARKER).write_text(json.dumps({
        "synthetic": True, "seed": SEED,
        "note": "Synthetic sample data generated by Nautilus Workbench. Not market data.",
    }, indent=2))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rmdir()  # empty folder (checked above)
    os.replace(staging, target)
    log.info("sample catalog ready")
    return target

"""The generated sample catalog: what it holds, that it is deterministic, and its label."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from services.catalog import CatalogService
from services.catalog.sample import SAMPLE_MARKER, SAMPLE_SERIES, generate_sample_catalog

pytestmark = pytest.mark.integration


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.parquet"))}


def test_sample_catalog_holds_the_three_asset_classes(sample_catalog_path):
    # Arrange
    catalog = CatalogService(str(sample_catalog_path))

    # Act
    instruments = {i.instrument_id: i for i in catalog.instruments()}
    series = {s.key: s for s in catalog.series()}

    # Assert: crypto perpetual with a full year of 1-minute LAST bars
    assert instruments["BTCUSDT-PERP.BINANCE"].instrument_class == "CryptoPerpetual"
    btc = series["BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"]
    assert btc.last - btc.first >= pd.Timedelta(days=365)
    assert btc.rows == 366 * 24 * 60  # 2024 is a leap year, every minute
    # FX pair with bid/ask quotes, closed at weekends
    assert instruments["EUR/USD.SIM"].instrument_class == "CurrencyPair"
    quotes = catalog.quotes("EUR/USD.SIM")
    assert (quotes["bid_price"] < quotes["ask_price"]).all()
    saturday_noon = quotes.index.day_of_week.isin([5]) & (quotes.index.hour == 12)
    assert not saturday_noon.any()
    # Equity with 1-minute bars in regular hours only
    assert instruments["AAPL.XNAS"].instrument_class == "Equity"
    aapl = catalog.bars("AAPL.XNAS-1-MINUTE-LAST-EXTERNAL")
    assert set(aapl.index.hour) <= set(range(14, 22))
    assert (aapl["low"] <= aapl[["open", "close"]].min(axis=1)).all()
    assert (aapl["high"] >= aapl[["open", "close"]].max(axis=1)).all()
    # Labelled as synthetic
    assert (sample_catalog_path / SAMPLE_MARKER).exists()


def test_the_sample_table_names_what_the_generator_writes(sample_catalog_path):
    # Arrange: in a sample catalog, data inside these ranges is labelled synthetic.
    catalog = CatalogService(str(sample_catalog_path), is_sample=True)

    # Act
    series = {s.key: (s.first, s.last) for s in catalog.series()}
    coverage = {c.key: c for c in catalog.coverages()}

    # Assert
    assert series == {key: (pd.Timestamp(a), pd.Timestamp(b))
                      for key, (a, b) in SAMPLE_SERIES.items()}
    assert {key: c.origin for key, c in coverage.items()} == dict.fromkeys(
        SAMPLE_SERIES, "synthetic sample")
    # Against their own calendars (Nasdaq, FX, 24/7), none of them has a hole.
    assert {key: c.holes for key, c in coverage.items()} == dict.fromkeys(SAMPLE_SERIES, ())


def test_sample_catalog_is_deterministic(tmp_path, sample_catalog_path):
    # Act (generation time is measured by bench/bench_sample_catalog.py, not here)
    generate_sample_catalog(tmp_path / "again")

    # Assert: byte-identical Parquet files
    assert _digest(tmp_path / "again") == _digest(sample_catalog_path)

"""Tests of services/catalog/inventory.py on catalogs written by hand with pyarrow."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.catalog.inventory import QUOTE_BAR_SUFFIX, CatalogService, decode_fixed
from services.errors import CatalogError

BAR_TYPE = "EUR/USD.SIM-1-MINUTE-LAST-EXTERNAL"
QUOTE_INSTRUMENT = "BTCUSDT.BINANCE"


def _int128(raw: int) -> bytes:
    """One fixed-point value as NautilusTrader stores it: little-endian two's complement."""
    return raw.to_bytes(16, "little", signed=True)


def _fixed_column(prices: list[str]) -> pa.Array:
    """Prices given as decimal text, scaled by 1e16 exactly (no float on the way)."""
    return pa.array([_int128(int(Decimal(p) * 10**16)) for p in prices], type=pa.binary(16))


def _file_name(first: str, last: str) -> str:
    def stamp(text: str) -> str:
        return pd.Timestamp(text).strftime("%Y-%m-%dT%H-%M-%S-%f") + "000Z"

    return f"{stamp(first)}_{stamp(last)}.parquet"


@pytest.fixture
def catalog_root(tmp_path):
    """An empty catalog folder (``data/`` not yet created)."""
    return tmp_path / "catalog"


@pytest.fixture
def write_file(catalog_root, utc):
    """Write one Parquet data file the way NautilusTrader lays a catalog out."""

    def write(folder: str, ident: str, times: list[str], columns: dict[str, list[str]],
              metadata: dict[str, str]) -> None:
        directory = catalog_root / "data" / folder / ident
        directory.mkdir(parents=True, exist_ok=True)
        ts = [utc(t).value for t in times]
        arrays = {name: _fixed_column(values) for name, values in columns.items()}
        arrays["ts_event"] = pa.array(ts, type=pa.uint64())
        arrays["ts_init"] = pa.array(ts, type=pa.uint64())
        table = pa.table(arrays).replace_schema_metadata(metadata)
        pq.write_table(table, directory / _file_name(times[0], times[-1]))

    return write


@pytest.fixture
def small_catalog(catalog_root, write_file):
    """Two files of EUR/USD 1-minute bars and one file of BTCUSDT quotes."""
    meta = {"bar_type": BAR_TYPE, "instrument_id": "EUR/USD.SIM"}

    def bars(closes: list[str]) -> dict[str, list[str]]:
        return {"open": closes, "high": closes, "low": closes, "close": closes,
                "volume": ["1"] * len(closes)}

    write_file("bar", "EURUSD.SIM-1-MINUTE-LAST-EXTERNAL",
               ["2024-01-02 00:01", "2024-01-02 00:02", "2024-01-02 00:03"],
               bars(["1.10001", "1.10002", "1.10003"]), meta)
    write_file("bar", "EURUSD.SIM-1-MINUTE-LAST-EXTERNAL",
               ["2024-01-02 00:04", "2024-01-02 00:05"], bars(["1.10004", "1.10005"]), meta)
    write_file("quote_tick", QUOTE_INSTRUMENT,
               ["2024-01-02 00:00:10", "2024-01-02 00:00:50", "2024-01-02 00:01:30"],
               {"bid_price": ["100", "102", "99.5"], "ask_price": ["102", "104", "100.5"]},
               {"instrument_id": QUOTE_INSTRUMENT})
    return CatalogService(str(catalog_root))


# -- decode_fixed --------------------------------------------------------------------------


def test_decode_fixed_reads_int128_fixed_point_prices():
    # Arrange: raw int128 values in units of 1e-16, including negatives and extremes
    raw = [
        420197 * 10**15,  # 42019.7 * 1e16
        -420197 * 10**15,  # -42019.7
        0,
        15 * 10**15,  # 1.5
        -5 * 10**15,  # -0.5
        10**22,  # 1,000,000
        -(10**22),  # -1,000,000
        123456789,  # 0.0000000123456789
    ]
    column = pa.chunked_array([pa.array([_int128(r) for r in raw], type=pa.binary(16))])

    # Act
    values = decode_fixed(column)

    # Assert
    expected = [42019.7, -42019.7, 0.0, 1.5, -0.5, 1e6, -1e6, 1.23456789e-8]
    assert values.dtype == "float64"
    assert values.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_decode_fixed_handles_several_chunks_and_slices():
    # Arrange
    whole = pa.array([_int128(r * 10**16) for r in (1, -2, 3, -4, 5)], type=pa.binary(16))
    chunked = pa.chunked_array([whole.slice(0, 2), whole.slice(2, 1), whole.slice(3)])
    sliced = pa.chunked_array([whole.slice(1, 3)])

    # Act
    from_chunks = decode_fixed(chunked)
    from_slice = decode_fixed(sliced)

    # Assert
    assert from_chunks.tolist() == [1.0, -2.0, 3.0, -4.0, 5.0]
    assert from_slice.tolist() == [-2.0, 3.0, -4.0]


# -- empty and missing catalogs -------------------------------------------------------------


@pytest.mark.parametrize("make_data_folder", [False, True])
def test_empty_catalog_has_no_series_and_no_instruments(catalog_root, make_data_folder):
    # Arrange
    catalog_root.mkdir()
    if make_data_folder:
        (catalog_root / "data").mkdir()
    catalog = CatalogService(str(catalog_root))

    # Act / Assert
    assert catalog.series() == []
    assert catalog.instruments() == []
    assert catalog.backtestable() == []


def test_missing_catalog_folder_reads_as_empty(tmp_path):
    # Arrange
    catalog = CatalogService(str(tmp_path / "does-not-exist"))

    # Act / Assert
    assert catalog.exists() is False
    assert catalog.series() == []
    assert catalog.instruments() == []


def test_unknown_bar_type_in_an_empty_catalog_says_it_has_no_data(catalog_root):
    # Arrange
    catalog_root.mkdir()
    catalog = CatalogService(str(catalog_root))

    # Act
    with pytest.raises(CatalogError) as info:
        catalog.backtestable_series(BAR_TYPE)

    # Assert
    assert repr(BAR_TYPE) in str(info.value)
    assert "(the catalog has no data)" in str(info.value)


def test_unknown_instrument_says_the_catalog_is_empty(catalog_root):
    # Arrange
    catalog_root.mkdir()
    catalog = CatalogService(str(catalog_root))

    # Act
    with pytest.raises(CatalogError) as info:
        catalog.instrument("EUR/USD.SIM")

    # Assert
    assert "'EUR/USD.SIM' is not in the catalog" in str(info.value)
    assert "(the catalog is empty)" in str(info.value)


# -- inventory from metadata ----------------------------------------------------------------


def test_series_inventory_comes_from_file_names_and_footers(small_catalog, utc):
    # Act
    series = {s.key: s for s in small_catalog.series()}

    # Assert
    assert set(series) == {BAR_TYPE, f"{QUOTE_INSTRUMENT}:quotes"}
    bars = series[BAR_TYPE]
    assert bars.data_type == "bars"
    assert bars.instrument_id == "EUR/USD.SIM"  # from the footer, not the folder name
    assert (bars.first, bars.last) == (utc("2024-01-02 00:01"), utc("2024-01-02 00:05"))
    assert (bars.rows, bars.files) == (3 + 2, 2)
    assert bars.bytes > 0
    quotes = series[f"{QUOTE_INSTRUMENT}:quotes"]
    assert (quotes.data_type, quotes.rows, quotes.files) == ("quotes", 3, 1)


def test_backtestable_series_offer_stored_bars_and_bars_from_quotes(small_catalog):
    # Act
    offered = {s.bar_type: s for s in small_catalog.backtestable()}

    # Assert
    assert set(offered) == {BAR_TYPE, QUOTE_INSTRUMENT + QUOTE_BAR_SUFFIX}
    assert offered[BAR_TYPE].data_type == "bars"
    assert offered[QUOTE_INSTRUMENT + QUOTE_BAR_SUFFIX].data_type == "quotes"
    assert small_catalog.backtestable_series(BAR_TYPE) == offered[BAR_TYPE]


def test_unknown_bar_type_lists_what_is_available(small_catalog):
    # Act
    with pytest.raises(CatalogError) as info:
        small_catalog.backtestable_series("GBP/USD.SIM-1-MINUTE-LAST-EXTERNAL")

    # Assert
    message = str(info.value)
    assert "No data for bar type 'GBP/USD.SIM-1-MINUTE-LAST-EXTERNAL'" in message
    assert BAR_TYPE in message
    assert QUOTE_INSTRUMENT + QUOTE_BAR_SUFFIX in message


# -- column reads --------------------------------------------------------------------------


def test_bars_are_decoded_across_files_and_filtered_by_time(small_catalog, utc):
    # Act
    everything = small_catalog.bars(BAR_TYPE)
    window = small_catalog.bars(BAR_TYPE, start=utc("2024-01-02 00:02"),
                                end=utc("2024-01-02 00:04"))

    # Assert
    assert everything["close"].tolist() == pytest.approx(
        [1.10001, 1.10002, 1.10003, 1.10004, 1.10005], rel=1e-12)
    assert everything.index[0] == utc("2024-01-02 00:01")
    assert everything.index.is_monotonic_increasing
    assert list(window.index) == [utc("2024-01-02 00:02"), utc("2024-01-02 00:03"),
                                  utc("2024-01-02 00:04")]


def test_bars_from_quotes_are_mid_prices_stamped_at_the_minute_close(small_catalog, utc):
    # Arrange: mids are (100+102)/2 = 101 at 00:00:10, (102+104)/2 = 103 at 00:00:50,
    # (99.5+100.5)/2 = 100 at 00:01:30

    # Act
    bars = small_catalog.bars(QUOTE_INSTRUMENT + QUOTE_BAR_SUFFIX)

    # Assert
    assert list(bars.index) == [utc("2024-01-02 00:01"), utc("2024-01-02 00:02")]
    first = bars.iloc[0]
    assert (first["open"], first["high"], first["low"], first["close"]) == (101, 103, 101, 103)
    assert bars.iloc[1]["close"] == 100.0
    assert bars["volume"].tolist() == [0.0, 0.0]


def test_bars_of_a_series_with_no_files_are_empty(small_catalog):
    # Act
    bars = small_catalog.bars("GBP/USD.SIM-1-MINUTE-LAST-EXTERNAL")

    # Assert
    assert bars.empty
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]


# -- coverage: segments, holes, origin ----------------------------------------------------


@pytest.fixture
def holey_catalog(catalog_root, write_file):
    """EUR/USD 1-minute bars on 2024-01-02 00:01-00:03 and 12:01-12:02 (two files; a 24/7
    instrument, no instrument file: 11h58m of missing bars is a hole), and EUR/USD.SIM quotes
    inside and outside the sample generator's range."""
    meta = {"bar_type": BAR_TYPE, "instrument_id": "EUR/USD.SIM"}

    def bars(n: int) -> dict[str, list[str]]:
        return {c: ["1.1"] * n for c in ("open", "high", "low", "close", "volume")}

    write_file("bar", "EURUSD.SIM-1-MINUTE-LAST-EXTERNAL",
               ["2024-01-02 00:01", "2024-01-02 00:02", "2024-01-02 00:03"], bars(3), meta)
    write_file("bar", "EURUSD.SIM-1-MINUTE-LAST-EXTERNAL",
               ["2024-01-02 12:01", "2024-01-02 12:02"], bars(2), meta)
    write_file("quote_tick", "EURUSD.SIM", ["2023-06-01 10:00", "2023-06-01 10:01"],
               {"bid_price": ["1.1", "1.1"], "ask_price": ["1.2", "1.2"]},
               {"instrument_id": "EUR/USD.SIM"})
    write_file("quote_tick", "EURUSD.SIM", ["2024-02-01 10:00", "2024-02-01 10:01"],
               {"bid_price": ["1.1", "1.1"], "ask_price": ["1.2", "1.2"]},
               {"instrument_id": "EUR/USD.SIM"})
    return catalog_root


def test_coverage_splits_a_series_at_its_holes_and_stores_the_spans(holey_catalog, utc):
    # Arrange
    catalog = CatalogService(str(holey_catalog))

    # Act
    coverage = catalog.coverage(BAR_TYPE)

    # Assert
    assert [(s.first, s.last, s.rows, s.origin) for s in coverage.segments] == [
        (utc("2024-01-02 00:01"), utc("2024-01-02 00:03"), 3, "imported"),
        (utc("2024-01-02 12:01"), utc("2024-01-02 12:02"), 2, "imported")]
    assert coverage.calendar == "24/7"  # no instrument: the default calendar
    [hole] = coverage.holes
    assert hole.open_seconds == 11 * 3600 + 57 * 60  # 00:03 to 12:00
    assert (holey_catalog / ".workbench-coverage.json").exists()
    assert [c.key for c in catalog.coverages()] == [s.key for s in catalog.series()]


def test_sample_data_is_labelled_by_the_generator_s_range(holey_catalog):
    # Arrange: the sample generator writes EUR/USD.SIM quotes in January-March 2024.
    sample = CatalogService(str(holey_catalog), is_sample=True)
    plain = CatalogService(str(holey_catalog))

    # Act
    labelled = sample.coverage("EUR/USD.SIM:quotes")
    unlabelled = plain.coverage("EUR/USD.SIM:quotes")

    # Assert: June 2023 was imported, February 2024 is the generator's.
    assert [s.origin for s in labelled.segments] == ["imported", "synthetic sample"]
    assert labelled.origin == "sample + imported"
    assert {s.origin for s in unlabelled.segments} == {"imported"}
    assert sample.coverage(BAR_TYPE).origin == "imported"  # not a series the sample writes


def test_coverage_of_bars_built_from_quotes_is_the_quotes_coverage(holey_catalog):
    catalog = CatalogService(str(holey_catalog))

    assert (catalog.coverage("EUR/USD.SIM" + QUOTE_BAR_SUFFIX).segments
            == catalog.coverage("EUR/USD.SIM:quotes").segments)


def test_rows_between_counts_only_the_rows_in_the_range(holey_catalog, utc):
    catalog = CatalogService(str(holey_catalog))

    assert catalog.rows_between(BAR_TYPE, utc("2024-01-02 00:02"), utc("2024-01-02 12:01")) == 3
    assert catalog.rows_between(BAR_TYPE, utc("2024-01-02 01:00"), utc("2024-01-02 12:00")) == 0
    assert catalog.rows_between(BAR_TYPE, utc("2023-01-01"), utc("2025-01-01")) == 5
    assert catalog.rows_between("EUR/USD.SIM" + QUOTE_BAR_SUFFIX, utc("2024-02-01"),
                                utc("2024-02-01 10:00")) == 1

"""Import the real market data of ../shared/data and check it against real market structure."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from services.catalog import CatalogService
from services.catalog.importer import ImportOptions
from services.catalog.writer import CatalogWriter
from tests.conftest import shared_data_file

CME_FILE = "xcme-6EH4-1m-2024-01.csv.gz"
BINANCE_FILE = "binance-btcusdt-perp-1m-2022-01.csv"
CME_KEY = "6EH4.XCME-1-MINUTE-LAST-EXTERNAL"
BTC_KEY = "BTCUSDT-PERP.BINANCE-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def writer(tmp_path):
    return CatalogWriter(CatalogService(str(tmp_path / "catalog")))


def test_binance_file_imports_with_full_coverage_and_no_gaps(writer):
    # Act
    result = writer.import_file(str(shared_data_file(BINANCE_FILE)),
                                ImportOptions("BTCUSDT-PERP.BINANCE"))

    # Assert: coverage from metadata matches the file; a 24/7 market with no missing minute.
    info = writer.catalog.find_series(BTC_KEY)
    assert (info.rows, info.first, info.last) == (
        45_031, pd.Timestamp("2021-12-31 23:01", tz="UTC"), pd.Timestamp("2022-02-01 05:31", tz="UTC"))
    assert result.quality.calendar == "24/7" and result.quality.gaps == ()
    instrument = writer.catalog.instrument("BTCUSDT-PERP.BINANCE")
    assert (instrument.instrument_class, instrument.base_currency, instrument.quote_currency,
            instrument.price_precision) == ("CryptoPerpetual", "BTC", "USDT", 2)  # 46814.25 occurs


def test_cme_breaks_and_weekends_are_not_gaps_but_a_removed_hour_is(writer, tmp_path):
    # Arrange: the original, and a copy without the bars of 2024-01-10 14:00-15:00 UTC.
    original = shared_data_file(CME_FILE)
    frame = pd.read_csv(original)
    ts = pd.to_datetime(frame["timestamp_utc"])
    hole = (ts > "2024-01-10 14:00") & (ts <= "2024-01-10 15:00")
    assert hole.sum() == 60
    copy = tmp_path / "6EH4-copy.csv.gz"
    with gzip.open(copy, "wt") as fh:
        frame[~hole].to_csv(fh, index=False)

    # Act
    writer.import_file(str(original), ImportOptions("6EH4.XCME"))
    writer.import_file(str(copy), ImportOptions("6EH4C.XCME", instrument_type="future"))
    full = writer.catalog.check(CME_KEY)
    holed = writer.catalog.check("6EH4C.XCME-1-MINUTE-LAST-EXTERNAL")
    weekly = writer.catalog.check(CME_KEY, calendar="cme-globex")
    naive = writer.catalog.check(CME_KEY, calendar="24/7")

    # Assert: coverage; with the CME calendar no gap touches a daily break or a weekend ...
    info = writer.catalog.find_series(CME_KEY)
    assert (info.rows, info.first, info.last) == (
        29_996, pd.Timestamp("2024-01-01 23:01", tz="UTC"), pd.Timestamp("2024-01-31 23:59", tz="UTC"))
    assert full.calendar == "CMES"  # the exchange's calendar is the default for a future
    for gap in full.gaps + weekly.gaps:
        chicago = pd.date_range(gap.start, gap.end, freq="1min", inclusive="left").tz_convert("America/Chicago")
        assert not ((chicago.hour == 16).any() or (chicago.day_of_week == 5).any()), gap
    assert max(g.missing for g in weekly.gaps) <= 6  # only quiet minutes (MLK day the longest)
    # The exchange calendar knows MLK day's early close: none of the weekly calendar's gaps
    # after 18:00 UTC that day is a gap for it.
    evening = (pd.Timestamp("2024-01-15 18:00", tz="UTC"), pd.Timestamp("2024-01-15 23:00", tz="UTC"))
    assert any(evening[0] <= g.start < evening[1] for g in weekly.gaps)
    assert not any(evening[0] <= g.start < evening[1] for g in full.gaps)
    # ... while a 24/7 calendar sees the 18 daily breaks and 4 weekends.
    assert len([g for g in naive.gaps if g.missing >= 60]) == 22
    # The removed hour is exactly one new gap.
    new = set(holed.gaps) - set(full.gaps)
    assert [(g.start, g.end, g.missing) for g in new] == [
        (pd.Timestamp("2024-01-10 14:00", tz="UTC"), pd.Timestamp("2024-01-10 15:00", tz="UTC"), 60)]


def test_round_trip_import_export_import_gives_equal_data(writer, tmp_path):
    # Arrange
    writer.import_file(str(shared_data_file(CME_FILE)), ImportOptions("6EH4.XCME"))

    # Act: export to CSV and to Parquet, import both as new series.
    writer.catalog.export(CME_KEY, str(tmp_path / "6e.csv"))
    writer.catalog.export(CME_KEY, str(tmp_path / "6e.parquet"))
    csv_key = writer.import_file(str(tmp_path / "6e.csv"), ImportOptions(
        "6EH4R.XCME", instrument_type="future", bar_spec="1-MINUTE-LAST")).series_key
    pq_key = writer.import_file(str(tmp_path / "6e.parquet"), ImportOptions(
        "6EH4P.XCME", instrument_type="future", bar_spec="1-MINUTE-LAST")).series_key

    # Assert
    original = writer.catalog.bars(CME_KEY)
    assert len(original) == 29_996
    pd.testing.assert_frame_equal(writer.catalog.bars(csv_key), original)
    pd.testing.assert_frame_equal(writer.catalog.bars(pq_key), original)
    assert writer.catalog.instrument("6EH4R.XCME").price_precision == 5

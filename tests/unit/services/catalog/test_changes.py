"""Export, delete, convert and preview over a temporary catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from services.catalog.importer import ImportOptions
from services.catalog.inventory import decimate_minmax
from services.db import AuditEntry
from services.errors import CatalogError, ValidationError
from services.identity.principal import Principal

ALICE = Principal.user("alice", {"researcher", "admin"})

BTC = "BTCUSDT-PERP.BINANCE"
KEY = f"{BTC}-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture
def filled(writer, bars_csv):
    """Three files of 60 one-minute bars each, 00:01 to 03:00 on 2 January 2024."""
    for hour in range(3):
        writer.import_file(bars_csv(60, start=f"2024-01-02 {hour:02d}:01", name=f"{hour}.csv"),
                           ImportOptions(BTC))
    return writer


def test_export_csv_round_trips_through_import(filled, catalog, tmp_path):
    # Act
    out = tmp_path / "out.csv"
    rows = catalog.export(KEY, str(out), start="2024-01-02 00:30", end="2024-01-02 02:10")

    # Assert: the slice, bar close times, the instrument's precisions.
    frame = pd.read_csv(out)
    assert rows == len(frame) == 101
    assert list(frame.columns) == ["ts_event", "open", "high", "low", "close", "volume"]
    assert frame["ts_event"].iloc[0] == "2024-01-02T00:30:00.000000Z"
    reimported = filled.import_file(str(out), ImportOptions("BTCUSD-PERP.BINANCE",
                                                            bar_spec="1-MINUTE-LAST"))
    original = catalog.bars(KEY, "2024-01-02 00:30", "2024-01-02 02:10")
    copy = catalog.bars(reimported.series_key)
    pd.testing.assert_frame_equal(original, copy)


def test_export_parquet_and_bad_targets(filled, catalog, tmp_path):
    assert catalog.export(KEY, str(tmp_path / "x.parquet")) == 180
    assert len(pd.read_parquet(tmp_path / "x.parquet")) == 180
    with pytest.raises(ValidationError, match="end the file name in .csv or .parquet"):
        catalog.export(KEY, str(tmp_path / "x.xlsx"))
    with pytest.raises(CatalogError, match="No series 'NOPE'"):
        catalog.export("NOPE", str(tmp_path / "x.csv"))
    with pytest.raises(CatalogError, match="nothing exported"):
        catalog.export(KEY, str(tmp_path / "x.csv"), start="2030-01-01")


def test_delete_needs_confirmation_and_leaves_everything_without_it(filled, catalog, snapshot):
    before = snapshot(catalog.root)
    with pytest.raises(ValidationError, match="cannot be undone: confirm it"):
        filled.delete(KEY, "2024-01-02 00:30", "2024-01-02 01:30")
    assert snapshot(catalog.root) == before


def test_delete_a_range_rewrites_the_files_it_cuts(filled, catalog, database):
    # Act: 00:30..01:30 inclusive = 61 bars, cutting the first two files.
    result = filled.delete(KEY, "2024-01-02 00:30", "2024-01-02 01:30", confirm=True, principal=ALICE)

    # Assert
    assert (result.rows_deleted, result.files_removed, result.files_rewritten) == (61, 0, 2)
    info = catalog.find_series(KEY)
    assert (info.rows, info.files) == (119, 3)
    gaps = catalog.check(KEY).gaps
    assert [(g.start.strftime("%H:%M"), g.end.strftime("%H:%M")) for g in gaps] == [("00:29", "01:30")]
    with database.session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "catalog.delete")).one()
    assert (entry.actor, entry.target, entry.outcome) == ("alice", KEY, "ok")
    assert "61 rows" in entry.detail


def test_delete_a_whole_series(filled, catalog):
    result = filled.delete(KEY, confirm=True)
    assert result.whole_series and result.rows_deleted == 180 and result.files_removed == 3
    assert catalog.series() == []
    assert catalog.instrument(BTC)  # the instrument stays


def test_delete_refuses_unknown_series_and_reversed_ranges(filled):
    with pytest.raises(CatalogError, match="No series"):
        filled.delete("X.Y-1-MINUTE-LAST-EXTERNAL", confirm=True)
    with pytest.raises(ValidationError, match="is after end"):
        filled.delete(KEY, "2024-01-03", "2024-01-02", confirm=True)


def test_bars_convert_to_a_larger_interval(filled, catalog):
    result = filled.convert(KEY, "5-MINUTE-LAST")
    five = catalog.bars(result.series_key)
    one = catalog.bars(KEY)
    assert result.series_key == f"{BTC}-5-MINUTE-LAST-EXTERNAL" and len(five) == 36
    first = one.iloc[:5]
    assert five.iloc[0].to_dict() == pytest.approx({
        "open": first["open"].iloc[0], "high": first["high"].max(), "low": first["low"].min(),
        "close": first["close"].iloc[-1], "volume": first["volume"].sum()})
    assert five.index[0] == pd.Timestamp("2024-01-02 00:05", tz="UTC")
    with pytest.raises(ValidationError, match="not a whole multiple"):
        filled.convert(KEY, "90-SECOND-LAST")
    with pytest.raises(ValidationError, match="cannot become MID bars"):
        filled.convert(KEY, "5-MINUTE-MID")


def test_trades_convert_to_bars(writer, write_file, catalog):
    lines = ["ts,price,size"] + [f"2024-01-02T00:00:{s:02d}Z,{100 + s},{1 + s % 3}" for s in range(0, 60, 5)]
    lines += [f"2024-01-02T00:01:{s:02d}Z,{200 - s},1" for s in range(0, 60, 10)]
    writer.import_file(write_file("t.csv", "\n".join(lines) + "\n"), ImportOptions("ETHUSDT.BINANCE"))
    result = writer.convert("ETHUSDT.BINANCE:trades", "1-MINUTE-LAST")
    bars = catalog.bars(result.series_key)
    assert len(bars) == 3  # (23:59, 00:00] holds the 00:00:00 trade
    assert bars.loc[pd.Timestamp("2024-01-02 00:01", tz="UTC")].to_dict() == pytest.approx(
        {"open": 105, "high": 200, "low": 105, "close": 200, "volume": 23 + 1})  # 00:01:00 closes it


def test_check_and_preview_of_a_stored_series(filled, catalog):
    report = catalog.check(KEY, calendar="24/7")
    assert report.rows == 180 and report.problem_count == 0
    preview = catalog.preview(KEY, max_points=50)
    assert len(preview) <= 50 and preview["price"].max() == catalog.bars(KEY)["close"].max()


def test_decimation_keeps_extremes_and_the_point_budget():
    values = pd.Series(np.sin(np.arange(1_000_000) / 1000.0))
    values.iloc[123_456] = 5.0
    reduced = decimate_minmax(values, 50_000)
    assert len(reduced) <= 50_000 and reduced.max() == 5.0 and reduced.min() == values.min()


def test_inventory_lists_trades_and_instrument_details(writer, write_file, catalog):
    writer.import_file(write_file("t.csv", "ts,price,size\n1704153600000,100.5,0.1\n1704153601000,100.4,0.2\n"),
                       ImportOptions("ETHUSDT.BINANCE", instrument_type="crypto-spot"))
    [series] = catalog.series()
    assert (series.key, series.data_type, series.rows, series.files) == ("ETHUSDT.BINANCE:trades", "trades", 2, 1)
    info = catalog.instrument("ETHUSDT.BINANCE")
    assert (info.base_currency, info.quote_currency, info.price_increment, info.size_increment) == (
        "ETH", "USDT", "0.1", "0.1")


def test_order_book_data_is_in_the_inventory(catalog):
    # Arrange: deltas and depth snapshots written by NautilusTrader itself.
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.test_kit.stubs.data import TestDataStubs

    nautilus = ParquetDataCatalog(catalog.root)
    nautilus.write_data([TestDataStubs.order_book_delta(ts_init=i) for i in (1, 2, 3)])
    nautilus.write_data([TestDataStubs.order_book_depth10(ts_init=5)])

    # Act
    series = {s.data_type: s for s in catalog.series()}

    # Assert
    assert series["order_book_deltas"].rows == 3 and series["order_book_deltas"].files == 1
    assert series["order_book_depths"].rows == 1
    assert series["order_book_deltas"].key.endswith(":order_book_deltas")


def test_catalogs_and_sources_behind_fsspec_urls(tmp_path):
    import fsspec

    from services.catalog import CatalogService
    from services.catalog.writer import CatalogWriter

    # Arrange: an in-memory filesystem stands in for object storage (s3://, gcs://).
    folder = f"/wb-test-{tmp_path.name}"
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{folder}/in/bars.csv", b"timestamp,open,high,low,close\n2024-01-02 00:01,1,2,0.5,1.5\n"
                                     b"2024-01-02 00:02,1,2,0.5,1.5\n")
    catalog = CatalogService(f"memory://{folder}/catalog")
    writer = CatalogWriter(catalog)
    try:
        # Act
        result = writer.import_file(f"memory://{folder}/in/bars.csv", ImportOptions(BTC))

        # Assert
        assert [s.rows for s in catalog.series()] == [2]
        assert catalog.check(result.series_key).rows == 2
        assert not [p for p in fs.find(f"{folder}/catalog") if ".staging" in p]
    finally:
        fs.rm(folder, recursive=True)

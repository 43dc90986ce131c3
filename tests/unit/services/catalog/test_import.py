"""Importing files: layout detection, every bad input, atomicity, streaming and instruments."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from services.catalog import journal
from services.catalog.importer import ImportOptions, detect_layout, validate_instrument_id
from services.db import AuditEntry
from services.errors import CatalogError, ValidationError
from services.identity.principal import Principal

ALICE = Principal.user("alice", {"researcher", "admin"})
BOB = Principal.user("bob", {"researcher", "admin"})

BTC = "BTCUSDT-PERP.BINANCE"
KEY = f"{BTC}-1-MINUTE-LAST-EXTERNAL"


def _options(**kw) -> ImportOptions:
    return ImportOptions(instrument_id=kw.pop("instrument_id", BTC), **kw)


# -- layouts -----------------------------------------------------------------------------------
def test_generic_ohlcv_is_detected_and_stamped_at_the_close(writer, bars_csv, catalog):
    # Act
    result = writer.import_file(bars_csv(120), _options())

    # Assert
    assert result.series_key == KEY and result.rows == 120
    assert result.first == pd.Timestamp("2024-01-02 00:01", tz="UTC")
    assert [s.key for s in catalog.series()] == [KEY]
    assert catalog.instrument(BTC).instrument_class == "CryptoPerpetual"
    bars = catalog.bars(KEY)
    assert bars["close"].iloc[0] == pytest.approx(100.0)


def test_binance_kline_without_header_is_stamped_at_open(writer, write_file, catalog):
    # open_time (ms), open, high, low, close, volume, close_time, quote volume, count, ...
    rows = [f"{1704153600000 + i * 60000},42000.1,42010.0,41990.5,42005.2,1.234,"
            f"{1704153659999 + i * 60000},51840.1,100,0.6,25200.0,0" for i in range(5)]
    path = write_file("BTCUSDT-1m-2024-01-02.csv", "\n".join(rows) + "\n")
    layout = detect_layout(path, _options())
    assert (layout.name, layout.has_header, layout.timestamps_mark) == ("binance-kline", False, "open")

    result = writer.import_file(path, _options())

    assert result.first == pd.Timestamp("2024-01-02 00:01", tz="UTC")  # 00:00 open -> 00:01 close
    assert catalog.instrument(BTC).price_precision == 1


def test_binance_kline_with_header_and_semicolons(writer, write_file):
    header = ("open_time;open;high;low;close;volume;close_time;quote_volume;count;"
              "taker_buy_volume;taker_buy_quote_volume;ignore")
    rows = [f"{1704153600000 + i * 60000};1;2;0.5;1.5;10;{1704153659999 + i * 60000};1;1;1;1;0"
            for i in range(3)]
    path = write_file("k.csv", "\n".join([header, *rows]) + "\n")
    layout = detect_layout(path, _options())
    assert (layout.name, layout.delimiter) == ("binance-kline", ";")
    assert writer.import_file(path, _options()).first == pd.Timestamp("2024-01-02 00:01", tz="UTC")


def test_quotes_and_trades_are_detected(writer, write_file, catalog):
    quotes = write_file("q.csv", "time,bid,ask,bid_size,ask_size\n"
                                 "2024-01-02T00:00:00Z,1.1,1.2,5,6\n2024-01-02T00:00:10Z,1.1,1.3,5,6\n")
    trades = write_file("t.csv", "ts,price,qty,side,trade_id\n"
                                 "1704153600000,100.5,0.1,buy,a1\n1704153601000,100.4,0.2,sell,a2\n")
    assert writer.import_file(quotes, _options(instrument_id="EUR/USD.SIM")).series_key == "EUR/USD.SIM:quotes"
    assert writer.import_file(trades, _options(instrument_id="ETHUSDT.BINANCE")).series_key == "ETHUSDT.BINANCE:trades"
    trades_frame = catalog.trades("ETHUSDT.BINANCE")
    assert list(trades_frame["trade_id"]) == ["a1", "a2"]
    assert list(trades_frame["aggressor_side"]) == [1, 2]
    assert catalog.instrument("EUR/USD.SIM").instrument_class == "CurrencyPair"


def test_parquet_files_import(writer, tmp_path, catalog):
    path = tmp_path / "bars.parquet"
    times = pd.date_range("2024-01-02 00:01", periods=10, freq="1min", tz="UTC")
    pq.write_table(pa.table({"ts_event": times, "open": [1.0] * 10, "high": [2.0] * 10,
                             "low": [0.5] * 10, "close": [1.5] * 10, "volume": [3.0] * 10}), path)
    result = writer.import_file(str(path), _options(instrument_id="AAPL.XNAS"))
    assert (result.series_key, result.rows) == ("AAPL.XNAS-1-MINUTE-LAST-EXTERNAL", 10)
    assert catalog.instrument("AAPL.XNAS").instrument_class == "Equity"


def test_column_mapping_and_timezone(writer, write_file, catalog):
    path = write_file("m.csv", "Zeit,Erster,Hoch,Tief,Letzter\n2024-07-01 10:01,1,2,0.5,1.5\n"
                               "2024-07-01 10:02,1,2,0.5,1.5\n")
    options = _options(columns={"timestamp": "Zeit", "open": "Erster", "high": "Hoch", "low": "Tief",
                                "close": "Letzter"}, timezone="Europe/Berlin", bar_spec="1-MINUTE-LAST")
    result = writer.import_file(path, options)
    assert result.first == pd.Timestamp("2024-07-01 08:01", tz="UTC")  # CEST = UTC+2


@pytest.mark.parametrize(("kind", "cls"), [
    ("fx", "CurrencyPair"), ("crypto-perp", "CryptoPerpetual"), ("crypto-spot", "CurrencyPair"),
    ("equity", "Equity"), ("future", "FuturesContract")])
def test_every_instrument_type_can_be_created(writer, bars_csv, catalog, kind, cls):
    instrument_id = {"fx": "GBP/USD.SIM", "crypto-perp": "ETHUSDT-PERP.BINANCE",
                     "crypto-spot": "ETHUSDT.BINANCE", "equity": "MSFT.XNAS",
                     "future": "ESZ4.XCME"}[kind]
    writer.import_file(bars_csv(5), _options(instrument_id=instrument_id, instrument_type=kind))
    info = catalog.instrument(instrument_id)
    assert info.instrument_class == cls and info.price_precision == 2


# -- bad input: a clear message, the catalog unchanged -------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    ("timestamp;open;high;low;close\n2024-01-02 00:01;1;2;0.5;1.5\n2024-01-02 00:02;1;2;0.5;1.5\n",
     None),  # semicolons are detected: fine
    ("timestamp,open,high,low,close\n2024-01-02 00:01,1,2,0.5,1.5\n2024-01-02 00:02,1,2,0.5\n",
     "Line 3 has fewer fields than the header"),
    ("timestamp,open,high,close\n2024-01-02 00:01,1,2,1.5\n", "Missing column.*low"),
    ("timestamp,open,high,low,close\n2024-01-02 00:01,1,2,0.5,1.5\nyesterday,1,2,0.5,1.5\n",
     "Unparseable timestamp at line 3, column 'timestamp': 'yesterday'"),
    ("timestamp,open,high,low,close\n2024-01-02T00:01:00+00:00,1,2,0.5,1.5\n2024-01-02T00:02:00,1,2,0.5,1.5\n",
     "Mixed time zones: line 3.*without an offset, but line 2"),
    ("timestamp,open,high,low,close\n2024-01-02 00:01,1,2,0.5,1.5\n2024-01-02 00:02,1,2,0.5,abc\n",
     "Non-numeric close at line 3, column 'close': 'abc'"),
    ("timestamp,open,high,low,close\n2024-01-02 00:01,1,2,0.5,1.5\n2024-01-02 00:02,1,2,0.5,1.5,9\n",
     "line 3 has 6 fields where the header has 5"),
    ("", "is empty"),
    ("timestamp,open,high,low,close\n", "no data rows"),
    ("timestamp,open,high,low,close\n2024-01-02 00:01,1,2,0.5,1.5\n2024-01-02 00:02,1,0.9,0.5,1.5\n",
     "Line 3: high is below open, low or close"),
    ("a,b,c\n1,2,3\n", "Cannot tell what the file holds"),
    ("1,2,3,4,5\n", "holds numbers .* not column names"),
])
def test_bad_files_are_refused_with_the_line_and_column(writer, write_file, catalog, snapshot, text,
                                                        message):
    # Arrange: the catalog already holds one series, which must stay byte-identical.
    writer.import_file(write_file("seed.csv", "timestamp,open,high,low,close\n"
                                              "2023-06-01 00:01,1,2,0.5,1.5\n"
                                              "2023-06-01 00:02,1,2,0.5,1.5\n"), _options())
    before = snapshot(catalog.root)
    path = write_file("bad.csv", text)

    # Act / Assert
    if message is None:
        writer.import_file(path, _options())
        return
    with pytest.raises((CatalogError, ValidationError), match=message):
        writer.import_file(path, _options())
    assert snapshot(catalog.root) == before


def test_a_wrong_delimiter_is_named(writer, write_file):
    path = write_file("semi.csv", "timestamp;open;high;low;close\n2024-01-02 00:01;1;2;0.5;1.5\n")
    with pytest.raises(CatalogError, match=r"single column .* seems to be separated by ';'"):
        writer.import_file(path, _options(delimiter=","))


def test_the_same_file_twice_is_refused_and_changes_nothing(writer, bars_csv, catalog, snapshot):
    path = bars_csv(60)
    writer.import_file(path, _options())
    before = snapshot(catalog.root)
    with pytest.raises(CatalogError, match="already holds data .* imported before"):
        writer.import_file(path, _options())
    assert snapshot(catalog.root) == before


def test_a_later_file_appends_to_the_series(writer, bars_csv, catalog):
    writer.import_file(bars_csv(60, name="a.csv"), _options())
    writer.import_file(bars_csv(60, start="2024-01-02 01:01", name="b.csv"), _options())
    info = catalog.find_series(KEY)
    assert (info.rows, info.files) == (120, 2)
    assert catalog.check(KEY).gaps == ()


@pytest.mark.parametrize("instrument_id", [
    "../../etc.SIM", "BTC.../x", "..\\evil.SIM", "/abs.SIM", "a/../../b.SIM", "nodot", ".hidden.SIM",
    "BTC USDT.BINANCE"])
def test_path_traversal_and_malformed_instrument_ids_are_refused(writer, bars_csv, instrument_id,
                                                                 tmp_path):
    path = bars_csv(5)
    around = sorted(p.name for p in tmp_path.parent.iterdir())
    with pytest.raises(ValidationError, match="Instrument id"):
        writer.import_file(path, _options(instrument_id=instrument_id))
    assert not list(tmp_path.rglob("*.parquet"))
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == around


def test_fx_pair_ids_with_a_slash_are_fine():
    assert validate_instrument_id("EUR/USD.SIM") == ("EUR/USD", "SIM")


def test_an_unreachable_url_is_a_clear_error(writer):
    with pytest.raises(CatalogError, match=r"Cannot reach 'ftp://127.0.0.1:1/data.csv'.*network"):
        writer.import_file("ftp://127.0.0.1:1/data.csv", _options())


def test_a_missing_file_and_a_bad_timezone(writer, bars_csv):
    with pytest.raises(CatalogError, match="does not exist"):
        writer.import_file("/no/such/file.csv", _options())
    with pytest.raises(ValidationError, match="Unknown time zone 'Mars/Olympus'"):
        writer.import_file(bars_csv(5), _options(timezone="Mars/Olympus"))


def test_nonexistent_local_times_are_named(writer, write_file):
    path = write_file("dst.csv", "timestamp,open,high,low,close\n2024-03-31 01:59,1,2,0.5,1.5\n"
                                 "2024-03-31 02:30,1,2,0.5,1.5\n")
    with pytest.raises(CatalogError, match="line 3.*does not exist or is ambiguous in Europe/Berlin"):
        writer.import_file(path, _options(timezone="Europe/Berlin", bar_spec="1-MINUTE-LAST"))


def test_rows_going_back_in_time_across_chunks_are_refused(writer, write_file, catalog, snapshot):
    lines = ["timestamp,open,high,low,close"] + [
        f"2024-01-02 00:{m:02d},1,2,0.5,1.5" for m in [*range(1, 11), 5, *range(11, 20)]]
    path = write_file("back.csv", "\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match="line 12 on go back in time"):
        writer.import_file(path, _options(chunk_rows=10, bar_spec="1-MINUTE-LAST"))
    assert snapshot(catalog.root) == {}


# -- streaming, atomicity, dry runs, audit ------------------------------------------------------
def test_big_files_stream_in_chunks_with_progress(writer, bars_csv, catalog, tmp_path):
    # Arrange: a gzip file; 2,000 rows read 250 at a time stand in for a file too big for memory.
    plain = bars_csv(2000)
    path = tmp_path / "files" / "bars.csv.gz"
    path.write_bytes(gzip.compress(Path(plain).read_bytes()))
    seen = []

    # Act
    result = writer.import_file(str(path), _options(chunk_rows=250),
                                progress=lambda done, total: seen.append((done, total)))

    # Assert: eight chunks, each written as its own file; progress in compressed bytes.
    assert (result.rows, result.files) == (2000, 8)
    assert catalog.find_series(KEY).files == 8
    assert len(seen) == 8 and seen == sorted(seen)
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert catalog.check(KEY).gaps == ()


def test_a_failure_while_moving_into_place_is_undone(writer, bars_csv, catalog, snapshot,
                                                     monkeypatch):
    # Arrange: one series exists; the next import fails on its second move (instrument folder).
    writer.import_file(bars_csv(60, name="a.csv"), _options())
    before = snapshot(catalog.root)
    real_rename = journal._rename
    calls = []

    def failing_rename(fs, src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_rename(fs, src, dst)

    monkeypatch.setattr(journal, "_rename", failing_rename)

    # Act
    with pytest.raises(CatalogError, match="No space left on device; the catalog is unchanged"):
        writer.import_file(bars_csv(60, start="2024-01-05 00:01", name="b.csv"),
                           _options(instrument_id="ETHUSDT-PERP.BINANCE"))

    # Assert: the first rename was undone (moved back into the staging folder).
    assert len(calls) == 3 and ".staging-" in calls[2]
    assert snapshot(catalog.root) == before


def test_a_dry_run_checks_and_writes_nothing(writer, bars_csv, catalog, snapshot):
    result = writer.import_file(bars_csv(120, drop=[10, 11]), _options(), dry_run=True)
    assert result.dry_run and result.rows == 118
    assert [g.missing for g in result.quality.gaps] == [2]
    assert snapshot(catalog.root) == {}


def test_imports_are_audited_with_their_outcome(writer, bars_csv, database, write_file):
    writer.import_file(bars_csv(10), _options(), principal=ALICE)
    with pytest.raises(CatalogError):
        writer.import_file(write_file("x.csv", ""), _options(), principal=BOB)
    with database.session() as session:
        entries = [(e.actor, e.action, e.outcome) for e in session.scalars(select(AuditEntry))]
    assert entries == [("alice", "catalog.import", "ok"), ("bob", "catalog.import", "failed")]


def test_preview_shows_rows_instrument_and_checks_before_writing(writer, bars_csv, snapshot, catalog):
    preview = writer.preview_import(bars_csv(100, drop=[50]), _options())
    assert preview.series_key == KEY and len(preview.rows) == 20
    assert preview.new_instrument.instrument_type == "crypto-perp"
    assert preview.new_instrument.base_currency == "BTC"
    assert preview.calendar == "24/7"
    assert len(preview.quality.gaps) == 1
    assert snapshot(catalog.root) == {}

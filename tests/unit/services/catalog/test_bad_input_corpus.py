"""The catalog's bad-input corpus: each class of input that once stored something wrong, hung
or crashed ends in one error naming the value, with the catalog byte for byte as before.

Property-based where the input space is large: numbers in every notation, CSV layouts,
timestamps in every supported form.
"""

from __future__ import annotations

import gzip
import os
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.catalog.importer import ImportOptions, decimals
from services.errors import CatalogError, ValidationError

BTC = "BTCUSDT-PERP.BINANCE"
KEY = f"{BTC}-1-MINUTE-LAST-EXTERNAL"
FUTURE = "6EH4.XCME"
FUTURE_KEY = f"{FUTURE}-1-MINUTE-LAST-EXTERNAL"


def _frame(n: int, start: str, level: float, digits: int) -> pd.DataFrame:
    index = pd.date_range(start, periods=n, freq="1min")
    close = np.round(level * (1 + 0.001 * np.sin(np.arange(n))), digits)
    return pd.DataFrame({"timestamp": index.strftime("%Y-%m-%d %H:%M:%S"),
                         "open": close, "high": np.round(close * 1.001, digits),
                         "low": np.round(close * 0.999, digits), "close": close,
                         "volume": np.arange(n) % 5 + 1})


# -- numbers in every notation ------------------------------------------------------------------
def _notations(value: Decimal) -> list[str]:
    """The same number written as plain decimals, in scientific notation and upper-case E."""
    plain = format(value, "f")
    return [plain, f"{value:.6e}", f"{value:.6E}", f"{value:e}"]


@settings(max_examples=400, deadline=None)
@given(st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("99999999"), places=6,
                   allow_nan=False, allow_infinity=False))
def test_precision_is_read_from_the_value_in_any_notation(value):
    # Reference: the decimals Python's Decimal needs for the number, whatever the text.
    expected = max(0, -value.normalize().as_tuple().exponent)
    for text in _notations(value):
        if Decimal(text) == value:  # %e may round: compare only exact spellings
            assert decimals(pd.Series([text])) == expected, text


def test_scientific_prices_are_stored_by_value(writer, catalog, write_file, tmp_path):
    # Arrange: the prices (1.10780e+00 was stored as 1.0)
    frame = _frame(120, "2024-01-02 00:01", 1.1078, 5)
    for column in ("open", "high", "low", "close"):
        frame[column] = [f"{v:.5e}" for v in frame[column]]
    path = write_file("sci.csv", frame.to_csv(index=False))

    # Act
    writer.import_file(path, ImportOptions(FUTURE))

    # Assert: what is stored is what the file says, to the written decimals.
    stored = catalog.read_series(FUTURE_KEY)
    expected = frame["close"].map(float).to_numpy()
    assert np.allclose(stored["close"].to_numpy(), expected, rtol=0, atol=5e-6)
    assert catalog.instrument(FUTURE).price_precision == 5


# -- CSV layouts --------------------------------------------------------------------------------
LAYOUTS = st.fixed_dictionaries({
    "delimiter": st.sampled_from([",", ";", "\t", "|"]),
    "order": st.permutations(["timestamp", "open", "high", "low", "close", "volume"]),
    "upper": st.booleans(),
    "extra": st.booleans(),
    "gzip": st.booleans(),
    "epoch": st.sampled_from([None, "s", "ms", "us", "ns"]),
})


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layout=LAYOUTS)
def test_every_csv_layout_imports_the_same_bars(layout, tmp_path_factory):
    from services.catalog import CatalogService
    from services.catalog.writer import CatalogWriter

    # Arrange: the same 60 bars in one of many layouts.
    folder = tmp_path_factory.mktemp("layout")
    frame = _frame(60, "2024-01-02 00:01", 42000.0, 1)
    if layout["epoch"]:
        ns = pd.Series(pd.DatetimeIndex(frame["timestamp"]).as_unit("ns").asi8)
        divisor = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[layout["epoch"]]
        frame["timestamp"] = (ns // divisor).astype(str)
    if layout["extra"]:
        frame["note"] = "x"
    frame = frame[[*layout["order"], *(["note"] if layout["extra"] else [])]]
    if layout["upper"]:
        frame.columns = [c.upper() for c in frame.columns]
    text = frame.to_csv(index=False, sep=layout["delimiter"]).encode()
    path = folder / ("bars.csv.gz" if layout["gzip"] else "bars.csv")
    path.write_bytes(gzip.compress(text) if layout["gzip"] else text)
    catalog = CatalogService(str(folder / "catalog"))

    # Act
    result = CatalogWriter(catalog).import_file(str(path), ImportOptions(BTC))

    # Assert: the bars as written, at their close times (reference: the frame built above).
    stored = catalog.read_series(KEY)
    assert result.rows == 60
    assert stored.index[0] == pd.Timestamp("2024-01-02 00:01", tz="UTC")
    # (Stored as fixed point with 16 decimals: equal to far below the 0.1 tick.)
    assert np.allclose(stored["close"].to_numpy(),
                       _frame(60, "2024-01-02 00:01", 42000.0, 1)["close"].to_numpy(),
                       rtol=0, atol=1e-6)


# -- inputs refused, catalog unchanged ----------------------------------------------------------
@pytest.fixture
def stored(writer, write_file):
    """A future at ~1.1 (the issue's EUR future) already in the catalog."""
    path = write_file("eur.csv", _frame(300, "2024-01-02 00:01", 1.1, 5).to_csv(index=False))
    writer.import_file(path, ImportOptions(FUTURE))


def _csv(write_file, name, frame) -> str:
    return write_file(name, frame.to_csv(index=False))


BAD_IMPORTS = {
    # name: (build the file (write_file) -> path, options, error class, fragment)
    "btc-onto-a-future": (lambda w: _csv(w, "btc.csv", _frame(60, "2024-01-03", 46000, 1)),
                          ImportOptions(FUTURE), ValidationError, "times those 6EH4.XCME"),
    "price-1e20": (lambda w: _csv(w, "big.csv", _frame(60, "2024-01-03", 1.1, 5).assign(
        high=lambda f: f["high"].where(f.index != 3, 1e20))), ImportOptions(FUTURE),
        CatalogError, "beyond the largest price"),
    "price-1e-12": (lambda w: _csv(w, "tiny.csv", _frame(60, "2024-01-03", 1.1, 5).assign(
        open="1e-12", high="1e-12", low="1e-12", close="1e-12")), ImportOptions(FUTURE),
        CatalogError, "would be stored as 0.0"),
    "year-2300": (lambda w: _csv(w, "y.csv", _frame(60, "2024-01-03", 1.1, 5).assign(
        timestamp=lambda f: f["timestamp"].str.replace("2024", "2300"))),
        ImportOptions(FUTURE), CatalogError, "outside the dates"),
    "epoch-overflow": (lambda w: _csv(w, "e.csv", _frame(60, "2024-01-03", 1.1, 5).assign(
        timestamp=[str(10**19 + i) for i in range(60)])), ImportOptions(FUTURE),
        CatalogError, "outside the dates"),
    "two-char-delimiter": (lambda w: _csv(w, "d.csv", _frame(60, "2024-01-03", 1.1, 5)),
                           ImportOptions(FUTURE, delimiter="::"), ValidationError,
                           "Delimiter '::'"),
    "unknown-column-field": (lambda w: _csv(w, "c.csv", _frame(60, "2024-01-03", 1.1, 5)),
                             ImportOptions(FUTURE, columns={"bogus": "close"}), ValidationError,
                             "'bogus' is not a field"),
    "field-of-another-type": (lambda w: _csv(w, "c2.csv", _frame(60, "2024-01-03", 1.1, 5)),
                              ImportOptions(FUTURE, columns={"bid_price": "close"}),
                              ValidationError, "bars have no 'bid_price'"),
    "5-minute-spec-on-1-minute-bars": (
        lambda w: _csv(w, "s.csv", _frame(60, "2024-01-03", 1.1, 5)),
        ImportOptions(FUTURE, bar_spec="5-MINUTE-LAST"), ValidationError,
        "mostly 1 minute apart: use --bar-spec 1-MINUTE-LAST"),
    "tick-spec-on-time-bars": (lambda w: _csv(w, "t.csv", _frame(60, "2024-01-03", 1.1, 5)),
                               ImportOptions(FUTURE, bar_spec="100-TICK-LAST"), ValidationError,
                               "they are time bars"),
    "markup-in-the-id": (lambda w: _csv(w, "x.csv", _frame(60, "2024-01-03", 1.1, 5)),
                         ImportOptions("<script>fetch('/api')</script>.SIM"), ValidationError,
                         'the symbol "<script>'),
    "truncated-gzip": (lambda w: w("trunc.csv.gz", gzip.compress(
        _frame(20000, "2024-01-03", 1.1, 5).to_csv(index=False).encode())[:60000]),
        ImportOptions(FUTURE), CatalogError, "Cannot read"),
}


@pytest.mark.parametrize("case", list(BAD_IMPORTS))
def test_a_bad_import_is_one_error_and_changes_nothing(case, stored, writer, catalog,
                                                       write_file, snapshot):
    build, options, error, fragment = BAD_IMPORTS[case]
    path = build(write_file)
    before = snapshot(catalog.root)

    with pytest.raises(error) as info:
        writer.import_file(path, options)

    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert snapshot(catalog.root) == before


def test_a_level_change_imports_once_confirmed(stored, writer, catalog, write_file):
    path = _csv(write_file, "btc.csv", _frame(60, "2024-01-03", 46000, 1))
    result = writer.import_file(path, ImportOptions(FUTURE, accept_level_change=True))
    assert result.rows == 60


def test_a_fifo_is_refused_without_blocking(writer, tmp_path, catalog, snapshot):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(CatalogError, match="is not a regular file"):
        writer.import_file(str(fifo), ImportOptions(FUTURE))
    assert snapshot(catalog.root) == {}


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"start": "NaT"}, "start: not an ISO 8601 date or time, was 'NaT'"),
    ({"start": "2024-01-03", "end": "2024-01-02"}, "is after end"),
    ({"end": "2300-01-01"}, "outside the dates"),
    ({"outlier_z": float("nan")}, "outlier threshold must be a positive number"),
    ({"outlier_z": 0.0}, "outlier threshold must be a positive number"),
    ({"min_gap": 0}, "whole number of bars >= 1"),
])
def test_checks_refuse_ranges_and_thresholds_that_would_report_nothing(stored, catalog, kwargs,
                                                                       fragment):
    with pytest.raises(ValidationError, match=None) as info:
        catalog.check(FUTURE_KEY, **kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize("target", ["inside-catalog", "inside-state", "the-parquet-file"])
def test_exports_never_write_into_the_catalog_or_the_state_folder(stored, catalog, writer,
                                                                   tmp_path, snapshot, target):
    from services.catalog.writer import CatalogWriter

    state = tmp_path / "state"
    state.mkdir()
    guarded = CatalogWriter(catalog, protected=(str(state),))
    stored_file = catalog.series_files(FUTURE_KEY)[0]
    path = {"inside-catalog": f"{catalog.root}/data/out.csv",
            "inside-state": str(state / "workbench.db"),
            "the-parquet-file": stored_file.replace(".parquet", ".csv")}[target]
    before = snapshot(catalog.root)

    with pytest.raises(ValidationError, match="is inside"):
        guarded.export(FUTURE_KEY, path)

    assert snapshot(catalog.root) == before and not os.path.exists(path)


def test_an_export_onto_a_full_disk_leaves_no_file(stored, writer, tmp_path, monkeypatch):
    import services.catalog.inventory as inventory

    target = tmp_path / "out" / "eur.csv"
    target.parent.mkdir()

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inventory.os, "fsync", full)

    with pytest.raises(CatalogError, match="The disk is full: cannot write"):
        writer.export(FUTURE_KEY, str(target))

    assert list(target.parent.iterdir()) == []


def test_bar_specs_beyond_a_year_are_refused_before_reading(stored, writer):
    with pytest.raises(ValidationError, match="longer than 366 days"):
        writer.convert(FUTURE_KEY, "1000000-DAY-LAST")


def test_a_file_as_the_catalog_is_named(tmp_path):
    from services.catalog import CatalogService

    path = tmp_path / "not-a-folder"
    path.write_text("x")
    with pytest.raises(CatalogError, match="is a file, not a folder"):
        CatalogService(str(path))

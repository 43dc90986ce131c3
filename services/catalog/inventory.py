"""Read-side of NautilusTrader's ParquetDataCatalog: inventory, coverage and price series.

Inventory and coverage come from metadata only (file names carry each file's first and last
timestamp; Parquet footers carry row counts), so listing a large catalog loads no rows.
Price series are read column-wise with pyarrow and decoded vectorised, never as Python objects.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from services.catalog.calendars import default_calendar_name, get_calendar
from services.catalog.coverage import CoverageIndex, SeriesCoverage, break_min_ns, build_coverage
from services.catalog.quality import (
    DEFAULT_OUTLIER_Z,
    DEFAULT_TICK_QUIET_S,
    QualityReport,
    bar_step_ns,
    check_frame,
)
from services.catalog.sample import SAMPLE_SERIES
from services.errors import CatalogError, ValidationError
from services.timestamps import parse_range

# NautilusTrader 1.231 stores prices as 128-bit fixed point with 16 decimals (high precision).
_FIXED_SCALAR = 1e16
_FILE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{9})Z_(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{9})Z\.parquet$")
# Folder names as NautilusTrader's class_to_filename makes them (OrderBookDelta -> order_book_deltas).
_DATA_FOLDERS = {"bar": "bars", "quote_tick": "quotes", "trade_tick": "trades",
                 "order_book_deltas": "order_book_deltas", "order_book_depths": "order_book_depths"}
_FOLDER_OF = {v: k for k, v in _DATA_FOLDERS.items()}
SERIES_COLUMNS = {"bars": ["open", "high", "low", "close", "volume"],
                  "quotes": ["bid_price", "ask_price", "bid_size", "ask_size"],
                  "trades": ["price", "size", "aggressor_side", "trade_id"]}
_FIXED_TYPE = pa.binary(16)
_BAR_TYPE_RE = re.compile(r"^(.+)-(\d+-[A-Z_]+-[A-Z_]+)-(EXTERNAL|INTERNAL)$")
PREVIEW_POINTS = 50_000  # never send more price points than this to a browser
# Bars aggregated inside the engine from quotes, offered for instruments that only have quotes.
QUOTE_BAR_SUFFIX = "-1-MINUTE-MID-INTERNAL"


@dataclass(frozen=True)
class InstrumentInfo:
    instrument_id: str
    venue: str
    symbol: str
    instrument_class: str
    base_currency: str | None
    quote_currency: str
    settlement_currency: str
    price_precision: int
    size_precision: int
    multiplier: float
    is_inverse: bool
    price_increment: str = ""
    size_increment: str = ""
    lot_size: str | None = None
    raw_symbol: str = ""
    expiration: pd.Timestamp | None = None  # futures and options


@dataclass(frozen=True)
class SeriesInfo:
    """One stored series: a bar type, or the quotes/trades of one instrument."""

    key: str  # bar type, or "INSTRUMENT_ID:quotes" / "INSTRUMENT_ID:trades"
    data_type: str  # bars | quotes | trades | order_book_deltas | order_book_depths
    instrument_id: str
    first: pd.Timestamp
    last: pd.Timestamp
    rows: int
    files: int
    bytes: int


@dataclass(frozen=True)
class BacktestableSeries:
    """A bar type a strategy can subscribe to, and the catalog data that feeds it."""

    bar_type: str
    instrument_id: str
    data_type: str  # bars: stored bars; quotes: bars aggregated from stored quotes
    first: pd.Timestamp
    last: pd.Timestamp
    rows: int


@contextmanager
def _readable(location: str) -> Iterator[None]:
    """Turn a folder or file the workbench may not read into one line naming it."""
    try:
        yield
    except PermissionError as e:
        where = e.filename or location
        raise CatalogError(f"Cannot read {where} in the catalog {location}: permission denied. "
                           "Give the workbench's user read access to the catalog's folders "
                           "and files (e.g. chmod -R u+rX).") from None


def _parse_file_ts(text: str) -> pd.Timestamp:
    date, time_part = text.split("T")
    h, m, s, ns = time_part.split("-")
    return pd.Timestamp(f"{date}T{h}:{m}:{s}.{ns}", tz="UTC")


def decode_fixed(column) -> np.ndarray:
    """Decode a fixed_size_binary[16] price/size column (int128, 1e-16 units) to float64."""
    raw = np.frombuffer(column.combine_chunks().buffers()[1], dtype="<i8").reshape(-1, 2)
    low = raw[:, 0].view(np.uint64).astype(np.float64)
    high = raw[:, 1].astype(np.float64)
    return (high * 18446744073709551616.0 + low) / _FIXED_SCALAR


class CatalogService:
    """Inventory and reads over one ParquetDataCatalog at a local path or fsspec URL."""

    def __init__(self, location: str, is_sample: bool = False) -> None:
        self.location = str(location)
        self.is_sample = is_sample
        protocol, path = fsspec.core.split_protocol(self.location)
        self._protocol = protocol or "file"
        self._root = path.rstrip("/")
        self._footers: dict[tuple, tuple[int, dict[str, str]]] = {}
        try:
            self._fs = fsspec.filesystem(self._protocol)
        except (ImportError, ValueError) as e:
            raise CatalogError(
                f"Cannot open catalog {self.location!r}: {e}. Install the fsspec driver for "
                f"'{self._protocol}' or use a local path."
            ) from e
        if self._protocol == "file" and os.path.exists(self._root) and not os.path.isdir(self._root):
            raise CatalogError(f"The catalog {self.location!r} is a file, not a folder; point "
                               "--catalog / WORKBENCH_CATALOG at a ParquetDataCatalog folder "
                               "(or at a new folder to start one).")

    @property
    def root(self) -> str:
        """The catalog's path without its protocol."""
        return self._root

    @property
    def protocol(self) -> str:
        return self._protocol

    # -- NautilusTrader objects (instruments) -----------------------------------------------
    @cached_property
    def _catalog(self):
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        try:
            if self._protocol == "file":
                return ParquetDataCatalog(self._root)
            return ParquetDataCatalog.from_uri(self.location)
        except Exception as e:  # any backend failure means the catalog is unusable
            raise CatalogError(f"Cannot open catalog {self.location!r}: {e}") from e

    def instruments(self) -> list[InstrumentInfo]:
        if not self.exists():
            return []
        try:
            instruments = self._catalog.instruments()
        except Exception as e:  # corrupt instrument files
            raise CatalogError(f"Cannot read instruments from {self.location!r}: {e}") from e
        result = []
        for inst in instruments:
            base = getattr(inst, "base_currency", None)
            settlement = getattr(inst, "settlement_currency", None) or inst.quote_currency
            result.append(InstrumentInfo(
                instrument_id=str(inst.id), venue=str(inst.id.venue), symbol=str(inst.id.symbol),
                instrument_class=type(inst).__name__,
                base_currency=str(base) if base is not None else None,
                quote_currency=str(inst.quote_currency), settlement_currency=str(settlement),
                price_precision=inst.price_precision, size_precision=inst.size_precision,
                multiplier=float(inst.multiplier), is_inverse=bool(inst.is_inverse),
                price_increment=str(inst.price_increment), size_increment=str(inst.size_increment),
                lot_size=str(inst.lot_size) if getattr(inst, "lot_size", None) is not None else None,
                raw_symbol=str(inst.raw_symbol),
                expiration=(pd.Timestamp(inst.expiration_ns, tz="UTC")
                            if getattr(inst, "expiration_ns", None) else None),
            ))
        return sorted(result, key=lambda i: i.instrument_id)

    def instrument(self, instrument_id: str) -> InstrumentInfo:
        for info in self.instruments():
            if info.instrument_id == instrument_id:
                return info
        raise CatalogError(
            f"Instrument {instrument_id!r} is not in the catalog {self.location}. "
            "Import it first, or pick one of: "
            + (", ".join(i.instrument_id for i in self.instruments()) or "(the catalog is empty)")
        )

    # -- metadata-only inventory --------------------------------------------------------------
    def exists(self) -> bool:
        if self._protocol == "file":
            # os.path.exists answers False for a folder it may not enter: say so instead of
            # showing an empty catalog.
            try:
                os.stat(f"{self._root}/data")
                return True
            except FileNotFoundError:
                return False
            except PermissionError:
                raise CatalogError(f"Cannot read the catalog {self.location}: permission denied "
                                   "on it or a folder above it. Give the workbench's user read "
                                   "access (e.g. chmod -R u+rX).") from None
            except NotADirectoryError:
                return False
        try:
            return self._fs.exists(f"{self._root}/data")
        except Exception as e:  # network filesystems raise their own errors
            raise CatalogError(f"Cannot reach catalog {self.location!r}: {e}") from e

    def series(self) -> list[SeriesInfo]:
        """Every stored series with coverage, rows, files and bytes, from metadata only.

        Footers are read once per file version (path, size, modification time) and remembered,
        so refreshing the inventory after an import reads only the new files.
        """
        with _readable(self.location):
            return self._series()

    def _series(self) -> list[SeriesInfo]:
        if not self.exists():
            return []
        result = []
        for folder, data_type in _DATA_FOLDERS.items():
            base = f"{self._root}/data/{folder}"
            if not self._fs.exists(base):
                continue
            for ident_path in sorted(self._fs.ls(base, detail=False)):
                ident = ident_path.rstrip("/").rsplit("/", 1)[-1]
                files = [f for f in self._fs.ls(ident_path, detail=True)
                         if _FILE_RE.match(f["name"].rsplit("/", 1)[-1])]
                if not files:
                    continue
                firsts, lasts, rows, meta = [], [], 0, {}
                for f in files:
                    m = _FILE_RE.match(f["name"].rsplit("/", 1)[-1])
                    firsts.append(_parse_file_ts(m.group(1)))
                    lasts.append(_parse_file_ts(m.group(2)))
                    file_rows, file_meta = self._footer(f)
                    rows += file_rows
                    meta = meta or file_meta
                # Folder names drop '/' (EUR/USD -> EURUSD); the footer keeps the real identifier.
                instrument_id = meta.get("instrument_id", ident)
                key = meta.get("bar_type", ident) if data_type == "bars" else f"{instrument_id}:{data_type}"
                result.append(SeriesInfo(key, data_type, instrument_id, min(firsts), max(lasts),
                                         rows, len(files), int(sum(f["size"] for f in files))))
        return result

    def _footer(self, info: dict) -> tuple[int, dict[str, str]]:
        """Row count and identifiers from one file's Parquet footer (cached per file version)."""
        version = (info["name"], info.get("size"), info.get("mtime") or info.get("LastModified"))
        cached = self._footers.get(version)
        if cached is None:
            if self._protocol == "file":
                footer = pq.read_metadata(info["name"])
            else:
                with self._fs.open(info["name"], "rb") as fh:
                    footer = pq.read_metadata(fh)
            meta = {k.decode(): v.decode() for k, v in (footer.metadata or {}).items()
                    if k in (b"bar_type", b"instrument_id", b"price_precision", b"size_precision")}
            cached = self._footers[version] = (footer.num_rows, meta)
        return cached

    def find_series(self, key: str) -> SeriesInfo:
        """The stored series named ``key`` (a bar type or ``INSTRUMENT_ID:quotes|trades``)."""
        for s in self.series():
            if s.key == key:
                return s
        known = ", ".join(s.key for s in self.series()) or "(the catalog holds no data)"
        raise CatalogError(f"No series {key!r} in {self.location}. Stored series: {known}")

    def backtestable(self) -> list[BacktestableSeries]:
        """Bar types a backtest can run on: stored LAST/MID bars, and 1-minute bars from quotes."""
        result = []
        for s in self.series():
            if s.data_type == "bars":
                result.append(BacktestableSeries(s.key, s.instrument_id, "bars", s.first, s.last, s.rows))
            elif s.data_type == "quotes":
                result.append(BacktestableSeries(s.instrument_id + QUOTE_BAR_SUFFIX, s.instrument_id,
                                                 "quotes", s.first, s.last, s.rows))
        return result

    def backtestable_series(self, bar_type: str) -> BacktestableSeries:
        for s in self.backtestable():
            if s.bar_type == bar_type:
                return s
        known = ", ".join(s.bar_type for s in self.backtestable()) or "(the catalog has no data)"
        raise CatalogError(f"No data for bar type {bar_type!r} in {self.location}. Available: {known}")

    # -- coverage: segments and holes ------------------------------------------------------
    @cached_property
    def _coverage_index(self) -> CoverageIndex:
        return CoverageIndex(self._fs, self._root, self._protocol)

    @staticmethod
    def _stored_key(key: str) -> str:
        """The stored series a key reads: bars built from quotes read the quotes."""
        if key.endswith(QUOTE_BAR_SUFFIX):
            return f"{key[: -len(QUOTE_BAR_SUFFIX)]}:quotes"
        return key

    def coverage(self, key: str) -> SeriesCoverage:
        """Segments and holes of a stored series, or of the data a backtestable bar type reads
        (the quotes under ``...-1-MINUTE-MID-INTERNAL``), against the series' own calendar."""
        with _readable(self.location):
            info = self.find_series(self._stored_key(key))
            return self._coverage(info, self._instrument_classes())

    def coverages(self) -> list[SeriesCoverage]:
        """The coverage of every stored series, in the order of :meth:`series`."""
        with _readable(self.location):
            classes = self._instrument_classes()
            return [self._coverage(info, classes) for info in self._series()]

    def _instrument_classes(self) -> dict[str, tuple[str, str]]:
        try:
            return {i.instrument_id: (i.instrument_class, i.venue) for i in self.instruments()}
        except CatalogError:  # unreadable instruments: series are read against 24/7
            return {}

    def _coverage(self, info: SeriesInfo, classes: dict[str, tuple[str, str]]) -> SeriesCoverage:
        folder = _FOLDER_OF[info.data_type]
        ident = (info.key if info.data_type == "bars" else info.instrument_id).replace("/", "")
        path = f"{self._root}/data/{folder}/{ident}"
        files = [f for f in self._fs.ls(path, detail=True)
                 if _FILE_RE.match(f["name"].rsplit("/", 1)[-1])]
        spec = self.bar_spec(info.key) if info.data_type == "bars" else None
        step = (bar_step_ns(spec) or 0) if spec else 0
        spans = self._coverage_index.spans(f"{folder}/{ident}", files, break_min_ns(step),
                                           self._read_ts)
        instrument_class, venue = classes.get(info.instrument_id, (None, ""))
        calendar = get_calendar(default_calendar_name(instrument_class, venue))
        sample = SAMPLE_SERIES.get(info.key) if self.is_sample else None
        return build_coverage(info.key, info.data_type, spans, calendar, step,
                              None if sample is None else tuple(
                                  pd.Timestamp(t).value for t in sample))

    def _read_ts(self, name: str) -> np.ndarray:
        if self._protocol == "file":
            return pq.read_table(name, columns=["ts_event"]).column("ts_event").to_numpy()
        with self._fs.open(name, "rb") as fh:
            return pq.read_table(fh, columns=["ts_event"]).column("ts_event").to_numpy()

    def rows_between(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> int:
        """How many rows of a stored series (or of the data a backtestable bar type reads) lie
        in [start, end]: only the timestamps of the files that overlap the range are read."""
        with _readable(self.location):
            info = self.find_series(self._stored_key(key))
            ident = info.key if info.data_type == "bars" else info.instrument_id
            bounds = [("ts_event", ">=", start.value), ("ts_event", "<=", end.value)]
            total = 0
            for name in self._files(_FOLDER_OF[info.data_type], ident, start, end):
                if self._protocol == "file":
                    table = pq.read_table(name, columns=["ts_event"], filters=bounds)
                else:
                    with self._fs.open(name, "rb") as fh:
                        table = pq.read_table(fh, columns=["ts_event"], filters=bounds)
                total += table.num_rows
            return total

    # -- column reads -------------------------------------------------------------------------
    def _files(self, folder: str, ident: str, start=None, end=None) -> list[str]:
        path = f"{self._root}/data/{folder}/{ident.replace('/', '')}"
        if not self._fs.exists(path):
            return []
        chosen = []
        for name in sorted(self._fs.ls(path, detail=False)):
            m = _FILE_RE.match(name.rsplit("/", 1)[-1])
            if not m:
                continue
            first, last = _parse_file_ts(m.group(1)), _parse_file_ts(m.group(2))
            if (end is not None and first > end) or (start is not None and last < start):
                continue
            chosen.append(name)
        return chosen

    def _read(self, folder: str, ident: str, columns: list[str], start=None, end=None,
              sort: bool = True) -> pd.DataFrame:
        """Decoded columns of one series; ``sort=False`` keeps storage order and an int64
        ``ts_event`` column (what the quality checks need), else a sorted UTC index ``ts``."""
        start, end = parse_range(start, end)
        with _readable(self.location):
            frames = [self._read_file(name, columns, start, end)
                      for name in self._files(folder, ident, start, end)]
        if frames:
            df = pd.concat(frames, ignore_index=True)
        else:
            df = pd.DataFrame({**{c: np.array([], dtype=np.float64) for c in columns},
                               "ts_event": np.array([], dtype=np.int64)})
        if not sort:
            return df.reset_index(drop=True)
        df.index = pd.DatetimeIndex(pd.to_datetime(df.pop("ts_event"), unit="ns", utc=True), name="ts")
        return df.sort_index(kind="stable")

    def bars(self, bar_type: str, start=None, end=None, columns: list[str] | None = None
             ) -> pd.DataFrame:
        """OHLCV of a bar type (index: bar close time, UTC); ``columns`` reads only those."""
        if bar_type.endswith(QUOTE_BAR_SUFFIX):
            instrument_id = bar_type[: -len(QUOTE_BAR_SUFFIX)]
            quotes = self._read("quote_tick", instrument_id, ["bid_price", "ask_price"], start, end)
            mid = (quotes["bid_price"] + quotes["ask_price"]) / 2
            # NautilusTrader stamps a time bar at its close: label and close on the right edge.
            ohlc = mid.resample("1min", label="right", closed="right").ohlc().dropna()
            ohlc["volume"] = 0.0
            return ohlc
        return self._read("bar", bar_type, columns or SERIES_COLUMNS["bars"], start, end)

    def quotes(self, instrument_id: str, start=None, end=None) -> pd.DataFrame:
        return self._read("quote_tick", instrument_id, ["bid_price", "ask_price"], start, end)

    def trades(self, instrument_id: str, start=None, end=None) -> pd.DataFrame:
        return self._read("trade_tick", instrument_id, SERIES_COLUMNS["trades"], start, end)

    def read_series(self, key: str, start=None, end=None, columns: list[str] | None = None,
                    sort: bool = True) -> pd.DataFrame:
        """Every column of a stored series (see ``SERIES_COLUMNS``), or the ``columns`` asked."""
        info = self.find_series(key)
        if info.data_type not in SERIES_COLUMNS:
            raise CatalogError(f"Reading {info.data_type} is not supported; bars, quotes and "
                               "trades are")
        folder = _FOLDER_OF[info.data_type]
        ident = key if info.data_type == "bars" else info.instrument_id
        return self._read(folder, ident, columns or SERIES_COLUMNS[info.data_type], start, end, sort)

    def series_files(self, key: str, start=None, end=None) -> list[str]:
        """Paths of the data files of a stored series (overlapping [start, end] if given)."""
        info = self.find_series(key)
        ident = key if info.data_type == "bars" else info.instrument_id
        return self._files(_FOLDER_OF[info.data_type], ident, start, end)

    def series_folder(self, key: str) -> str:
        info = self.find_series(key)
        ident = key if info.data_type == "bars" else info.instrument_id
        return f"{self._root}/data/{_FOLDER_OF[info.data_type]}/{ident.replace('/', '')}"

    @property
    def fs(self):
        """The fsspec filesystem the catalog lives on."""
        return self._fs

    # -- quality, preview, export ------------------------------------------------------------
    def bar_spec(self, key: str) -> str | None:
        """``1-MINUTE-LAST`` of a bar type key; None for quotes and trades."""
        match = _BAR_TYPE_RE.match(key)
        return match.group(2) if match else None

    def default_calendar(self, key: str) -> str:
        info = self.find_series(key)
        try:
            instrument = self.instrument(info.instrument_id)
        except CatalogError:
            return default_calendar_name(None)
        return default_calendar_name(instrument.instrument_class, instrument.venue)

    def check(self, key: str, calendar: str | None = None, start=None, end=None,
              outlier_z: float = DEFAULT_OUTLIER_Z, min_gap: int = 1,
              tick_quiet_s: int = DEFAULT_TICK_QUIET_S) -> QualityReport:
        """Every quality check on a stored series, against ``calendar`` (default: by instrument)."""
        info = self.find_series(key)
        cal = get_calendar(calendar or self.default_calendar(key))
        columns = [c for c in SERIES_COLUMNS.get(info.data_type, []) if c != "trade_id"]
        frame = self.read_series(key, start, end, columns=columns, sort=False)
        spec = self.bar_spec(key) if info.data_type == "bars" else None
        return check_frame(frame, info.data_type, series=key, calendar=cal,
                           step_ns=bar_step_ns(spec) if spec else None, interval=spec,
                           outlier_z=outlier_z, min_gap=min_gap, tick_quiet_s=tick_quiet_s)

    def preview(self, key: str, start=None, end=None, max_points: int = PREVIEW_POINTS) -> pd.DataFrame:
        """A price line of the series with at most ``max_points`` rows (extremes kept).

        Only the timestamp and one price column are read; each of ``max_points / 2`` equal
        buckets keeps its lowest and highest price, so spikes survive decimation.
        """
        info = self.find_series(key)
        column = {"bars": ["close"], "quotes": ["bid_price", "ask_price"],
                  "trades": ["price"]}.get(info.data_type)
        if column is None:
            raise CatalogError(f"No price preview for {info.data_type}")
        frame = self.read_series(key, start, end, columns=column)
        price = frame.mean(axis=1) if len(column) > 1 else frame[column[0]]
        return decimate_minmax(price.rename("price"), max_points).to_frame()

    def export(self, key: str, target, start=None, end=None, fmt: str | None = None) -> int:
        """Write a series (or its [start, end] slice) to CSV or Parquet, file by file.

        ``target`` is a path (format from its suffix unless ``fmt``) or a binary file object.
        Timestamps are ``ts_event`` in UTC (bars: their close). Returns the rows written.
        """
        info = self.find_series(key)
        if fmt is None:
            name = str(target).lower()
            fmt = "parquet" if name.endswith(".parquet") else "csv" if name.endswith(
                (".csv", ".csv.gz")) else None
        if fmt not in ("csv", "parquet"):
            raise ValidationError(f"Cannot tell the export format of {target!r}: end the file name "
                                  "in .csv or .parquet")
        start, end = parse_range(start, end)
        columns = SERIES_COLUMNS[info.data_type]
        ident = key if info.data_type == "bars" else info.instrument_id
        precisions = self._footer_precisions(key)
        files = self._files(_FOLDER_OF[info.data_type], ident, start, end)
        if not files:
            raise CatalogError(f"{key} has no data between {start} and {end}; nothing exported.")
        if hasattr(target, "write"):
            return self._export_to(target, key, files, columns, precisions, fmt, start, end)
        # Written aside and renamed over the target: a crash or a full disk never leaves half a
        # file under the target's name.
        final = os.fspath(target)
        folder, name = os.path.split(os.path.abspath(final))
        partial = os.path.join(folder, f".{name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            with open(partial, "wb") as sink:
                if final.lower().endswith(".gz"):
                    with gzip.GzipFile(fileobj=sink, mode="wb", mtime=0) as packed:
                        rows = self._export_to(packed, key, files, columns, precisions, fmt,
                                               start, end)
                else:
                    rows = self._export_to(sink, key, files, columns, precisions, fmt, start, end)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(partial, final)
        except OSError as e:
            if os.path.exists(partial):
                os.unlink(partial)
            if e.errno == errno.ENOSPC:
                raise CatalogError(f"The disk is full: cannot write {final}; nothing was "
                                   "written. Free some space, or export a shorter range.") from e
            raise CatalogError(f"Cannot write {final}: {e.strerror or e}. Check that its folder "
                               "exists and is writable.") from e
        except BaseException:
            if os.path.exists(partial):
                os.unlink(partial)
            raise
        return rows

    def _export_to(self, sink, key: str, files: list[str], columns: list[str],
                   precisions: dict[str, int], fmt: str, start, end) -> int:
        rows = 0
        writer = None
        try:
            for name in files:
                frame = self._read_file(name, columns, start, end)
                for column in columns:
                    digits = precisions.get("size" if column in ("volume", "size", "bid_size",
                                                                 "ask_size") else "price")
                    if digits is not None and frame[column].dtype == np.float64:
                        frame[column] = frame[column].round(digits)
                frame.insert(0, "ts_event", pd.to_datetime(frame.pop("ts_event"), unit="ns", utc=True))
                if fmt == "csv":
                    frame["ts_event"] = frame["ts_event"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    sink.write(frame.to_csv(header=rows == 0, index=False,
                                            lineterminator="\n").encode())
                else:
                    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
                        {"series": key})
                    if writer is None:
                        writer = pq.ParquetWriter(sink, table.schema)
                    writer.write_table(table)
                rows += len(frame)
            if rows == 0:
                raise CatalogError(f"{key} has no data between {start} and {end}; nothing exported.")
        finally:
            if writer is not None:
                writer.close()
        return rows

    def _read_file(self, name: str, columns: list[str], start=None, end=None) -> pd.DataFrame:
        # Only the rows in range are decoded: a short slice of a year-long file stays cheap.
        bounds = [("ts_event", op, ts.value) for op, ts in ((">=", start), ("<=", end))
                  if ts is not None] or None
        if self._protocol == "file":  # pyarrow's own reader: threaded, no Python file object
            table = pq.read_table(name, columns=columns + ["ts_event"], filters=bounds)
        else:
            with self._fs.open(name, "rb") as fh:
                table = pq.read_table(fh, columns=columns + ["ts_event"], filters=bounds)
        data = {c: decode_fixed(table.column(c)) if table.schema.field(c).type == _FIXED_TYPE
                else table.column(c).to_numpy() for c in columns}
        data["ts_event"] = table.column("ts_event").to_numpy().astype(np.int64)
        frame = pd.DataFrame(data)
        if start is not None:
            frame = frame[frame["ts_event"] >= start.value]
        if end is not None:
            frame = frame[frame["ts_event"] <= end.value]
        return frame.reset_index(drop=True)

    def _footer_precisions(self, key: str) -> dict[str, int]:
        for path in self.series_files(key)[:1]:
            info = self._fs.info(path)
            meta = self._footer({**info, "name": path})[1]
            return {k.split("_")[0]: int(v) for k, v in meta.items() if k.endswith("_precision")}
        return {}


def decimate_minmax(series: pd.Series, max_points: int) -> pd.Series:
    """At most ``max_points`` values: the lowest and highest of each equal-count bucket."""
    n = len(series)
    if n <= max_points:
        return series
    buckets = max(max_points // 2, 1)
    size = -(-n // buckets)
    values = series.to_numpy(dtype=np.float64)
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, size)
    valid = ~np.all(np.isnan(grid), axis=1)
    rows = np.flatnonzero(valid)
    lows = np.nanargmin(grid[valid], axis=1) + rows * size
    highs = np.nanargmax(grid[valid], axis=1) + rows * size
    keep = np.sort(np.concatenate([lows, highs]))
    keep = keep[np.r_[True, keep[1:] != keep[:-1]]]
    return series.iloc[keep]

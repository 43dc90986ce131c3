"""Read-side of NautilusTrader's ParquetDataCatalog: inventory, coverage and price series.

Inventory and coverage come from metadata only (file names carry each file's first and last
timestamp; Parquet footers carry row counts), so listing a large catalog loads no rows.
Price series are read column-wise with pyarrow and decoded vectorised, never as Python objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from services.errors import CatalogError

# NautilusTrader 1.231 stores prices as 128-bit fixed point with 16 decimals (high precision).
_FIXED_SCALAR = 1e16
_FILE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{9})Z_(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{9})Z\.parquet$")
_DATA_FOLDERS = {"bar": "bars", "quote_tick": "quotes", "trade_tick": "trades",
                 "order_book_delta": "order_book_deltas", "order_book_depth10": "order_book_depths"}
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
        try:
            self._fs = fsspec.filesystem(self._protocol)
        except (ImportError, ValueError) as e:
            raise CatalogError(
                f"Cannot open catalog {self.location!r}: {e}. Install the fsspec driver for "
                f"'{self._protocol}' or use a local path."
            ) from e

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
        try:
            return self._fs.exists(f"{self._root}/data")
        except Exception as e:  # network filesystems raise their own errors
            raise CatalogError(f"Cannot reach catalog {self.location!r}: {e}") from e

    def series(self) -> list[SeriesInfo]:
        """Every stored series with coverage, rows, files and bytes, from metadata only."""
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
                    with self._fs.open(f["name"], "rb") as fh:
                        footer = pq.read_metadata(fh)
                    rows += footer.num_rows
                    meta = meta or {k.decode(): v.decode() for k, v in (footer.metadata or {}).items()
                                    if k in (b"bar_type", b"instrument_id")}
                # Folder names drop '/' (EUR/USD -> EURUSD); the footer keeps the real identifier.
                instrument_id = meta.get("instrument_id", ident)
                key = meta.get("bar_type", ident) if data_type == "bars" else f"{instrument_id}:{data_type}"
                result.append(SeriesInfo(key, data_type, instrument_id, min(firsts), max(lasts),
                                         rows, len(files), int(sum(f["size"] for f in files))))
        return result

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

    def _read(self, folder: str, ident: str, columns: list[str], start=None, end=None) -> pd.DataFrame:
        frames = []
        for name in self._files(folder, ident, start, end):
            # Only the rows in range are decoded: a short slice of a year-long file stays cheap.
            bounds = [("ts_event", op, ts.value) for op, ts in ((">=", start), ("<=", end))
                      if ts is not None]
            with self._fs.open(name, "rb") as fh:
                table = pq.read_table(fh, columns=columns + ["ts_event"], filters=bounds or None)
            data = {c: decode_fixed(table.column(c)) for c in columns}
            data["ts_event"] = table.column("ts_event").to_numpy()
            frames.append(pd.DataFrame(data))
        if not frames:
            return pd.DataFrame(columns=columns, index=pd.DatetimeIndex([], tz="UTC", name="ts"))
        df = pd.concat(frames, ignore_index=True)
        df.index = pd.to_datetime(df.pop("ts_event"), unit="ns", utc=True)
        df.index.name = "ts"
        df = df.sort_index()
        if start is not None:
            df = df[df.index >= start]
        if end is not None:
            df = df[df.index <= end]
        return df

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
        return self._read("bar", bar_type, columns or ["open", "high", "low", "close", "volume"],
                          start, end)

    def quotes(self, instrument_id: str, start=None, end=None) -> pd.DataFrame:
        return self._read("quote_tick", instrument_id, ["bid_price", "ask_price"], start, end)

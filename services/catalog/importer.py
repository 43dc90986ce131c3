"""Read market data files (CSV or Parquet, local path or fsspec URL) into typed column chunks.

The reader detects the layout (delimiter, header, which column is what: generic OHLCV, Binance
kline exports with or without a header, quote and trade files, the workbench's own exports),
parses timestamps into UTC nanoseconds and prices into floats, and yields the file in chunks so a
file of any size streams through with bounded memory. Every problem names the line (CSV) or row
(Parquet) and the column it was found in.

Instruments for new symbols are built here too (crypto perpetual/spot, FX pair, equity, future)
from an :class:`InstrumentSpec`. No catalog writes happen in this module.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import stat
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal

import fsspec
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from services.catalog.quality import bar_step_ns, sorted_unique
from services.errors import CatalogError, ValidationError
from services.identifiers import instrument_id_problem

DEFAULT_CHUNK_ROWS = 250_000
PREVIEW_ROWS = 20
INSTRUMENT_TYPES = ("fx", "crypto-perp", "crypto-spot", "equity", "future")
DATA_TYPES = ("bars", "quotes", "trades")
MAX_PRECISION = 9  # NautilusTrader's standard precision; enough for every listed market

# Accepted header names per field (lower case, spaces and dashes read as underscores).
_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("ts_event", "timestamp", "timestamp_utc", "time", "datetime", "date_time",
                  "date", "open_time", "ts", "ts_init", "time_utc", "gmt_time", "local_time",
                  "transact_time", "close_time"),
    "open": ("open", "o", "open_price", "first"),
    "high": ("high", "h", "high_price", "max"),
    "low": ("low", "l", "low_price", "min"),
    "close": ("close", "c", "close_price", "last"),
    "volume": ("volume", "vol", "v", "base_volume", "qty", "quantity"),
    "bid_price": ("bid_price", "bid", "bid_px", "best_bid", "bidprice", "bid_px_00"),
    "ask_price": ("ask_price", "ask", "ask_px", "best_ask", "askprice", "ask_px_00"),
    "bid_size": ("bid_size", "bid_qty", "bid_sz", "bid_volume", "bidvolume", "bid_sz_00"),
    "ask_size": ("ask_size", "ask_qty", "ask_sz", "ask_volume", "askvolume", "ask_sz_00"),
    "price": ("price", "px", "trade_price", "last_price"),
    "size": ("size", "qty", "quantity", "amount", "volume", "sz", "trade_size"),
    "aggressor_side": ("aggressor_side", "side", "taker_side", "is_buyer_maker"),
    "trade_id": ("trade_id", "id", "agg_trade_id", "tid", "trade_no"),
}
REQUIRED = {"bars": ("open", "high", "low", "close"), "quotes": ("bid_price", "ask_price"),
            "trades": ("price", "size")}
OPTIONAL = {"bars": ("volume",), "quotes": ("bid_size", "ask_size"),
            "trades": ("aggressor_side", "trade_id")}
BINANCE_KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                         "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume",
                         "ignore")
BINANCE_AGG_TRADES_COLUMNS = ("agg_trade_id", "price", "quantity", "first_trade_id",
                              "last_trade_id", "transact_time", "is_buyer_maker",
                              "is_best_match")
_OFFSET_RE = r"(?:Z|[+-]\d{2}:?\d{2})$"
_DELIMITERS = ",;\t|"


class CatalogImportError(CatalogError):
    """A file cannot be imported as asked; the message names the line and column."""


@dataclass(frozen=True)
class Layout:
    """How a file is laid out: format, delimiter, header and which column holds what."""

    format: str  # csv | parquet
    name: str  # generic-ohlcv | binance-kline | binance-agg-trades | quotes | trades
    data_type: str  # bars | quotes | trades
    columns: tuple[str, ...]  # column names as read (given names for headerless files)
    mapping: dict[str, str]  # field -> column
    has_header: bool = True
    delimiter: str = ","
    compression: str | None = None
    timestamps_mark: str = "close"  # bars: the timestamp is the bar's open or close

    def describe(self) -> str:
        pairs = ", ".join(f"{f}={c}" for f, c in self.mapping.items())
        where = f"{self.format}, delimiter {self.delimiter!r}" if self.format == "csv" else "parquet"
        return f"{self.name} ({where}); {pairs}; bar timestamps mark the {self.timestamps_mark}"


@dataclass(frozen=True)
class ImportOptions:
    """What the user chose; anything left None is detected from the file."""

    instrument_id: str
    instrument_type: str | None = None
    bar_spec: str | None = None  # e.g. 1-MINUTE-LAST; implies bars
    data_type: str | None = None  # bars | quotes | trades
    timezone: str = "UTC"  # of timestamps written without an offset
    timestamps_mark: str | None = None  # bars: open | close
    delimiter: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # field -> column, overrides detection
    price_precision: int | None = None
    size_precision: int | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    accept_level_change: bool = False  # prices far from the instrument's stored level are meant


@dataclass
class Chunk:
    """Parsed rows of one stretch of the file, in file order."""

    first_line: int  # line (CSV, header counted) or row (Parquet) of the first row
    ts: np.ndarray  # int64 ns UTC, ts_event (bars: their close)
    values: dict[str, np.ndarray]  # field -> float64 (trade ids as object)
    text: dict[str, pd.Series]  # field -> raw text of price/size columns (for precisions)


# -- names and instruments ---------------------------------------------------------------------
def validate_instrument_id(instrument_id: str) -> tuple[str, str]:
    """Split ``SYMBOL.VENUE``; refuse ids outside the identifier grammar (no markup, no path)."""
    problem = instrument_id_problem(instrument_id)
    if problem:
        raise ValidationError(f"Instrument id: {problem}")
    symbol, _, venue = instrument_id.rpartition(".")
    return symbol, venue


def validate_bar_spec(bar_spec: str) -> str:
    spec = (bar_spec or "").strip().upper()
    bar_step_ns(spec)  # raises a ValidationError naming the expected form
    _step, aggregation, price = spec.split("-")
    if price not in ("LAST", "BID", "ASK", "MID"):
        raise ValidationError(f"Bar spec {bar_spec!r}: price type must be LAST, BID, ASK or MID")
    if aggregation not in ("MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH",
                           "TICK", "VOLUME", "VALUE"):
        raise ValidationError(f"Bar spec {bar_spec!r}: unknown aggregation {aggregation}")
    return spec


@dataclass(frozen=True)
class InstrumentSpec:
    """Enough to create a NautilusTrader instrument for data of a new symbol."""

    instrument_id: str
    instrument_type: str
    price_precision: int
    size_precision: int
    base_currency: str | None = None
    quote_currency: str = "USD"
    multiplier: str = "1"
    underlying: str | None = None
    expiration: pd.Timestamp | None = None

    def to_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v)
                for k, v in self.__dict__.items()}


_QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "EUR", "GBP", "JPY", "BTC",
                 "ETH", "BNB", "TRY", "BRL")
_FUTURE_MONTHS = "FGHJKMNQUVXZ"


def _split_pair(symbol: str) -> tuple[str, str] | None:
    core = symbol.split("-")[0].upper()
    if "/" in core:
        base, quote = core.split("/", 1)
        return (base, quote) if base and quote else None
    for quote in _QUOTE_ASSETS:
        if core.endswith(quote) and len(core) > len(quote):
            return core[: -len(quote)], quote
    if len(core) == 6 and core.isalpha():
        return core[:3], core[3:]
    return None


def _future_expiry(symbol: str) -> pd.Timestamp | None:
    """Third Wednesday of the contract month from a CME-style code such as 6EH4 or ESZ24."""
    match = re.match(r"^[A-Z0-9]+?([FGHJKMNQUVXZ])(\d{1,2})$", symbol.upper())
    if not match:
        return None
    month = _FUTURE_MONTHS.index(match.group(1)) + 1
    digits = match.group(2)
    year = 2020 + int(digits) if len(digits) == 1 else 2000 + int(digits)
    first = pd.Timestamp(year=year, month=month, day=1, tz="UTC")
    first_wednesday = first + pd.Timedelta(days=(2 - first.day_of_week) % 7)
    return first_wednesday + pd.Timedelta(days=14, hours=14)


def guess_instrument_type(instrument_id: str) -> str:
    symbol, venue = validate_instrument_id(instrument_id)
    venue = venue.upper()
    if symbol.upper().endswith("-PERP") or symbol.upper().endswith("PERP"):
        return "crypto-perp"
    if venue in ("XCME", "GLBX", "CME", "CBOT", "NYMEX", "COMEX", "XCBT", "XNYM", "ICE", "EUREX"):
        return "future"
    if venue in ("BINANCE", "BYBIT", "OKX", "COINBASE", "KRAKEN", "BITMEX", "BITSTAMP"):
        return "crypto-spot"
    if venue in ("XNAS", "XNYS", "NASDAQ", "NYSE", "ARCX", "BATS", "XLON", "XETR"):
        return "equity"
    return "fx" if _split_pair(symbol) else "equity"


def instrument_spec(instrument_id: str, instrument_type: str | None, price_precision: int,
                    size_precision: int, first_ts: pd.Timestamp | None = None,
                    last_ts: pd.Timestamp | None = None) -> InstrumentSpec:
    """Propose an instrument for a new symbol: currencies from the symbol, precisions from data."""
    symbol, _venue = validate_instrument_id(instrument_id)
    kind = instrument_type or guess_instrument_type(instrument_id)
    if kind not in INSTRUMENT_TYPES:
        raise ValidationError(f"Instrument type {kind!r} is not one of {', '.join(INSTRUMENT_TYPES)}")
    if kind in ("fx", "crypto-perp", "crypto-spot"):
        pair = _split_pair(symbol)
        if pair is None:
            raise ValidationError(
                f"Cannot tell base and quote currency from {symbol!r} for a {kind} instrument; name "
                "it BASE/QUOTE (EUR/USD.SIM) or BASEQUOTE (BTCUSDT-PERP.BINANCE)")
        return InstrumentSpec(instrument_id, kind, price_precision, size_precision,
                              base_currency=pair[0], quote_currency=pair[1])
    if kind == "equity":
        return InstrumentSpec(instrument_id, kind, price_precision, 0)
    expiry = _future_expiry(symbol)
    if expiry is None:
        expiry = (last_ts or pd.Timestamp.now(tz="UTC")) + pd.Timedelta(days=90)
    root = re.sub(r"[FGHJKMNQUVXZ]\d{1,2}$", "", symbol.upper()) or symbol
    return InstrumentSpec(instrument_id, kind, price_precision, 0, underlying=root,
                          expiration=expiry)


def build_instrument(spec: InstrumentSpec, activation: pd.Timestamp | None = None):
    """The NautilusTrader instrument for ``spec``."""
    from nautilus_trader.model.enums import AssetClass
    from nautilus_trader.model.identifiers import InstrumentId, Symbol
    from nautilus_trader.model.instruments import (
        CryptoPerpetual,
        CurrencyPair,
        Equity,
        FuturesContract,
    )
    from nautilus_trader.model.objects import Currency, Price, Quantity

    def currency(code: str) -> Currency:
        return Currency.from_str(code, strict=False)

    iid = InstrumentId.from_str(spec.instrument_id)
    raw = Symbol(iid.symbol.value.split("-")[0] if spec.instrument_type == "crypto-perp"
                 else iid.symbol.value)
    price_inc = Price(10.0 ** -spec.price_precision, spec.price_precision)
    size_inc = Quantity(10.0 ** -spec.size_precision, spec.size_precision)
    fees = {"maker_fee": Decimal(0), "taker_fee": Decimal(0), "ts_event": 0, "ts_init": 0}
    if spec.instrument_type == "crypto-perp":
        quote = currency(spec.quote_currency)
        return CryptoPerpetual(
            instrument_id=iid, raw_symbol=raw, base_currency=currency(spec.base_currency),
            quote_currency=quote, settlement_currency=quote, is_inverse=False,
            price_precision=spec.price_precision, size_precision=spec.size_precision,
            price_increment=price_inc, size_increment=size_inc, max_quantity=None,
            min_quantity=size_inc, max_notional=None, min_notional=None, max_price=None,
            min_price=None, margin_init=Decimal("0.05"), margin_maint=Decimal("0.025"), **fees)
    if spec.instrument_type in ("fx", "crypto-spot"):
        return CurrencyPair(
            instrument_id=iid, raw_symbol=raw, base_currency=currency(spec.base_currency),
            quote_currency=currency(spec.quote_currency), price_precision=spec.price_precision,
            size_precision=spec.size_precision, price_increment=price_inc,
            size_increment=size_inc, lot_size=None, max_quantity=None, min_quantity=size_inc,
            max_price=None, min_price=None, max_notional=None, min_notional=None,
            margin_init=Decimal("0.03"), margin_maint=Decimal("0.03"), **fees)
    if spec.instrument_type == "equity":
        return Equity(instrument_id=iid, raw_symbol=raw, currency=currency(spec.quote_currency),
                      price_precision=spec.price_precision, price_increment=price_inc,
                      lot_size=Quantity.from_int(1), **fees)
    activation_ns = (activation.value if activation is not None else 0)
    return FuturesContract(
        instrument_id=iid, raw_symbol=raw, asset_class=AssetClass.FX if spec.underlying and
        spec.underlying.startswith("6") else AssetClass.INDEX, currency=currency(spec.quote_currency),
        price_precision=spec.price_precision, price_increment=price_inc,
        multiplier=Quantity.from_str(spec.multiplier), lot_size=Quantity.from_int(1),
        underlying=spec.underlying or raw.value, activation_ns=activation_ns,
        expiration_ns=spec.expiration.value, **fees)


# -- opening sources ---------------------------------------------------------------------------
class _CountingReader(io.RawIOBase):
    """Counts the bytes read from the underlying (possibly compressed) file, for progress."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def _source_name(source) -> str:
    return str(source)


def open_source(source: str) -> tuple[object, int | None]:
    """Open a path or fsspec URL for reading bytes; returns (file, size or None)."""
    text = str(source)
    try:
        fs, path = fsspec.core.url_to_fs(text)
    except (ImportError, ValueError) as e:
        raise CatalogError(f"Cannot open {text!r}: {e}. Install the fsspec driver for that URL "
                           "scheme, or download the file and give its path.") from e
    except Exception as e:  # drivers that connect on creation (ftp, sftp) fail here
        raise CatalogError(f"Cannot reach {text!r}: {type(e).__name__}: {e}. Check the URL and "
                           "the network, or download the file and give its path.") from e
    try:
        if isinstance(fs, LocalFileSystem):
            mode = os.stat(path).st_mode
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(path)
            if not stat.S_ISREG(mode):  # a FIFO would block the open until a writer came
                raise CatalogImportError(f"{text!r} is not a regular file (a pipe, socket or "
                                         "device); save the data to a file and import that.")
        size = fs.size(path)
        handle = fs.open(path, "rb")
    except FileNotFoundError:
        raise CatalogError(f"File {text!r} does not exist; check the path or URL.") from None
    except IsADirectoryError:
        raise CatalogError(f"{text!r} is a folder; give a CSV or Parquet file.") from None
    except PermissionError:
        raise CatalogError(f"Cannot read {text!r}: permission denied; check the file's "
                           "permissions.") from None
    except CatalogImportError:
        raise
    except Exception as e:  # network drivers raise their own errors (refused, timeout, DNS)
        raise CatalogError(f"Cannot reach {text!r}: {type(e).__name__}: {e}. Check the URL and "
                           "the network, or download the file and give its path.") from e
    if size == 0:
        handle.close()
        raise CatalogImportError(f"{text!r} is empty: there is nothing to import.")
    return handle, size


def _format_of(name: str) -> tuple[str, str | None]:
    lower = name.lower()
    compression = "gzip" if lower.endswith(".gz") else None
    stem = lower[:-3] if compression else lower
    if stem.endswith((".parquet", ".pq")):
        return "parquet", compression
    return "csv", compression


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _looks_numeric(cells: list[str]) -> bool:
    return bool(cells) and all(re.fullmatch(r"-?\d+(\.\d*)?([eE][-+]?\d+)?", c.strip() or "x")
                               for c in cells)


def _sniff_delimiter(header: str, sample_lines: list[str]) -> str:
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        return ","
    # Prefer a delimiter that splits every sample line into as many fields as the header.
    for d in sorted(_DELIMITERS, key=lambda d: -counts[d]):
        if counts[d] and all(line.count(d) == counts[d] for line in sample_lines if line):
            return d
    return best


def validate_options(options: ImportOptions) -> None:
    """Refuse choices no file can satisfy (before a file is opened)."""
    if options.delimiter is not None and (
            len(options.delimiter) != 1 or options.delimiter in "\r\n\"" or
            options.delimiter.isalnum()):
        raise ValidationError(f"Delimiter {options.delimiter!r} must be one character other than "
                              "a letter, a digit, a quote or a line break, e.g. ',' ';' '|' or a tab")
    for field_name in options.columns:
        if field_name not in _ALIASES:
            raise ValidationError(f"--column {field_name}={options.columns[field_name]}: "
                                  f"{field_name!r} is not a field; fields are "
                                  f"{', '.join(_ALIASES)}")
    if options.data_type is not None:
        usable = {"timestamp", *REQUIRED[options.data_type], *OPTIONAL[options.data_type]}
        for field_name in set(options.columns) - usable:
            raise ValidationError(f"--column {field_name}=...: {options.data_type} have no "
                                  f"{field_name!r}; their fields are {', '.join(sorted(usable))}")
    if not isinstance(options.chunk_rows, int) or options.chunk_rows < 1:
        raise ValidationError(f"chunk_rows must be a whole number >= 1, was {options.chunk_rows!r}")


def _detect_mapping(columns: list[str], options: ImportOptions) -> tuple[str, dict[str, str], str]:
    """(data type, field -> column, layout name) from header names and the user's choices."""
    normalized = {_norm(c): c for c in columns}

    def find(field_name: str, taken: set[str]) -> str | None:
        if field_name in options.columns:
            wanted = options.columns[field_name]
            if wanted not in columns:
                raise CatalogImportError(f"Column {wanted!r} (given for {field_name}) is not in the file; "
                                   f"its columns are: {', '.join(columns)}")
            return wanted
        for alias in _ALIASES[field_name]:
            if alias in normalized and normalized[alias] not in taken:
                return normalized[alias]
        return None

    data_type = options.data_type or ("bars" if options.bar_spec else None)
    if data_type is None:
        has = {f for f in ("open", "close", "bid_price", "ask_price", "price")
               if find(f, set()) is not None}
        if {"open", "close"} <= has:
            data_type = "bars"
        elif {"bid_price", "ask_price"} <= has:
            data_type = "quotes"
        elif "price" in has:
            data_type = "trades"
        else:
            raise CatalogImportError(
                f"Cannot tell what the file holds from its columns ({', '.join(columns)}): expected "
                "open/high/low/close (bars), bid/ask (quotes) or price/size (trades). Name the "
                "columns in a header row, or map them (--column close=MyClose).")
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    ts_col = find("timestamp", taken)
    if ts_col is None:
        raise CatalogImportError(f"No timestamp column among {', '.join(columns)}; name it timestamp "
                           "(or time, date, ts_event, open_time), or map it (--column timestamp=COL)")
    mapping["timestamp"] = ts_col
    taken.add(ts_col)
    missing = []
    for f in REQUIRED[data_type] + OPTIONAL[data_type]:
        col = find(f, taken)
        if col is None:
            if f in REQUIRED[data_type]:
                missing.append(f)
            continue
        mapping[f] = col
        taken.add(col)
    unused = set(options.columns) - set(mapping)
    if unused:
        name = sorted(unused)[0]
        raise ValidationError(f"--column {name}={options.columns[name]}: {data_type} have no "
                              f"{name!r} field; their fields are "
                              f"{', '.join(['timestamp', *REQUIRED[data_type], *OPTIONAL[data_type]])}")
    if missing:
        raise CatalogImportError(f"Missing column(s) for {data_type}: {', '.join(missing)}. The file has: "
                           f"{', '.join(columns)}. Rename them in the header or map them "
                           "(--column FIELD=COLUMN).")
    layout = {"bars": "generic-ohlcv", "quotes": "quotes", "trades": "trades"}[data_type]
    if _norm(ts_col) == "open_time" and "close_time" in normalized:
        layout = "binance-kline"
    elif _norm(ts_col) == "transact_time":
        layout = "binance-agg-trades"
    return data_type, mapping, layout


def detect_layout(source: str, options: ImportOptions) -> Layout:
    """Read the start of ``source`` and work out its layout (raises a clear message if it can't)."""
    fmt, compression = _format_of(_source_name(source))
    handle, _size = open_source(source)
    try:
        if fmt == "parquet":
            try:
                columns = list(pq.ParquetFile(handle).schema_arrow.names)
            except Exception as e:  # not a Parquet file at all
                raise CatalogImportError(f"{source!r} is not a readable Parquet file ({e}); export it "
                                   "again, or give a CSV file.") from e
            data_type, mapping, name = _detect_mapping(columns, options)
            return _finish(Layout("parquet", name, data_type, tuple(columns), mapping), options)
        stream = gzip.GzipFile(fileobj=handle) if compression else handle
        try:
            head = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict").readlines(65536)
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise CatalogImportError(f"Cannot read {source!r} as {'gzip-compressed ' if compression else ''}"
                               f"UTF-8 text: {e}") from e
    finally:
        handle.close()
    lines = [line.rstrip("\r\n") for line in head]
    if not any(line.strip() for line in lines):
        raise CatalogImportError(f"{source!r} holds no rows: there is nothing to import.")
    header = lines[0]
    delimiter = options.delimiter or _sniff_delimiter(header, lines[1:50])
    cells = next(csv.reader([header], delimiter=delimiter))
    if len(cells) == 1:
        others = [d for d in _DELIMITERS if d != delimiter and d in header]
        hint = (f"; it seems to be separated by {others[0]!r} (pass --delimiter {others[0]!r})"
                if others else "")
        raise CatalogImportError(f"Line 1 of {source!r} has a single column {header[:60]!r} with "
                           f"delimiter {delimiter!r}{hint}")
    if _looks_numeric(cells):
        # No header: Binance kline and aggTrades exports are recognised by their width.
        if len(cells) == 12:
            columns, has_header = list(BINANCE_KLINE_COLUMNS), False
        elif len(cells) in (7, 8):
            columns, has_header = list(BINANCE_AGG_TRADES_COLUMNS[: len(cells)]), False
        else:
            raise CatalogImportError(
                f"Line 1 of {source!r} holds numbers ({header[:60]!r}), not column names, and its "
                f"{len(cells)} columns match no known headerless layout (Binance klines have 12). "
                "Add a header row such as timestamp,open,high,low,close,volume.")
    else:
        columns, has_header = [c.strip() for c in cells], True
        if len(set(columns)) != len(columns):
            raise CatalogImportError(f"Line 1 of {source!r} repeats a column name: {', '.join(columns)}")
    data_type, mapping, name = _detect_mapping(columns, options)
    if not has_header:
        name = "binance-kline" if len(cells) == 12 else "binance-agg-trades"
    layout = Layout("csv", name, data_type, tuple(columns), mapping, has_header, delimiter,
                    compression)
    return _finish(layout, options)


def _finish(layout: Layout, options: ImportOptions) -> Layout:
    if layout.data_type != "bars":
        return layout
    mark = options.timestamps_mark
    if mark is None:
        mark = "open" if _norm(layout.mapping["timestamp"]) == "open_time" else "close"
    if mark not in ("open", "close"):
        raise ValidationError(f"Bar timestamps mark the 'open' or the 'close', not {mark!r}")
    return replace(layout, timestamps_mark=mark)


# -- parsing -----------------------------------------------------------------------------------
@dataclass
class _TimestampParser:
    """Parses one timestamp column consistently across chunks (same unit/format/awareness)."""

    timezone: str
    column: str
    unit_label: str  # "line" (CSV) or "row" (Parquet)
    epoch_unit: str | None = None
    aware: bool | None = None
    first_aware_line: int | None = None
    first_aware_text: str = ""

    def __post_init__(self) -> None:
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"Unknown time zone {self.timezone!r}; use an IANA name such as "
                                  "UTC, Europe/London or America/Chicago") from None

    def _where(self, line: int) -> str:
        return f"{self.unit_label} {line}, column {self.column!r}"

    def parse(self, values: pd.Series, first_line: int) -> np.ndarray:
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            index = pd.DatetimeIndex(values)
            if index.tz is None:
                index = self._localize(index, values, first_line)
            return self._checked(index.tz_convert("UTC"), values, first_line)
        if pd.api.types.is_numeric_dtype(values.dtype):
            return self._epoch(values.astype("float64"), values, first_line)
        text = values.astype("string").str.strip()
        numeric = text.str.fullmatch(r"\d{9,20}(\.\d+)?").fillna(False)
        if numeric.all():
            return self._epoch(pd.to_numeric(text), values, first_line)
        offsets = text.str.contains(_OFFSET_RE, regex=True).fillna(False).to_numpy()
        if offsets.any():
            if self.first_aware_line is None:
                i = int(np.argmax(offsets))
                self.first_aware_line, self.first_aware_text = first_line + i, text.iloc[i]
            if not offsets.all() or self.aware is False:
                naive = int(np.argmin(offsets)) if not offsets.all() else 0
                raise CatalogImportError(
                    f"Mixed time zones: {self._where(first_line + naive)} is {text.iloc[naive]!r} "
                    f"without an offset, but {self.unit_label} {self.first_aware_line} is "
                    f"{self.first_aware_text!r} with one. Give every timestamp an offset, or "
                    "none and pass the time zone (--timezone).")
            self.aware = True
            parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
            return self._checked(pd.DatetimeIndex(parsed), values, first_line)
        if self.aware:
            raise CatalogImportError(
                f"Mixed time zones: {self._where(first_line)} is {text.iloc[0]!r} without an "
                f"offset, but {self.unit_label} {self.first_aware_line} is "
                f"{self.first_aware_text!r} with one.")
        self.aware = False
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        if parsed.isna().any():
            bad = int(np.argmax(parsed.isna().to_numpy()))
            raise CatalogImportError(f"Unparseable timestamp at {self._where(first_line + bad)}: "
                               f"{text.iloc[bad]!r}; write times as ISO 8601 "
                               "(2024-01-31 23:59:00) or as epoch seconds/milliseconds")
        index = self._localize(pd.DatetimeIndex(parsed), values, first_line)
        return self._checked(index.tz_convert("UTC"), values, first_line)

    def _localize(self, index: pd.DatetimeIndex, raw: pd.Series, first_line: int):
        local = index.tz_localize(self.timezone, ambiguous="NaT", nonexistent="NaT")
        if local.isna().any():
            bad = int(np.argmax(local.isna()))
            raise CatalogImportError(f"Timestamp {raw.iloc[bad]!r} at {self._where(first_line + bad)} does "
                               f"not exist or is ambiguous in {self.timezone} (daylight saving "
                               "change); export the data in UTC or with offsets")
        return local

    def _epoch(self, numbers: pd.Series, raw: pd.Series, first_line: int) -> np.ndarray:
        if numbers.isna().any():
            bad = int(np.argmax(numbers.isna().to_numpy()))
            raise CatalogImportError(f"Unparseable timestamp at {self._where(first_line + bad)}: "
                               f"{raw.iloc[bad]!r}")
        if self.epoch_unit is None:
            magnitude = float(numbers.abs().max())
            self.epoch_unit = ("ns" if magnitude > 1e17 else "us" if magnitude > 1e14
                               else "ms" if magnitude > 1e11 else "s")
        factor = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[self.epoch_unit]
        scaled = numbers.to_numpy(dtype=np.float64) * factor
        outside = (scaled < -(2.0**63)) | (scaled >= 2.0**63)
        if outside.any():
            bad = int(np.argmax(outside))
            raise CatalogImportError(
                f"Timestamp {raw.iloc[bad]!r} at {self._where(first_line + bad)} is outside the "
                f"dates NautilusTrader can hold (1677-09-22 to 2262-04-11) as epoch "
                f"{self.epoch_unit}")
        if self.epoch_unit == "ns":
            return pd.to_numeric(raw, downcast=None).to_numpy(dtype=np.int64)
        return np.round(scaled).astype(np.int64)

    def _checked(self, index: pd.DatetimeIndex, raw: pd.Series, first_line: int) -> np.ndarray:
        if index.isna().any():
            bad = int(np.argmax(index.isna()))
            raise CatalogImportError(f"Unparseable timestamp at {self._where(first_line + bad)}: "
                               f"{raw.iloc[bad]!r}")
        try:
            return index.as_unit("ns").asi8.copy()
        except (OverflowError, ValueError):  # OutOfBoundsDatetime: outside 1677..2262
            years = index.year
            bad = int(np.argmax((years < 1678) | (years > 2261)))
            raise CatalogImportError(
                f"Timestamp {raw.iloc[bad]!r} at {self._where(first_line + bad)} is outside the "
                "dates NautilusTrader can hold (1677-09-22 to 2262-04-11)") from None


def _numbers(values: pd.Series, field_name: str, column: str, first_line: int,
             unit_label: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64)
    else:
        numbers = pd.to_numeric(values.astype("string").str.strip(), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(numbers)
    if bad.any():
        i = int(np.argmax(bad))
        raise CatalogImportError(f"Non-numeric {field_name} at {unit_label} {first_line + i}, column "
                           f"{column!r}: {values.iloc[i]!r}; prices and sizes must be plain "
                           "numbers (no thousands separators or currency signs)")
    return numbers


def _sides(values: pd.Series) -> np.ndarray:
    """Aggressor side codes (1 buyer, 2 seller, 0 none); Binance's is_buyer_maker flips it."""
    text = values.astype("string").str.strip().str.lower()
    if text.isin(["true", "false"]).all():  # is_buyer_maker: maker buys -> seller aggressed
        return np.where(text == "true", 2, 1).astype(np.uint8)
    mapping = {"buy": 1, "b": 1, "buyer": 1, "1": 1, "sell": 2, "s": 2, "seller": 2, "2": 2,
               "-1": 2}
    return text.map(mapping).fillna(0).to_numpy(dtype=np.uint8)


def iter_chunks(source: str, layout: Layout, options: ImportOptions,
                progress: Callable[[int, int | None], None] | None = None) -> Iterator[Chunk]:
    """Stream ``source`` as parsed chunks of at most ``options.chunk_rows`` rows."""
    handle, size = open_source(source)
    counter = _CountingReader(handle)
    unit_label = "line" if layout.format == "csv" else "row"
    parser = _TimestampParser(options.timezone, layout.mapping["timestamp"], unit_label)
    step = bar_step_ns(options.bar_spec) if options.bar_spec else None
    try:
        if layout.format == "parquet":
            try:
                reader = pq.ParquetFile(handle)  # Parquet needs seeks: progress by rows
                total_rows = max(reader.metadata.num_rows, 1)
                batches = (b.to_pandas() for b in reader.iter_batches(
                    batch_size=options.chunk_rows, columns=list(dict.fromkeys(layout.mapping.values()))))
            except Exception as e:
                raise CatalogImportError(f"{source!r} is not a readable Parquet file ({e})") from e
            first_line = 1
        else:
            raw = io.BufferedReader(counter, 1 << 20)
            stream = gzip.GzipFile(fileobj=raw) if layout.compression else raw
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
            batches = pd.read_csv(
                text, sep=layout.delimiter, header=0 if layout.has_header else None,
                names=None if layout.has_header else list(layout.columns),
                dtype=str,  # no usecols: then a row with extra fields is an error, as it should
                keep_default_na=False, na_filter=False, skip_blank_lines=False,
                chunksize=options.chunk_rows, engine="c")
            first_line = 2 if layout.has_header else 1
        index = 0
        while True:
            try:
                frame = next(batches)
            except StopIteration:
                break
            except pd.errors.ParserError as e:
                raise CatalogImportError(f"{source!r} is malformed: {_parser_message(e)}. Check the "
                                   f"delimiter ({layout.delimiter!r}) and quoting.") from e
            except (OSError, EOFError, UnicodeDecodeError) as e:
                raise CatalogImportError(f"Cannot read {source!r} after {unit_label} "
                                   f"{first_line + index}: {e}") from e
            if frame.empty:
                break
            line = first_line + index
            chunk = _parse_frame(frame, layout, parser, line, unit_label, step)
            index += len(frame)
            if progress is not None:
                done = (counter.count if layout.format == "csv"
                        else int(size * min(index / total_rows, 1.0)))
                progress(done, size)
            yield chunk
        if index == 0:
            raise CatalogImportError(f"{source!r} has a header but no data rows: nothing to import.")
    finally:
        handle.close()


def _parser_message(error: Exception) -> str:
    text = str(error).strip().splitlines()[-1]
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        return (f"line {match.group(2)} has {match.group(3)} fields where the header has "
                f"{match.group(1)}")
    return text


def _parse_frame(frame: pd.DataFrame, layout: Layout, parser: _TimestampParser, first_line: int,
                 unit_label: str, step: int | None) -> Chunk:
    ts_col = layout.mapping["timestamp"]
    used = frame[[c for c in dict.fromkeys(layout.mapping.values())
                  if c != layout.mapping.get("trade_id")]]
    short = (used.isna() | used.astype("string").apply(lambda c: c.str.strip() == "")).any(
        axis=1).to_numpy()
    if short.any():
        i = int(np.argmax(short))
        raise CatalogImportError(f"{unit_label.capitalize()} {first_line + i} has fewer fields than the "
                           f"header ({len(layout.columns)}) or empty values; fix or remove it")
    raw_ts = frame[ts_col]
    if raw_ts.dtype == object or pd.api.types.is_string_dtype(raw_ts.dtype):
        empty = (raw_ts.astype("string").fillna("").str.strip() == "").to_numpy()
        if empty.any():
            i = int(np.argmax(empty))
            raise CatalogImportError(f"{unit_label.capitalize()} {first_line + i} has no timestamp "
                               f"(column {ts_col!r} is empty); remove blank or short lines")
    ts = parser.parse(raw_ts.reset_index(drop=True), first_line)
    if layout.data_type == "bars" and layout.timestamps_mark == "open":
        if step is None:
            raise ValidationError("Bars stamped at their open need a time bar spec "
                                  "(e.g. --bar-spec 1-MINUTE-LAST) to find their close")
        ts = ts + step
    values: dict[str, np.ndarray] = {}
    text: dict[str, pd.Series] = {}
    for field_name, column in layout.mapping.items():
        if field_name == "timestamp":
            continue
        series = frame[column].reset_index(drop=True)
        if field_name == "aggressor_side":
            values[field_name] = _sides(series)
        elif field_name == "trade_id":
            values[field_name] = series.astype("string").fillna("").to_numpy(dtype=object)
        else:
            values[field_name] = _numbers(series, field_name, column, first_line, unit_label)
            if not pd.api.types.is_numeric_dtype(series.dtype):
                text[field_name] = series
    return Chunk(first_line, ts, values, text)


def decimals(text: pd.Series) -> int:
    """Most decimals the numbers of a text column need, read from their values in any notation
    ("1.10775" -> 5, "46319.0" -> 0, "1.10780e+00" -> 4, "1e-3" -> 3, "4.6e4" -> 0)."""
    cleaned = text.astype("string").str.strip().str.lower()
    match = cleaned.str.extract(r"^[-+]?\d*(?:\.(\d*))?(?:e([-+]?\d+))?$")
    fraction = match[0].fillna("").str.rstrip("0").str.len().to_numpy(dtype=np.int64)
    exponent = pd.to_numeric(match[1], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    needed = np.maximum(fraction - exponent, 0)
    return int(needed.max()) if needed.size else 0


def precision_of(values: np.ndarray) -> int:
    """Decimals needed to write float ``values`` exactly (up to MAX_PRECISION)."""
    sample = values[: 10_000]
    for p in range(MAX_PRECISION + 1):
        if np.allclose(np.round(sample, p), sample, rtol=0, atol=10.0 ** -(p + 3)):
            return p
    return MAX_PRECISION


def infer_bar_spec(ts: np.ndarray, price_type: str = "LAST") -> str:
    """A time bar spec from the most common spacing of the first timestamps."""
    diffs = np.diff(sorted_unique(ts[:5000]))
    if diffs.size == 0:
        raise ValidationError("Cannot infer the bar interval from a single row; pass --bar-spec "
                              "(e.g. 1-MINUTE-LAST)")
    step = int(pd.Series(diffs).mode().iloc[0])
    for unit, ns in (("DAY", 86400 * 10**9), ("HOUR", 3600 * 10**9), ("MINUTE", 60 * 10**9),
                     ("SECOND", 10**9)):
        if step % ns == 0:
            return f"{step // ns}-{unit}-{price_type}"
    raise ValidationError(f"Bars {step / 1e9:g} s apart fit no time unit; pass --bar-spec")

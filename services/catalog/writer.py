"""Changes to the catalog: import files, convert series, delete ranges. Atomic and audited.

Every change is built aside first, in a staging folder inside the catalog root, then journalled
and renamed into place (``services.catalog.journal``): a change that fails leaves the catalog
exactly as it was, and one interrupted by a crash is completed or undone by the next start
(or ``nautilus-workbench doctor --fix``). Each change is written to the audit log (who, what,
outcome).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from services.catalog.calendars import default_calendar_name, get_calendar
from services.catalog.importer import (
    MAX_PRECISION,
    PREVIEW_ROWS,
    CatalogImportError,
    Chunk,
    ImportOptions,
    InstrumentSpec,
    Layout,
    build_instrument,
    decimals,
    detect_layout,
    infer_bar_spec,
    instrument_spec,
    iter_chunks,
    precision_of,
    validate_bar_spec,
    validate_instrument_id,
    validate_options,
)
from services.catalog.inventory import SERIES_COLUMNS, CatalogService, InstrumentInfo
from services.catalog.journal import CatalogChange, find_leftovers, write_lock
from services.catalog.quality import (
    PRICE_COLUMNS,
    SIZE_COLUMNS,
    QualityReport,
    bar_step_ns,
    check_frame,
    find_bar_gaps,
    find_tick_gaps,
    merge_reports,
    sorted_unique,
)
from services.catalog.sources import SourcePolicy
from services.errors import CatalogError, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.timestamps import parse_range

LEVEL_CHANGE_FACTOR = 10.0  # new rows this many times above/below the stored level need a yes
_CLASS_OF_TYPE = {"fx": "CurrencyPair", "crypto-spot": "CurrencyPair",
                  "crypto-perp": "CryptoPerpetual", "equity": "Equity", "future": "FuturesContract"}


@dataclass(frozen=True)
class ImportPreview:
    """What an import would do, before anything is written."""

    source: str
    layout: Layout
    options: ImportOptions  # with detected bar spec / data type / precisions filled in
    series_key: str
    data_type: str
    rows: pd.DataFrame  # the first rows as parsed (UTC timestamps, numbers)
    instrument: InstrumentInfo | None  # the catalog's, when it exists
    new_instrument: InstrumentSpec | None  # what will be created otherwise
    file_bytes: int | None
    calendar: str
    quality: QualityReport  # of the previewed rows only

    def summary(self) -> str:
        what = (f"instrument {self.instrument.instrument_id} (in the catalog)" if self.instrument
                else f"new {self.new_instrument.instrument_type} instrument "
                     f"{self.new_instrument.instrument_id} (price precision "
                     f"{self.new_instrument.price_precision}, size precision "
                     f"{self.new_instrument.size_precision})")
        return f"{self.series_key} ({self.data_type}) into {what}; layout {self.layout.describe()}"


@dataclass(frozen=True)
class ImportResult:
    series_key: str
    data_type: str
    rows: int
    files: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    instrument_created: bool
    quality: QualityReport
    dry_run: bool
    seconds: float
    layout: str = ""

    def to_dict(self) -> dict:
        return {"series": self.series_key, "data_type": self.data_type, "rows": self.rows,
                "files": self.files,
                "first": self.first.isoformat() if self.first is not None else None,
                "last": self.last.isoformat() if self.last is not None else None,
                "instrument_created": self.instrument_created, "dry_run": self.dry_run,
                "seconds": round(self.seconds, 3), "layout": self.layout,
                "quality": self.quality.to_dict()}


@dataclass(frozen=True)
class DeleteResult:
    series_key: str
    rows_deleted: int
    files_removed: int
    files_rewritten: int
    whole_series: bool

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class CatalogWriter:
    """Import, convert and delete over one catalog; every change is atomic and audited."""

    def __init__(self, catalog: CatalogService, authorizer: Authorizer | None = None,
                 sources: SourcePolicy | None = None, protected: tuple[str, ...] = ()) -> None:
        self.catalog = catalog
        self.sources = sources
        # Folders no export may write into (the state folder: database, run folders).
        self._protected = tuple(os.path.realpath(p) for p in protected)
        # Without an authoriser (benchmarks, tests of the catalog alone) the writer acts for the
        # local operator and keeps no audit trail.
        self._auth = authorizer or Authorizer(None, Principal.local())

    # -- changes and audit ------------------------------------------------------------------
    @staticmethod
    def _staging_catalog(change: CatalogChange):
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        return ParquetDataCatalog(change.path, fs_protocol=change.catalog.protocol)

    def _refuse_leftovers(self) -> None:
        """A change interrupted earlier must be finished first: its series may be half moved."""
        leftovers = find_leftovers(self.catalog)
        if leftovers:
            first = leftovers[0]
            what = (f"an interrupted {first.operation} of {first.target}" if first.operation
                    else "an unfinished change")
            raise CatalogError(
                f"The catalog holds {what} ({first.path}); run 'nautilus-workbench doctor "
                "--fix' (or restart the server) to recover it, then retry.")

    def _install_moves(self, change: CatalogChange) -> list[tuple[str, str]]:
        """Renames that put staged series folders (``data/<kind>/<ident>``) into the catalog:
        a whole folder when the series is new, else its files one by one."""
        fs = self.catalog.fs
        base = f"{change.path}/data"
        leaves = ([ident for kind in fs.ls(base, detail=False)
                   for ident in fs.ls(kind, detail=False)] if fs.exists(base) else [])
        moves = []
        for src in sorted(leaves):
            dst = f"{self.catalog.root}/{src[len(change.path) + 1:]}"
            if not fs.exists(dst):
                moves.append((src, dst))
                continue
            for path in sorted(fs.ls(src, detail=False)):
                moves.append((path, f"{dst}/{path.rsplit('/', 1)[-1]}"))
        return moves

    def _audit(self, actor: Principal, action: str, target: str, outcome: str,
               detail: str) -> None:
        if self._auth.audit is not None:
            self._auth.audit.record(actor, action, target, outcome, detail)

    def _fail(self, actor: Principal, action: str, target: str, error: Exception):
        self._audit(actor, action, target, "failed", str(error)[:2000])

    # -- import -----------------------------------------------------------------------------
    def preview_import(self, source: str, options: ImportOptions, *,
                       principal: Principal | None = None) -> ImportPreview:
        """Detect the layout, parse the first rows, resolve instrument, series and precisions."""
        source = self._readable(source, self._auth.require(principal, "catalog.import",
                                                            f"{options.instrument_id} <- {source}"))
        validate_instrument_id(options.instrument_id)
        validate_options(options)
        if options.bar_spec and options.data_type not in (None, "bars"):
            raise ValidationError("Give either a bar spec (bars) or a data type quotes/trades, "
                                  "not both")
        if options.data_type not in (None, "bars", "quotes", "trades"):
            raise ValidationError(f"Data type {options.data_type!r} is not bars, quotes or trades")
        if options.bar_spec:
            options = replace(options, bar_spec=validate_bar_spec(options.bar_spec))
        layout = detect_layout(source, options)
        head_options = replace(options, chunk_rows=max(PREVIEW_ROWS, 2000))
        # Infer the interval from raw timestamps before shifting open-stamped bars.
        probe_layout = replace(layout, timestamps_mark="close")
        first = next(iter_chunks(source, probe_layout, head_options))
        if layout.data_type == "bars" and not options.bar_spec:
            options = replace(options, bar_spec=infer_bar_spec(first.ts))
        elif layout.data_type == "bars":
            _refuse_spacing_mismatch(first.ts, options.bar_spec)
        if layout.data_type == "bars" and layout.timestamps_mark == "open":
            first.ts = first.ts + bar_step_ns(options.bar_spec)
        options = replace(options, data_type=layout.data_type)
        existing = {i.instrument_id: i for i in self.catalog.instruments()}
        instrument = existing.get(options.instrument_id)
        new_spec = None
        if instrument is not None:
            options = replace(options, price_precision=instrument.price_precision,
                              size_precision=instrument.size_precision)
            calendar = default_calendar_name(instrument.instrument_class, instrument.venue)
        else:
            price_precision, size_precision = self._precisions(first, layout.data_type, options)
            new_spec = instrument_spec(
                options.instrument_id, options.instrument_type, price_precision, size_precision,
                pd.Timestamp(int(first.ts.min()), tz="UTC"), pd.Timestamp(int(first.ts.max()), tz="UTC"))
            options = replace(options, price_precision=new_spec.price_precision,
                              size_precision=new_spec.size_precision,
                              instrument_type=new_spec.instrument_type)
            calendar = default_calendar_name(_CLASS_OF_TYPE[new_spec.instrument_type],
                                             options.instrument_id.rsplit(".", 1)[1])
        key = self._series_key(options)
        first = _written(first, options)
        if instrument is not None and not options.accept_level_change:
            self._refuse_level_change(first, options)
        rows = pd.DataFrame({"ts_event": pd.to_datetime(first.ts[:PREVIEW_ROWS], unit="ns", utc=True),
                             **{k: v[:PREVIEW_ROWS] for k, v in first.values.items()}})
        quality = self._check_chunk(first, options, key, calendar)
        try:
            size = self.catalog.fs.size(source) if "://" not in str(source) else None
        except (OSError, ValueError):
            size = None
        return ImportPreview(str(source), layout, options, key, layout.data_type, rows, instrument,
                             new_spec, size, calendar, quality)

    @staticmethod
    def _precisions(chunk: Chunk, data_type: str, options: ImportOptions) -> tuple[int, int]:
        price_fields = {"bars": ("open", "high", "low", "close"), "quotes": ("bid_price", "ask_price"),
                        "trades": ("price",)}[data_type]
        size_fields = {"bars": ("volume",), "quotes": ("bid_size", "ask_size"),
                       "trades": ("size",)}[data_type]

        def most(fields) -> int:
            # More than 9 written decimals are float artefacts (380591.00179999997): round them.
            found = [min(decimals(chunk.text[f]), MAX_PRECISION) if f in chunk.text
                     else precision_of(chunk.values[f]) for f in fields if f in chunk.values]
            return max(found) if found else 0

        price = options.price_precision if options.price_precision is not None else most(price_fields)
        size = options.size_precision if options.size_precision is not None else most(size_fields)
        for name, value in (("price", price), ("size", size)):
            if not 0 <= value <= MAX_PRECISION:
                raise ValidationError(f"{name} precision {value} is outside 0..{MAX_PRECISION}")
        return price, size

    @staticmethod
    def _series_key(options: ImportOptions) -> str:
        if options.data_type == "bars":
            return f"{options.instrument_id}-{options.bar_spec}-EXTERNAL"
        return f"{options.instrument_id}:{options.data_type}"

    def _check_chunk(self, chunk: Chunk, options: ImportOptions, key: str,
                     calendar: str) -> QualityReport:
        frame = pd.DataFrame({"ts_event": chunk.ts, **{
            k: v for k, v in chunk.values.items() if k not in ("trade_id", "aggressor_side")}})
        step = bar_step_ns(options.bar_spec) if options.data_type == "bars" else None
        return check_frame(frame, options.data_type, series=key, calendar=get_calendar(calendar),
                           step_ns=step, interval=options.bar_spec if step else None)

    def import_file(self, source: str, options: ImportOptions, *,
                    principal: Principal | None = None, calendar: str | None = None,
                    dry_run: bool = False,
                    progress: Callable[[int, int | None], None] | None = None) -> ImportResult:
        """Import ``source`` as one series; checks run on every row before anything is moved in.

        Raises CatalogImportError/ValidationError/CatalogError with the line and column at fault; the
        catalog is then unchanged.
        """
        actor = self._auth.require(principal, "catalog.import", f"{options.instrument_id} <- {source}")
        source = self._readable(source, actor)
        started = time.perf_counter()
        with write_lock(self.catalog):
            try:
                if not dry_run:
                    self._refuse_leftovers()
                preview = self.preview_import(source, options, principal=actor)
                chosen_calendar = calendar or preview.calendar
                get_calendar(chosen_calendar)
                result = self._import(preview, chosen_calendar, dry_run, progress, started)
            except (CatalogError, ValidationError) as e:
                if not dry_run:
                    self._fail(actor, "catalog.import", f"{options.instrument_id} <- {source}", e)
                raise
        if not dry_run:
            self._audit(actor, "catalog.import", result.series_key, "ok",
                        f"{result.rows} rows {result.first} .. {result.last} from {source}"
                        + ("; instrument created" if result.instrument_created else ""))
            if self.sources is not None:
                self.sources.discard_upload(source)
        return result

    def store_upload(self, filename: str, data: bytes, *,
                     principal: Principal | None = None) -> str:
        """Keep a browser upload on the server for its import; returns its path."""
        self._auth.require(principal, "catalog.import", f"upload {filename}")
        if self.sources is None:
            raise CatalogError("This workbench keeps no uploads (no state folder).")
        return str(self.sources.store_upload(filename, data))

    def _readable(self, source: str, actor: Principal) -> str:
        """The source as the server may read it for ``actor`` (signed-in users are confined
        to uploads and the import roots)."""
        return source if self.sources is None else self.sources.check(source, actor)

    def _import(self, preview: ImportPreview, calendar: str, dry_run: bool, progress,
                started: float) -> ImportResult:
        options, layout, key = preview.options, preview.layout, preview.series_key
        change = CatalogChange(self.catalog, "catalog.import", key)
        try:
            staged = self._staging_catalog(change)
            instrument_obj = None
            if preview.new_instrument is not None:
                instrument_obj = build_instrument(preview.new_instrument, preview.rows["ts_event"].iloc[0])
            reports, boundary_gaps, rows, files = [], [], 0, 0
            last_ts, last_line = None, 0
            cal = get_calendar(calendar)
            step = bar_step_ns(options.bar_spec) if options.data_type == "bars" else None
            for raw in iter_chunks(preview.source, layout, options, progress):
                chunk = _written(raw, options)  # the checks see exactly what is stored
                reports.append(self._check_chunk(chunk, options, key, calendar))
                order = np.argsort(chunk.ts, kind="stable")
                ts_sorted = chunk.ts[order]
                if last_ts is not None and ts_sorted[0] <= last_ts:
                    raise CatalogImportError(
                        f"Rows from line {chunk.first_line} on go back in time "
                        f"({pd.Timestamp(int(ts_sorted[0]), tz='UTC')} after "
                        f"{pd.Timestamp(int(last_ts), tz='UTC')} before line {last_line}): sort the "
                        "file by time (and remove duplicate rows) before importing")
                if last_ts is not None:
                    pair = np.array([last_ts, ts_sorted[0]])
                    boundary_gaps += (find_bar_gaps(pair, step, cal) if step
                                      else find_tick_gaps(pair, cal))
                objects = self._to_nautilus(chunk, order, options, key)
                try:
                    staged.write_data(objects)
                    change.sync_soon()
                except ValueError as e:
                    raise CatalogImportError(f"Cannot write the rows from line {chunk.first_line}: {e}") from e
                rows += len(objects)
                files += 1
                last_ts, last_line = int(ts_sorted[-1]), chunk.first_line + len(chunk.ts)
            quality = merge_reports(reports, boundary_gaps)
            self._refuse_overlap(key, options.data_type, quality)
            if not dry_run:
                if instrument_obj is not None:
                    staged.write_data([instrument_obj])
                change.commit(self._install_moves(change))
        except OSError as e:  # disk full, permissions, a network filesystem going away
            raise CatalogError(f"Writing {key} failed: {e.strerror or e}; the catalog is "
                               "unchanged. Check free space and permissions, then retry.") from e
        finally:
            change.discard()
        return ImportResult(key, options.data_type, rows, files, quality.first, quality.last,
                            preview.new_instrument is not None, quality, dry_run,
                            time.perf_counter() - started, layout.name)

    def _refuse_level_change(self, chunk: Chunk, options: ImportOptions) -> None:
        """Rows of another market appended to a series (BTC at 46,000 onto a future at 1.1)
        would pass every per-row check: compare price levels with what the instrument holds."""
        field_name = {"bars": "close", "quotes": "bid_price", "trades": "price"}[options.data_type]
        if field_name not in chunk.values or not chunk.ts.size:
            return
        new_level = float(np.median(np.abs(chunk.values[field_name])))
        for info in self.catalog.series():
            if info.instrument_id != options.instrument_id or info.data_type not in SERIES_COLUMNS:
                continue
            column = {"bars": "close", "quotes": "bid_price", "trades": "price"}[info.data_type]
            stored = self.catalog.read_series(info.key, info.last - pd.Timedelta(days=7),
                                              info.last, columns=[column], sort=False)[column]
            if stored.empty:
                continue
            old_level = float(np.median(np.abs(stored.to_numpy())))
            ratio = (new_level / old_level) if old_level else float("inf")
            if not 1 / LEVEL_CHANGE_FACTOR <= ratio <= LEVEL_CHANGE_FACTOR:
                raise ValidationError(
                    f"The new rows' prices (median {new_level:,.6g}) are {ratio:,.3g} times those "
                    f"{options.instrument_id} already holds in {info.key} (median "
                    f"{old_level:,.6g} in its last week): is this file another instrument's? "
                    "Import it under its own instrument id, or confirm the change of level "
                    "(--accept-level-change; in the import wizard, tick \"The prices are right\").")
            return

    def _refuse_overlap(self, key: str, data_type: str, quality: QualityReport) -> None:
        """The same rows imported twice (or any overlap) would corrupt the series: refuse."""
        existing = [s for s in self.catalog.series() if s.key == key]
        if not existing or quality.first is None:
            return
        overlapping = self.catalog.series_files(key, quality.first, quality.last)
        if overlapping:
            s = existing[0]
            raise CatalogError(
                f"{key} already holds data from {s.first} to {s.last}, overlapping this file "
                f"({quality.first} to {quality.last}); was it imported before? Delete that range "
                f"first (catalog delete {key} --start {quality.first.isoformat()} --end "
                f"{quality.last.isoformat()} --yes) or import only newer rows.")

    @staticmethod
    def _to_nautilus(chunk: Chunk, order: np.ndarray, options: ImportOptions, key: str) -> list:
        """NautilusTrader objects for a chunk, after refusing what they cannot represent."""
        from nautilus_trader.model.data import Bar, BarType, QuoteTick, TradeTick
        from nautilus_trader.model.identifiers import InstrumentId

        pp, sp = options.price_precision, options.size_precision
        v = {k: (a[order] if isinstance(a, np.ndarray) else a) for k, a in chunk.values.items()}
        lines = chunk.first_line + order
        ts = np.ascontiguousarray(chunk.ts[order].astype(np.uint64))

        def refuse(mask: np.ndarray, what: str) -> None:
            if mask.any():
                i = int(np.argmax(mask))
                raise CatalogImportError(f"Line {int(lines[i])}: {what} ({int(mask.sum())} such rows from "
                                   f"line {chunk.first_line}); fix or remove them and import again")

        if ts.size and (chunk.ts < 0).any():
            refuse(chunk.ts[order] < 0, "timestamp before 1970")

        def col(name: str, default: float | None = None) -> np.ndarray:
            if name in v:
                return np.array(v[name], dtype=np.float64, copy=True)
            return np.full(ts.size, default, dtype=np.float64)

        if options.data_type == "bars":
            o, h, lo, c = (np.round(col(n), pp) for n in ("open", "high", "low", "close"))
            volume = np.round(col("volume", 0.0), sp)
            refuse(h < np.maximum.reduce([o, c, lo]), "high is below open, low or close")
            refuse(lo > np.minimum(o, c), "low is above open or close")
            refuse(volume < 0, "negative volume")
            return Bar.from_raw_arrays_to_list(BarType.from_str(key), pp, sp, o, h, lo, c, volume,
                                               ts, ts.copy())
        iid = InstrumentId.from_str(options.instrument_id)
        if options.data_type == "quotes":
            bid, ask = np.round(col("bid_price"), pp), np.round(col("ask_price"), pp)
            bid_size, ask_size = np.round(col("bid_size", 1.0), sp), np.round(col("ask_size", 1.0), sp)
            refuse((bid_size < 0) | (ask_size < 0), "negative quote size")
            return QuoteTick.from_raw_arrays_to_list(iid, pp, sp, bid, ask, bid_size, ask_size,
                                                     ts, ts.copy())
        price, size = np.round(col("price"), pp), np.round(col("size"), sp)
        refuse(size <= 0, f"trade size is zero or negative at size precision {sp}")
        sides = (np.ascontiguousarray(v["aggressor_side"], dtype=np.uint8)
                 if "aggressor_side" in v else np.zeros(ts.size, dtype=np.uint8))
        ids = [str(x)[:36] if str(x) else str(int(n)) for x, n in zip(
            v.get("trade_id", [""] * ts.size), lines, strict=True)]
        return TradeTick.from_raw_arrays_to_list(iid, pp, sp, price, size, sides, ids, ts, ts.copy())

    # -- conversion -------------------------------------------------------------------------
    def convert(self, source_key: str, bar_spec: str, *, principal: Principal | None = None,
                start=None, end=None) -> ImportResult:
        """Aggregate ticks (quotes or trades) into bars, or bars into a larger interval."""
        actor = self._auth.require(principal, "catalog.convert", f"{source_key} -> {bar_spec}")
        started = time.perf_counter()
        spec = validate_bar_spec(bar_spec)
        step = bar_step_ns(spec)
        if step is None:
            raise ValidationError(f"Conversion makes time bars; {spec} is not a time bar spec")
        info = self.catalog.find_series(source_key)
        instrument = self.catalog.instrument(info.instrument_id)
        price_type = spec.rsplit("-", 1)[1]
        rule = pd.Timedelta(step, unit="ns")
        if info.data_type == "bars":
            source_spec = self.catalog.bar_spec(source_key)
            source_step = bar_step_ns(source_spec)
            if not source_step or step <= source_step or step % source_step:
                raise ValidationError(f"{spec} is not a whole multiple of {source_spec}; bars "
                                      "convert only to a larger interval that is")
            if source_spec.rsplit("-", 1)[1] != price_type:
                raise ValidationError(f"{source_key} holds {source_spec.rsplit('-', 1)[1]} bars; "
                                      f"they cannot become {price_type} bars")
            bars = self.catalog.read_series(source_key, start, end)
            resampled = bars.resample(rule, label="right", closed="right")
            ohlc = pd.DataFrame({"open": resampled["open"].first(), "high": resampled["high"].max(),
                                 "low": resampled["low"].min(), "close": resampled["close"].last(),
                                 "volume": resampled["volume"].sum()}).dropna()
        elif info.data_type in ("quotes", "trades"):
            frame = self.catalog.read_series(source_key, start, end)
            if info.data_type == "quotes":
                price = {"BID": frame["bid_price"], "ASK": frame["ask_price"],
                         "MID": (frame["bid_price"] + frame["ask_price"]) / 2}.get(price_type)
                if price is None:
                    raise ValidationError("Quotes convert to BID, ASK or MID bars, not LAST")
                volume = pd.Series(0.0, index=frame.index)
            else:
                if price_type != "LAST":
                    raise ValidationError("Trades convert to LAST bars")
                price, volume = frame["price"], frame["size"]
            grouped = price.resample(rule, label="right", closed="right")
            ohlc = grouped.ohlc()
            ohlc["volume"] = volume.resample(rule, label="right", closed="right").sum()
            ohlc = ohlc.dropna()
        else:
            raise ValidationError(f"Cannot convert {info.data_type}")
        if ohlc.empty:
            raise CatalogError(f"{source_key} has no data to convert in that range")
        key = f"{instrument.instrument_id}-{spec}-EXTERNAL"
        options = ImportOptions(instrument_id=instrument.instrument_id, bar_spec=spec,
                                data_type="bars", price_precision=instrument.price_precision,
                                size_precision=instrument.size_precision)
        chunk = _written(Chunk(1, ohlc.index.as_unit("ns").asi8.copy(),
                               {c: ohlc[c].to_numpy(dtype=np.float64) for c in ohlc.columns}, {}),
                         options)
        calendar = default_calendar_name(instrument.instrument_class, instrument.venue)
        with write_lock(self.catalog):
            self._refuse_leftovers()
            change = CatalogChange(self.catalog, "catalog.convert", key)
            try:
                quality = self._check_chunk(chunk, options, key, calendar)
                self._refuse_overlap(key, "bars", quality)
                objects = self._to_nautilus(chunk, np.arange(chunk.ts.size), options, key)
                self._staging_catalog(change).write_data(objects)
                change.commit(self._install_moves(change))
            except (CatalogError, ValidationError) as e:
                self._fail(actor, "catalog.convert", key, e)
                raise
            except OSError as e:
                self._fail(actor, "catalog.convert", key, e)
                raise CatalogError(f"Writing {key} failed: {e.strerror or e}; the catalog is "
                                   "unchanged. Check free space and permissions, then "
                                   "retry.") from e
            finally:
                change.discard()
        self._audit(actor, "catalog.convert", key, "ok", f"{len(objects)} bars from {source_key}")
        return ImportResult(key, "bars", len(objects), 1, quality.first, quality.last, False,
                            quality, False, time.perf_counter() - started, "conversion")

    # -- export -----------------------------------------------------------------------------
    def export(self, key: str, target, start=None, end=None, fmt: str | None = None, *,
               principal: Principal | None = None) -> int:
        """Write a series (or a range of it) to a CSV/Parquet file or buffer; returns rows."""
        actor = self._auth.require(principal, "catalog.export", key)
        if not hasattr(target, "write"):
            self._refuse_protected_target(target)
        with write_lock(self.catalog):  # a change half made must not be exported
            rows = self.catalog.export(key, target, start=start, end=end, fmt=fmt)
        self._audit(actor, "catalog.export", key, "ok",
                    f"{rows} rows to {target if isinstance(target, str) else 'a download'}")
        return rows

    def _refuse_protected_target(self, target) -> None:
        """An export must never overwrite the catalog's own files or the workbench's state."""
        resolved = os.path.realpath(os.fspath(target))
        folders = ([os.path.realpath(self.catalog.root)] if self.catalog.protocol == "file"
                   else []) + list(self._protected)
        for folder in folders:
            if resolved == folder or resolved.startswith(folder.rstrip("/") + "/"):
                raise ValidationError(
                    f"Export target {os.fspath(target)!r} is inside {folder} (the data catalog or "
                    "the workbench's state folder), where it could overwrite stored data; "
                    "write it somewhere else")

    # -- delete -----------------------------------------------------------------------------
    def delete(self, key: str, start=None, end=None, *, confirm: bool = False,
               principal: Principal | None = None) -> DeleteResult:
        """Delete a series, or its rows with ts_event in [start, end]. Needs ``confirm=True``."""
        actor = self._auth.require(principal, "catalog.delete", key)
        self.catalog.find_series(key)  # an unknown series is an error before anything else
        start, end = parse_range(start, end)
        whole = start is None and end is None
        what = "the whole series" if whole else f"rows from {start or 'the start'} to {end or 'the end'}"
        if not confirm:
            raise ValidationError(f"Deleting {what} of {key} cannot be undone: confirm it "
                                  "(--yes on the command line, the confirmation box in the app)")
        fs = self.catalog.fs
        with write_lock(self.catalog):
            self._refuse_leftovers()
            change = CatalogChange(self.catalog, "catalog.delete", key)
            removed_rows = removed_files = rewritten = 0
            try:
                files = self.catalog.series_files(key, start, end)
                folder = self.catalog.series_folder(key)
                moves: list[tuple[str, str]] = []
                for i, path in enumerate(files):
                    table = pq.read_table(path, filesystem=fs)
                    ts = table.column("ts_event").to_numpy().astype(np.int64)
                    inside = np.ones(ts.size, dtype=bool)
                    if start is not None:
                        inside &= ts >= start.value
                    if end is not None:
                        inside &= ts <= end.value
                    if not inside.any():
                        continue
                    removed_rows += int(inside.sum())
                    # Old files go to the staging folder's trash, so the change can be undone.
                    moves.append((path, f"{change.trash}/{i}-{path.rsplit('/', 1)[-1]}"))
                    if inside.all():
                        removed_files += 1
                        continue
                    kept = table.filter(pa_mask(~inside))
                    ts_init = kept.column("ts_init").to_numpy()
                    name = _file_name(int(ts_init.min()), int(ts_init.max()))
                    staged = f"{change.path}/new-{i}-{name}"  # flat: one folder to sync
                    pq.write_table(kept, staged, filesystem=fs)
                    change.sync_soon()
                    moves.append((staged, f"{folder}/{name}"))
                    rewritten += 1
                change.commit(moves, prune=[folder])
            except (CatalogError, ValidationError, OSError) as e:
                self._fail(actor, "catalog.delete", key, e)
                reason = e.strerror if isinstance(e, OSError) and e.strerror else e
                raise CatalogError(f"Could not delete from {key}: {reason}; the catalog is "
                                   "unchanged") from e
            finally:
                change.discard()
        self._audit(actor, "catalog.delete", key, "ok",
                    f"{what}: {removed_rows} rows, {removed_files} files removed, "
                    f"{rewritten} rewritten")
        return DeleteResult(key, removed_rows, removed_files, rewritten, whole)

def pa_mask(mask: np.ndarray):
    import pyarrow as pa

    return pa.array(mask)


def _file_name(first_ns: int, last_ns: int) -> str:
    def stamp(ns: int) -> str:
        return pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%dT%H-%M-%S-") + f"{ns % 10**9:09d}Z"

    return f"{stamp(first_ns)}_{stamp(last_ns)}.parquet"


def _refuse_spacing_mismatch(ts: np.ndarray, bar_spec: str) -> None:
    """A bar spec the data's spacing contradicts would store bars under a wrong interval."""
    diffs = np.diff(sorted_unique(ts[:5000]))
    if diffs.size < 2:
        return
    values, counts = np.unique(diffs, return_counts=True)
    modal = int(values[np.argmax(counts)])
    share = counts.max() / diffs.size
    step = bar_step_ns(bar_spec)
    detected = infer_bar_spec(ts, bar_spec.rsplit("-", 1)[1]) if modal > 0 else "?"
    if step is None:
        if share >= 0.9:
            raise ValidationError(
                f"Bar spec {bar_spec} is not a time interval, but the rows are evenly spaced "
                f"({_duration(modal)} apart): they are time bars; use "
                f"--bar-spec {detected} (or leave it out to use the spacing)")
        return
    if modal != step:
        raise ValidationError(
            f"Bar spec {bar_spec} says the bars are {_duration(step)} apart, but the rows are "
            f"mostly {_duration(modal)} apart: use --bar-spec "
            f"{detected} (or leave it out to use the spacing), or convert the series after "
            "importing it")


def _duration(ns: int) -> str:
    for unit, size in (("day", 86400 * 10**9), ("hour", 3600 * 10**9), ("minute", 60 * 10**9),
                       ("second", 10**9), ("millisecond", 10**6)):
        if ns >= size and ns % size == 0:
            count = ns // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{ns / 1e9:g} seconds"


def _written(chunk: Chunk, options: ImportOptions) -> Chunk:
    """The chunk as it will be stored: prices and sizes rounded to the instrument's precisions.

    Refuses values NautilusTrader cannot hold (beyond PRICE_MAX/QUANTITY_MAX) and values the
    precision would change by more than 1 % (1.1078 at precision 0, 1e-12 at precision 9), so
    the quality checks, which run on this chunk, see exactly what is written.
    """
    from nautilus_trader.model.objects import PRICE_MAX, QUANTITY_MAX

    prices = set(PRICE_COLUMNS[options.data_type])
    sizes = set(SIZE_COLUMNS[options.data_type])
    values = dict(chunk.values)
    for field_name, raw in chunk.values.items():
        if field_name not in prices and field_name not in sizes:
            continue
        is_price = field_name in prices
        limit = PRICE_MAX if is_price else QUANTITY_MAX
        precision = options.price_precision if is_price else options.size_precision
        too_big = np.abs(raw) > limit
        if too_big.any():
            i = int(np.argmax(too_big))
            raise CatalogImportError(
                f"Line {chunk.first_line + i}: {field_name} {raw[i]:g} is beyond the largest "
                f"{'price' if is_price else 'size'} NautilusTrader can hold ({limit:,.0f}); fix "
                "the value (or its column mapping)")
        rounded = np.round(raw, precision)
        changed = (raw != 0) & (np.abs(rounded - raw) > 0.01 * np.abs(raw))
        if changed.any():
            i = int(np.argmax(changed))
            raise CatalogImportError(
                f"Line {chunk.first_line + i}: {field_name} {float(raw[i])!r} would be stored "
                f"as {float(rounded[i])!r} at the {'price' if is_price else 'size'} precision {precision} "
                f"of {options.instrument_id}; values this small need more decimals than the "
                f"instrument has (at most {MAX_PRECISION}): rescale them or import them under "
                "an instrument with a finer precision")
        values[field_name] = rounded
    return Chunk(chunk.first_line, chunk.ts, values, chunk.text)

"""Changes to the catalog: import files, convert series, delete ranges. Atomic and audited.

Every change is built aside first, in a staging folder inside the catalog root (NautilusTrader
only reads ``data/``, so a staging folder is invisible to it), then moved into place. If
anything fails before or while moving, the moves done so far are undone and the staging folder
is removed: a failed change leaves the catalog exactly as it was. Each change is written to the
audit log (who, what, outcome).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from services.catalog.calendars import default_calendar_name, get_calendar
from services.catalog.inventory import CatalogService, InstrumentInfo, to_utc
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
)
from services.catalog.quality import (
    QualityReport,
    bar_step_ns,
    check_frame,
    find_bar_gaps,
    find_tick_gaps,
    merge_reports,
)
from services.catalog.sources import SourcePolicy
from services.errors import CatalogError, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal

_CLASS_OF_TYPE = {"fx": "CurrencyPair", "crypto-spot": "CurrencyPair",
                  "crypto-perp": "CryptoPerpetual", "equity": "Equity", "future": "FuturesContract"}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(location: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(location, threading.Lock())


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


@dataclass
class _Staging:
    """A staging folder and the moves made from it into the catalog (for undo)."""

    service: CatalogService
    path: str
    moves: list[tuple[str, str]] = field(default_factory=list)  # (from, to), in order
    created: list[str] = field(default_factory=list)  # folders made in the catalog

    def move(self, src: str, dst: str) -> None:
        fs = self.service.fs
        parent = dst.rsplit("/", 1)[0]
        missing = []
        while not fs.exists(parent):
            missing.append(parent)
            parent = parent.rsplit("/", 1)[0]
        for folder in reversed(missing):
            fs.makedirs(folder, exist_ok=True)
            self.created.append(folder)
        fs.mv(src, dst, recursive=True)
        self.moves.append((src, dst))

    def undo(self) -> None:
        fs = self.service.fs
        for src, dst in reversed(self.moves):
            fs.makedirs(src.rsplit("/", 1)[0], exist_ok=True)
            fs.mv(dst, src, recursive=True)
        for folder in reversed(self.created):
            if fs.exists(folder) and not fs.ls(folder):
                fs.rmdir(folder)
        self.moves.clear()

    def remove(self) -> None:
        if self.service.fs.exists(self.path):
            self.service.fs.rm(self.path, recursive=True)


class CatalogWriter:
    """Import, convert and delete over one catalog; every change is atomic and audited."""

    def __init__(self, catalog: CatalogService, authorizer: Authorizer | None = None,
                 sources: SourcePolicy | None = None) -> None:
        self.catalog = catalog
        self.sources = sources
        # Without an authoriser (benchmarks, tests of the catalog alone) the writer acts for the
        # local operator and keeps no audit trail.
        self._auth = authorizer or Authorizer(None, Principal.local())

    # -- staging and audit ------------------------------------------------------------------
    def _staging(self) -> _Staging:
        path = f"{self.catalog.root}/.staging-{uuid.uuid4().hex[:12]}"
        self.catalog.fs.makedirs(path, exist_ok=True)
        return _Staging(self.catalog, path)

    def _staging_catalog(self, staging: _Staging):
        from nautilus_trader.persistence.catalog import ParquetDataCatalog

        return ParquetDataCatalog(staging.path, fs_protocol=self.catalog.protocol)

    def _commit(self, staging: _Staging, leaves: list[str]) -> None:
        """Move staged series folders (``data/<kind>/<ident>``) into the catalog."""
        fs = self.catalog.fs
        for leaf in leaves:
            src = f"{staging.path}/{leaf}"
            dst = f"{self.catalog.root}/{leaf}"
            if not fs.exists(dst):
                staging.move(src, dst)
                continue
            for path in sorted(fs.ls(src, detail=False)):
                name = path.rsplit("/", 1)[-1]
                if fs.exists(f"{dst}/{name}"):
                    raise CatalogError(f"{leaf}/{name} already exists in the catalog")
                staging.move(path, f"{dst}/{name}")

    def _audit(self, actor: Principal, action: str, target: str, outcome: str,
               detail: str) -> None:
        if self._auth.audit is not None:
            self._auth.audit.record(actor, action, target, outcome, detail)

    def _fail(self, actor: Principal, action: str, target: str, error: Exception):
        self._audit(actor, action, target, "failed", str(error)[:2000])

    def _staged_leaves(self, staging: _Staging) -> list[str]:
        fs = self.catalog.fs
        base = f"{staging.path}/data"
        if not fs.exists(base):
            return []
        leaves = []
        for kind in fs.ls(base, detail=False):
            for ident in fs.ls(kind, detail=False):
                leaves.append(ident[len(staging.path) + 1:])
        return leaves

    # -- import -----------------------------------------------------------------------------
    def preview_import(self, source: str, options: ImportOptions, *,
                       principal: Principal | None = None) -> ImportPreview:
        """Detect the layout, parse the first rows, resolve instrument, series and precisions."""
        source = self._readable(source, self._auth.require(principal, "catalog.import",
                                                            f"{options.instrument_id} <- {source}"))
        validate_instrument_id(options.instrument_id)
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
        with _lock_for(self.catalog.location):
            try:
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
        staging = self._staging()
        try:
            staged = self._staging_catalog(staging)
            instrument_obj = None
            if preview.new_instrument is not None:
                instrument_obj = build_instrument(preview.new_instrument, preview.rows["ts_event"].iloc[0])
            reports, boundary_gaps, rows, files = [], [], 0, 0
            last_ts, last_line = None, 0
            cal = get_calendar(calendar)
            step = bar_step_ns(options.bar_spec) if options.data_type == "bars" else None
            for chunk in iter_chunks(preview.source, layout, options, progress):
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
                self._commit(staging, self._staged_leaves(staging))
        except OSError as e:  # disk full, permissions, a network filesystem going away
            staging.undo()
            raise CatalogError(f"Writing {key} failed: {e.strerror or e}; the catalog is "
                               "unchanged. Check free space and permissions, then retry.") from e
        except BaseException:
            staging.undo()
            raise
        finally:
            staging.remove()
        return ImportResult(key, options.data_type, rows, files, quality.first, quality.last,
                            preview.new_instrument is not None, quality, dry_run,
                            time.perf_counter() - started, layout.name)

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
        chunk = Chunk(1, ohlc.index.as_unit("ns").asi8.copy(),
                      {c: ohlc[c].to_numpy(dtype=np.float64) for c in ohlc.columns}, {})
        calendar = default_calendar_name(instrument.instrument_class, instrument.venue)
        with _lock_for(self.catalog.location):
            staging = self._staging()
            try:
                quality = self._check_chunk(chunk, options, key, calendar)
                self._refuse_overlap(key, "bars", quality)
                objects = self._to_nautilus(chunk, np.arange(chunk.ts.size), options, key)
                self._staging_catalog(staging).write_data(objects)
                self._commit(staging, self._staged_leaves(staging))
            except (CatalogError, ValidationError) as e:
                staging.undo()
                self._fail(actor, "catalog.convert", key, e)
                raise
            except BaseException:
                staging.undo()
                raise
            finally:
                staging.remove()
        self._audit(actor, "catalog.convert", key, "ok", f"{len(objects)} bars from {source_key}")
        return ImportResult(key, "bars", len(objects), 1, quality.first, quality.last, False,
                            quality, False, time.perf_counter() - started, "conversion")

    # -- export -----------------------------------------------------------------------------
    def export(self, key: str, target, start=None, end=None, fmt: str | None = None, *,
               principal: Principal | None = None) -> int:
        """Write a series (or a range of it) to a CSV/Parquet file or buffer; returns rows."""
        actor = self._auth.require(principal, "catalog.export", key)
        rows = self.catalog.export(key, target, start=start, end=end, fmt=fmt)
        self._audit(actor, "catalog.export", key, "ok",
                    f"{rows} rows to {target if isinstance(target, str) else 'a download'}")
        return rows

    # -- delete -----------------------------------------------------------------------------
    def delete(self, key: str, start=None, end=None, *, confirm: bool = False,
               principal: Principal | None = None) -> DeleteResult:
        """Delete a series, or its rows with ts_event in [start, end]. Needs ``confirm=True``."""
        actor = self._auth.require(principal, "catalog.delete", key)
        self.catalog.find_series(key)  # an unknown series is an error before anything else
        start, end = to_utc(start, "start"), to_utc(end, "end")
        if start is not None and end is not None and start > end:
            raise ValidationError(f"start {start} is after end {end}")
        whole = start is None and end is None
        what = "the whole series" if whole else f"rows from {start or 'the start'} to {end or 'the end'}"
        if not confirm:
            raise ValidationError(f"Deleting {what} of {key} cannot be undone: confirm it "
                                  "(--yes on the command line, the confirmation box in the app)")
        fs = self.catalog.fs
        with _lock_for(self.catalog.location):
            staging = self._staging()
            removed_rows = removed_files = rewritten = 0
            try:
                files = self.catalog.series_files(key, start, end)
                folder = self.catalog.series_folder(key)
                replacements: list[tuple[str, str | None]] = []
                for path in files:
                    table = pq.read_table(path, filesystem=fs)
                    ts = table.column("ts_event").to_numpy().astype(np.int64)
                    inside = np.ones(ts.size, dtype=bool)
                    if start is not None:
                        inside &= ts >= start.value
                    if end is not None:
                        inside &= ts <= end.value
                    removed_rows += int(inside.sum())
                    if inside.all():
                        replacements.append((path, None))
                    elif inside.any():
                        kept = table.filter(pa_mask(~inside))
                        ts_init = kept.column("ts_init").to_numpy()
                        name = _file_name(int(ts_init.min()), int(ts_init.max()))
                        new_path = f"{staging.path}/new-{len(replacements)}-{name}"
                        pq.write_table(kept, new_path, filesystem=fs)
                        replacements.append((path, new_path))
                trash = f"{staging.path}/trash"
                fs.makedirs(trash, exist_ok=True)
                for i, (path, new_path) in enumerate(replacements):
                    staging.move(path, f"{trash}/{i}-{path.rsplit('/', 1)[-1]}")
                    if new_path is None:
                        removed_files += 1
                    else:
                        staging.move(new_path, f"{path.rsplit('/', 1)[0]}/{_strip_new(new_path)}")
                        rewritten += 1
                if fs.exists(folder) and not fs.ls(folder):
                    fs.rmdir(folder)
            except (CatalogError, ValidationError, OSError) as e:
                staging.undo()
                self._fail(actor, "catalog.delete", key, e)
                raise CatalogError(f"Could not delete from {key}: {e}; the catalog is unchanged") from e
            except BaseException:
                staging.undo()
                raise
            finally:
                staging.remove()
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


def _strip_new(staged_path: str) -> str:
    """``.../new-3-<file name>`` -> ``<file name>``."""
    return staged_path.rsplit("/", 1)[-1].split("-", 2)[2]

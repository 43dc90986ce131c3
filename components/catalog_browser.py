"""Browse, check, import, export and delete the market data of the catalog."""

from __future__ import annotations

import html
import io
import logging
import re

import holoviews as hv
import holoviews.plotting.bokeh  # noqa: F401 (registers the Bokeh backend, also outside notebooks)
import pandas as pd
import panel as pn
import param
from bokeh.models.widgets.tables import NumberFormatter
from panel.viewable import Viewer

from components.formats import plain_ticks
from components.offloop import run_off_loop
from components.permissions import permission, reason_note, restrict
from services import ValidationError, Workbench, WorkbenchError
from services.catalog.calendars import calendar_names
from services.catalog.coverage import IMPORTED, MIXED, SAMPLE
from services.catalog.importer import INSTRUMENT_TYPES, ImportOptions
from services.catalog.inventory import PREVIEW_POINTS
from services.formatting import format_bytes, format_count, numeral_format
from services.identity.principal import Principal
from services.timestamps import inclusive_end

log = logging.getLogger(__name__)

# Browser uploads travel over the websocket in one message; bigger files go through the CLI.
MAX_UPLOAD = "200MB"
AUTO = "auto"
ACCENT = "#0f6e8c"
INVENTORY_COLUMNS = ["Venue", "Instrument", "Series", "Data", "Source", "First (UTC)",
                     "Last (UTC)", "Holes", "Rows", "Files", "Size"]
_EMPTY_PRICES = pd.DataFrame({"ts": pd.Series(dtype="datetime64[ns]"),
                              "price": pd.Series(dtype="float64")})


_TIMELINE_CSS = """
.cov {font-size: 0.85em;} .cov-row {display: flex; align-items: center; margin: 3px 0;}
.cov-label {width: 32%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap;
  padding-right: 8px;}
.cov-track {position: relative; flex: 1; height: 14px; background: rgba(15,110,140,0.06);
  border-radius: 3px;}
.cov-bar {position: absolute; top: 0; bottom: 0; background: #0f6e8c; border-radius: 2px;
  min-width: 2px;}
.cov-bar.sample {background: repeating-linear-gradient(135deg, #7f9aa8 0 4px, #a9bcc6 4px 8px);}
.cov-bar.mixed {background: repeating-linear-gradient(135deg, #0f6e8c 0 4px, #7f9aa8 4px 8px);}
.cov-hole {position: absolute; top: 3px; bottom: 3px; min-width: 2px;
  background: repeating-linear-gradient(90deg, #c0392b 0 2px, transparent 2px 6px);}
.cov-axis {display: flex; justify-content: space-between; margin-left: 32%; opacity: 0.7;}
.cov-legend {margin: 6px 0 0 32%; opacity: 0.85;} .cov-legend span {margin-right: 14px;}
.cov-legend i {display: inline-block; width: 18px; height: 10px; margin-right: 4px;
  vertical-align: middle; position: relative; top: auto; bottom: auto;}
"""
_ORIGIN_CLASS = {SAMPLE: "sample", MIXED: "mixed", IMPORTED: ""}


def _place(first: pd.Timestamp, last: pd.Timestamp, lo: int, span: int) -> str:
    left = 100 * (first.value - lo) / span
    return f"left:{left:.3f}%;width:{100 * (last.value - first.value) / span:.3f}%"


def coverage_html(coverages) -> str:
    """Coverage timeline (UTC): per series one bar per segment of data, its holes marked in
    between; synthetic sample segments hatched grey, imported ones solid."""
    present = [c for c in coverages if c.segments]
    if not present:
        return ""
    lo = min(c.segments[0].first for c in present).value
    hi = max(c.segments[-1].last for c in present).value
    span = max(hi - lo, 1)
    rows = []
    for c in present:
        marks = []
        for h in c.holes:
            tip = html.escape(f"{c.key}: no data {h.describe()}")
            marks.append(f'<div class="cov-hole" title="{tip}" '
                         f'style="{_place(h.after, h.until, lo, span)}"></div>')
        for s in c.segments:
            tip = html.escape(f"{c.key}: {s.first:%Y-%m-%d %H:%M} to {s.last:%Y-%m-%d %H:%M} UTC, "
                              f"{format_count(s.rows)} rows, {s.origin}")
            marks.append(f'<div class="cov-bar {_ORIGIN_CLASS[s.origin]}" title="{tip}" '
                         f'style="{_place(s.first, s.last, lo, span)}"></div>')
        label = html.escape(f"{c.key}: {c.summary()}, {c.origin}")
        rows.append(f'<div class="cov-row"><div class="cov-label" title="{label}">'
                    f'{html.escape(c.key)}</div><div class="cov-track">{"".join(marks)}</div></div>')
    first, last = pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC")
    axis = f'<div class="cov-axis"><span>{first:%Y-%m-%d}</span><span>{last:%Y-%m-%d}</span></div>'
    legend = ('<div class="cov-legend"><span><i class="cov-bar"></i>imported</span>'
              '<span><i class="cov-bar sample"></i>synthetic sample</span>'
              '<span><i class="cov-hole"></i>hole: market open, no data</span></div>')
    return f'<div class="cov">{"".join(rows)}{axis}{legend}</div>'


def segments_markdown(coverage) -> str:
    """The segments and holes of one series, one line each."""
    lines = [f"**{coverage.key}** ({coverage.origin}, holes against the **{coverage.calendar}** "
             f"calendar): {coverage.summary()}"]
    for i, s in enumerate(coverage.segments):
        lines.append(f"- {s.first:%Y-%m-%d %H:%M} to {s.last:%Y-%m-%d %H:%M} UTC: "
                     f"{format_count(s.rows)} rows, {s.origin}")
        if i < len(coverage.holes):
            lines.append(f"- *hole*: no data {coverage.holes[i].describe()}")
    return "\n".join(lines)


def _price_chart(data: pd.DataFrame):
    return hv.Curve(data, "ts", "price").opts(
        responsive=True, height=300, color=ACCENT, xlabel="", ylabel="price", tools=["hover"],
        framewise=True, yformatter=plain_ticks())


def _reason(error: Exception) -> str:
    """What to tell the user about a failed action: our message, never an internal one."""
    if isinstance(error, WorkbenchError):
        return str(error)
    log.error("catalog action failed", exc_info=error)
    return ("The action failed unexpectedly; the catalog is unchanged. The details are in the "
            "server log.")


def _button(parameter, **kw):
    # No hover tooltip: it would cover the neighbouring buttons of a row.
    return pn.widgets.Button.from_param(parameter, description=None, **kw)


def synthetic_share(coverages) -> str:
    """Which series hold synthetic sample data, in words ("every series", "2 of 3 series and
    part of 1 more"); "" when none does."""
    whole = sum(c.origin == SAMPLE for c in coverages)
    part = sum(c.origin == MIXED for c in coverages)
    if whole == len(coverages) and whole:
        return "every series"
    words = [f"{whole} of {len(coverages)} series" if whole else "",
             (f"part of {part} more" if whole else f"part of {part} of {len(coverages)} series")
             if part else ""]
    return " and ".join(w for w in words if w)

class CatalogBrowser(Viewer):
    """Inventory (venue -> instrument -> data type), coverage, quality, preview, import, export."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the catalog is read through and changed with.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    series = param.Selector(default=None, objects=[], doc="""
        The stored series the preview, quality check, export and delete apply to.""")

    calendar = param.Selector(default=AUTO, objects=[AUTO, *calendar_names()], doc="""
        Trading calendar of the gap check; 'auto' picks one by instrument class.""")

    start = param.String(default="", doc="""
        First day or instant of the range (ISO, UTC), e.g. 2024-01-01 or 2024-01-01T09:30;
        blank: the first row.""")

    end = param.String(default="", doc="""
        Last day of the range, inclusive, as the Backtest page's End: 2024-01-31 reads through
        the end of that day (its last bar closes at midnight); 2024-01-31T12:00 stops at 12:00
        (UTC). Blank: the last row.""")

    refresh = param.Event(label="Refresh", doc="Read the inventory again.")

    check = param.Event(label="Run quality check", doc="Check the selected series.")

    confirm_delete = param.Boolean(default=False, label="I understand deleting cannot be undone",
                                   doc="Must be ticked before Delete does anything.")

    delete = param.Event(label="Delete range", doc="Delete the range (or, blank, the series).")

    export_format = param.Selector(default="csv", objects=["csv", "parquet"], doc="Export format.")

    # Import wizard
    source = param.String(default="", label="File path or URL", doc="""
        Server-side path or fsspec URL to import (uploads fill this in).""")

    instrument_id = param.String(default="", label="Instrument id", doc="""
        SYMBOL.VENUE of the data, e.g. BTCUSDT-PERP.BINANCE; an unknown one is created.""")

    instrument_type = param.Selector(default=AUTO, objects=[AUTO, *INSTRUMENT_TYPES], doc="""
        Kind of instrument to create when the id is new.""")

    data_kind = param.Selector(default=AUTO, objects=[AUTO, "bars", "quotes", "trades"],
                               label="Data", doc="What the file holds ('auto': from its columns).")

    bar_spec = param.String(default="", label="Bar spec", doc="""
        e.g. 1-MINUTE-LAST; blank: from the spacing of the timestamps.""")

    timezone = param.String(default="UTC", label="Time zone", doc="""
        Time zone of timestamps written without an offset.""")

    timestamps_mark = param.Selector(default=AUTO, objects=[AUTO, "close", "open"],
                                     label="Bar timestamps mark", doc="""
        Whether a bar's timestamp is its open or its close ('auto': close, Binance klines open).""")

    accept_level_change = param.Boolean(default=False, label="The prices are right even if far "
                                        "(10x) from what the instrument holds", doc="""
        Confirms rows whose price level differs from the instrument's stored data by an order
        of magnitude (without it, such a file is refused as probably another market's).""")

    preview_import = param.Event(label="Preview", doc="Parse the first rows and propose the import.")

    check_import = param.Event(label="Check whole file", doc="Run every check, write nothing.")

    run_import = param.Event(label="Import", doc="Check and write the file into the catalog.")

    message = param.String(default="", doc="Last outcome shown to the user (markdown).")

    message_kind = param.Selector(default="info", objects=["info", "success", "warning", "danger"])

    import_message = param.String(default="", doc="Outcome of the import wizard (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("CatalogBrowser needs a workbench (services.Workbench.open()).")
        self._inventory = pd.DataFrame()
        self._report = None
        self._alert = pn.pane.Alert(self.param.message, alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        self._coverages = {}
        self._note = ""  # what the inventory says about itself (empty, synthetic data)
        # Venue and instrument head each group, so their columns stay hidden: the key columns
        # (series to rows) fit a 1440 px screen; files and size are a scroll away.
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(columns=INVENTORY_COLUMNS), show_index=False, disabled=True,
            selectable=1, groupby=["Venue", "Instrument"], hidden_columns=["Venue", "Instrument"],
            formatters={"Rows": NumberFormatter(format=numeral_format(0))},
            text_align={"Rows": "right", "Files": "right", "Size": "right"},
            header_tooltips={"Source": "synthetic sample: generated by the workbench, not "
                                       "market data; imported: data brought into the catalog",
                             "Holes": "market-open stretches of more than 4 hours without data "
                                      "(closed hours, weekends and holidays do not count)"},
            sizing_mode="stretch_width", max_height=320,
            name="Inventory")
        self._table.on_click(self._on_row_click)
        self._instruments = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                                 sizing_mode="stretch_width", height=200)
        # Charts are fed through Pipes: new data updates the plots in place instead of replacing
        # their Bokeh models (replacing them while the browser syncs leaves stale references).
        self._preview_pipe = hv.streams.Pipe(data=_EMPTY_PRICES)
        self._timeline = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[_TIMELINE_CSS])
        self._segments = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._preview = pn.pane.HoloViews(
            hv.DynamicMap(_price_chart, streams=[self._preview_pipe]),
            sizing_mode="stretch_width", height=320)
        self._preview_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._quality_summary = pn.pane.Markdown("Pick a series and run its quality check.",
                                                 sizing_mode="stretch_width")
        self._gaps = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                          sizing_mode="stretch_width", height=220, page_size=50,
                                          pagination="local")
        self._offenders = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                               sizing_mode="stretch_width", height=220)
        self._report_download = pn.widgets.FileDownload(
            callback=self._report_file, filename="quality.csv", label="Download quality report",
            color="light", width=240, visible=False)
        self._export_download = pn.widgets.FileDownload(
            callback=self._export_file, filename="export.csv", label="Export selection",
            color="primary", width=200)
        self._upload = pn.widgets.FileInput(accept=".csv,.gz,.parquet,.txt", name="Upload a file")
        self._upload.param.watch(self._on_upload, "value")
        self._import_alert = pn.pane.Alert(self.param.import_message, alert_type="info",
                                           visible=False, sizing_mode="stretch_width")
        self._import_rows = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                                 sizing_mode="stretch_width", height=260,
                                                 visible=False)
        self._layout = self._build()
        self._load()

    def __panel__(self):
        return self._layout

    # -- layout ---------------------------------------------------------------------------------
    def _build(self):
        may = {action: permission(self.workbench, self.principal, action)
               for action in ("catalog.import", "catalog.export", "catalog.delete")}
        delete_button = _button(self.param.delete, color="danger", width=160)
        import_buttons = [_button(self.param.preview_import, width=120),
                          _button(self.param.check_import, width=160),
                          _button(self.param.run_import, color="primary", width=120)]
        restrict(delete_button, *may["catalog.delete"])
        restrict(self._export_download, *may["catalog.export"])
        for button in import_buttons:
            restrict(button, *may["catalog.import"])
        self._upload.disabled = not may["catalog.import"][0]
        range_row = pn.Row(
            pn.widgets.Select.from_param(self.param.series, sizing_mode="stretch_width"),
            pn.widgets.TextInput.from_param(self.param.start, placeholder="2024-01-01", width=170),
            pn.widgets.TextInput.from_param(self.param.end, placeholder="2024-01-31", width=170),
            _button(self.param.refresh, width=90, align="end"),
            sizing_mode="stretch_width")
        quality = pn.Column(
            pn.Row(pn.widgets.Select.from_param(self.param.calendar, width=180),
                   _button(self.param.check, color="primary",
                                                width=180, align="end"),
                   self._report_download),
            self._quality_summary,
            pn.pane.Markdown("**Gaps** (market-open time without data)"), self._gaps,
            pn.pane.Markdown("**Worst offenders**"), self._offenders,
            sizing_mode="stretch_width")
        export_delete = pn.Column(
            pn.pane.Markdown("Export the selected series over the range above (blank: all of it)."),
            pn.Row(pn.widgets.RadioButtonGroup.from_param(self.param.export_format, width=180),
                   self._export_download),
            reason_note(may["catalog.export"]),
            pn.layout.Divider(),
            pn.pane.Markdown("Delete the range above from the selected series (blank start and "
                             "end: the whole series). Deletions are written to the audit log."),
            pn.Row(pn.widgets.Checkbox.from_param(self.param.confirm_delete), delete_button),
            reason_note(may["catalog.delete"]),
            sizing_mode="stretch_width")
        wizard = pn.Column(
            pn.pane.Markdown("**1. Choose a file** — upload CSV/Parquet (gzip too, up to "
                             f"{MAX_UPLOAD}), or give a path or URL the server can read."),
            pn.Row(self._upload,
                   pn.widgets.TextInput.from_param(self.param.source, sizing_mode="stretch_width")),
            pn.pane.Markdown("**2. Describe it** — anything left on *auto* is detected."),
            pn.Row(pn.widgets.TextInput.from_param(self.param.instrument_id,
                                                   placeholder="BTCUSDT-PERP.BINANCE", width=240),
                   pn.widgets.Select.from_param(self.param.instrument_type, width=140),
                   pn.widgets.Select.from_param(self.param.data_kind, width=110),
                   pn.widgets.TextInput.from_param(self.param.bar_spec, placeholder="1-MINUTE-LAST",
                                                   width=160),
                   pn.widgets.TextInput.from_param(self.param.timezone, width=150),
                   pn.widgets.Select.from_param(self.param.timestamps_mark, width=150)),
            pn.widgets.Checkbox.from_param(self.param.accept_level_change),
            pn.pane.Markdown("**3. Preview and check, then import** — nothing is written until "
                             "Import, and a failed import leaves the catalog as it was."),
            pn.Row(*import_buttons), reason_note(may["catalog.import"]),
            self._import_alert, self._import_rows, sizing_mode="stretch_width")
        return pn.Column(
            self._alert,
            pn.pane.Markdown("### Inventory"), self._table,
            pn.pane.Markdown("### Coverage"), self._timeline, self._segments,
            range_row,
            pn.Tabs(("Price preview", pn.Column(self._preview_note, self._preview,
                                                sizing_mode="stretch_width")),
                    ("Quality", quality), ("Instruments", self._instruments),
                    ("Import", wizard), ("Export / delete", export_delete),
                    sizing_mode="stretch_width", dynamic=False),
            sizing_mode="stretch_width")

    def _show(self, text: str, kind: str = "info") -> None:
        self.message, self.message_kind = text, kind
        self._alert.alert_type = kind
        self._alert.visible = bool(text)

    def _show_import(self, text: str, kind: str = "info") -> None:
        self.import_message = text
        self._import_alert.alert_type = kind
        self._import_alert.visible = bool(text)

    # -- inventory ------------------------------------------------------------------------------
    def _load(self, select: str | None = None) -> None:
        """Read the inventory (series, instruments, coverage) off the event loop, then show it."""
        catalog = self.workbench.catalog
        run_off_loop(lambda: (catalog.series(), catalog.instruments(), catalog.coverages()),
                     lambda outcome: self._loaded(outcome, select), busy=self._layout)

    def _loaded(self, outcome, select: str | None) -> None:
        if isinstance(outcome, Exception):
            self._show(f"Cannot read the catalog: {_reason(outcome)}", "danger")
            return
        series, instruments, coverages = outcome
        venues = {i.instrument_id: i.venue for i in instruments}
        self._coverages = {c.key: c for c in coverages}
        self._inventory = pd.DataFrame([{
            "Venue": venues.get(s.instrument_id, s.instrument_id.rsplit(".", 1)[-1]),
            "Instrument": s.instrument_id, "Series": s.key, "Data": s.data_type,
            "Source": self._coverages[s.key].origin,
            "First (UTC)": f"{s.first:%Y-%m-%d %H:%M}", "Last (UTC)": f"{s.last:%Y-%m-%d %H:%M}",
            "Holes": self._coverages[s.key].holes_summary(),
            "Rows": s.rows, "Files": s.files, "Size": format_bytes(s.bytes),
        } for s in series], columns=INVENTORY_COLUMNS)
        self._table.value = self._inventory
        self._instruments.value = pd.DataFrame([{
            "Instrument": i.instrument_id, "Venue": i.venue, "Class": i.instrument_class,
            "Base": i.base_currency or "", "Quote": i.quote_currency,
            "Settlement": i.settlement_currency, "Price precision": i.price_precision,
            "Size precision": i.size_precision, "Tick": i.price_increment,
            "Lot/step": i.size_increment, "Multiplier": f"{i.multiplier:g}",
            "Expires": f"{i.expiration:%Y-%m-%d}" if i.expiration is not None else "",
        } for i in instruments])
        self._timeline.object = coverage_html(coverages)
        keys = [s.key for s in series]
        self.param.series.objects = list(keys)  # param may add None to the list it is given
        wanted = select if select in keys else (self.series if self.series in keys else None)
        self.series = wanted or (keys[0] if keys else None)
        self._segments.object = (segments_markdown(self._coverages[self.series])
                                 if self.series in self._coverages else "")
        note, kind = "", "info"
        if not keys:
            note, kind = "The catalog holds no data yet: import a file on the **Import** tab.", "warning"
        elif which := synthetic_share(coverages):
            note = (f"**Synthetic sample data** in {which}: generated by the workbench, not "
                    "market data. The *Source* column and the hatched coverage show which data "
                    "is synthetic and which was imported.")
        if self.message in ("", self._note):  # an action's outcome stays until the next action
            self._show(note, kind)
        self._note = note

    def _on_row_click(self, event) -> None:
        if event.row is not None and event.row < len(self._table.value):
            self.series = self._table.value.iloc[event.row]["Series"]

    @param.depends("refresh", watch=True)
    def _on_refresh(self) -> None:
        self._show("")
        self._load()

    @param.depends("series", "start", "end", watch=True)
    def _on_series(self) -> None:
        self._report = None
        self._report_download.visible = False
        self._quality_summary.object = "Run the quality check to see gaps and offenders."
        self._gaps.value = pd.DataFrame()
        self._offenders.value = pd.DataFrame()
        self._segments.object = (segments_markdown(self._coverages[self.series])
                                 if self.series in self._coverages else "")
        if self.series is None:
            self._preview_pipe.send(_EMPTY_PRICES)
            self._preview_note.object = ""
            return
        self._export_download.filename = (
            f"{re.sub(r'[^A-Za-z0-9._-]', '_', self.series)}.{self.export_format}")
        catalog, series = self.workbench.catalog, self.series
        start, end = self.start or None, self.end

        def read():
            return (catalog.preview(series, start, inclusive_end(end), max_points=PREVIEW_POINTS),
                    catalog.find_series(series))

        run_off_loop(read, lambda outcome: self._previewed_series(series, outcome),
                     busy=self._preview)

    def _previewed_series(self, series: str, outcome) -> None:
        if series != self.series:
            return  # the user has picked another series since
        if isinstance(outcome, Exception):
            self._preview_pipe.send(_EMPTY_PRICES)
            self._preview_note.object = f"No preview: {_reason(outcome)}"
            return
        frame, info = outcome
        frame = frame.tz_convert(None) if frame.index.tz is not None else frame
        self._preview_note.object = (
            f"**{series}** — {format_count(info.rows)} rows stored; showing "
            f"{format_count(len(frame))} points (lowest and highest of each stretch, at most "
            f"{format_count(PREVIEW_POINTS)}).")
        self._preview_pipe.send(frame.reset_index())

    @param.depends("export_format", watch=True)
    def _on_format(self) -> None:
        if self.series:
            self._export_download.filename = (
                f"{re.sub(r'[^A-Za-z0-9._-]', '_', self.series)}.{self.export_format}")

    # -- quality --------------------------------------------------------------------------------
    @param.depends("check", watch=True)
    def _on_check(self) -> None:
        if self.series is None:
            self._show("Pick a series first.", "warning")
            return
        series, calendar = self.series, None if self.calendar == AUTO else self.calendar
        start, end = self.start or None, self.end
        run_off_loop(lambda: self.workbench.catalog.check(series, calendar=calendar, start=start,
                                                          end=inclusive_end(end)),
                     lambda outcome: self._checked(series, outcome), busy=self._layout)

    def _checked(self, series: str, report) -> None:
        if isinstance(report, Exception):
            self._show(f"Cannot check {series}: {_reason(report)}", "danger")
            return
        self._report = report
        self._quality_summary.object = (
            f"**{report.series}** against the **{report.calendar}** calendar: {report.summary()}")
        self._gaps.value = pd.DataFrame([{
            "Start (UTC)": f"{g.start:%Y-%m-%d %H:%M}", "End (UTC)": f"{g.end:%Y-%m-%d %H:%M}",
            "Missing": g.missing} for g in sorted(report.gaps, key=lambda g: -g.missing)],
            columns=["Start (UTC)", "End (UTC)", "Missing"])
        self._offenders.value = report.offenders_frame().query("check != 'gap'")
        self._report_download.visible = True
        self._report_download.filename = f"quality-{re.sub(r'[^A-Za-z0-9._-]', '_', report.series)}.csv"

    def _report_file(self):
        if self._report is None:
            return io.BytesIO(b"")
        return io.BytesIO(self._report.offenders_frame().to_csv(index=False).encode())

    # -- export / delete ------------------------------------------------------------------------
    def _export_file(self):
        buffer = io.BytesIO()
        try:
            self.workbench.catalog_writer.export(self.series, buffer, start=self.start or None,
                                                 end=inclusive_end(self.end), fmt=self.export_format,
                                                 principal=self.principal)
        except WorkbenchError as e:
            self._show(f"Cannot export: {e}", "danger")
            return io.BytesIO(b"")
        buffer.seek(0)
        return buffer

    @param.depends("delete", watch=True)
    def _on_delete(self) -> None:
        if self.series is None:
            self._show("Pick a series first.", "warning")
            return
        series, start, end = self.series, self.start or None, self.end
        confirm = self.confirm_delete

        def deleted(result) -> None:
            if isinstance(result, Exception):
                self._show(_reason(result),
                           "warning" if isinstance(result, ValidationError) else "danger")
                return
            self.confirm_delete = False
            self._show(f"Deleted {result.rows_deleted:,} rows of {result.series_key}.",
                       "success")
            self._load()

        run_off_loop(lambda: self.workbench.catalog_writer.delete(
            series, start, inclusive_end(end), confirm=confirm, principal=self.principal), deleted,
            busy=self._layout)

    # -- import ---------------------------------------------------------------------------------
    def _on_upload(self, event) -> None:
        if not event.new:
            return
        name, data, writer = self._upload.filename or "upload.csv", event.new, self.workbench.catalog_writer

        def stored(outcome) -> None:
            if isinstance(outcome, Exception):
                self._show_import(_reason(outcome), "danger")
                return
            self.source = outcome
            self._show_import(f"Uploaded **{name}** ({format_bytes(len(data))}). Fill in the "
                              "instrument id and press Preview.", "info")

        # Up to MAX_UPLOAD is written to disk: not on the event loop.
        run_off_loop(lambda: writer.store_upload(name, data, principal=self.principal), stored,
                     busy=self._layout)

    def _options(self) -> ImportOptions:
        if not self.source:
            raise ValidationError("Choose a file first: upload one or give a path or URL.")
        if not self.instrument_id.strip():
            raise ValidationError("Give the instrument id, e.g. BTCUSDT-PERP.BINANCE.")
        data_type = None if self.data_kind == AUTO else self.data_kind
        bar_spec = self.bar_spec.strip() or None if data_type in (None, "bars") else None
        return ImportOptions(
            instrument_id=self.instrument_id.strip(),
            instrument_type=None if self.instrument_type == AUTO else self.instrument_type,
            bar_spec=bar_spec, data_type=data_type,
            timezone=self.timezone.strip() or "UTC",
            timestamps_mark=None if self.timestamps_mark == AUTO else self.timestamps_mark,
            accept_level_change=self.accept_level_change)

    @param.depends("preview_import", watch=True)
    def _on_preview_import(self) -> None:
        try:
            source, options = self.source, self._options()
        except WorkbenchError as e:
            self._show_import(str(e), "danger")
            return
        run_off_loop(lambda: self.workbench.catalog_writer.preview_import(
            source, options, principal=self.principal), self._previewed, busy=self._layout)

    def _previewed(self, preview) -> None:
        if isinstance(preview, Exception):
            self._show_import(_reason(preview), "danger")
            self._import_rows.visible = False
            return
        rows = preview.rows.copy()
        rows["ts_event"] = rows["ts_event"].dt.strftime("%Y-%m-%d %H:%M:%S")
        self._import_rows.value = rows
        self._import_rows.visible = True
        self._show_import(f"Will import **{preview.summary()}**.  \nFirst rows: "
                          f"{preview.quality.summary()} (calendar {preview.calendar}).", "info")

    @param.depends("check_import", watch=True)
    def _on_check_import(self) -> None:
        self._import(dry_run=True)

    @param.depends("run_import", watch=True)
    def _on_run_import(self) -> None:
        self._import(dry_run=False)

    def _import(self, dry_run: bool) -> None:
        try:
            source, options = self.source, self._options()
        except WorkbenchError as e:
            self._show_import(str(e), "danger")
            return
        run_off_loop(lambda: self.workbench.catalog_writer.import_file(
            source, options, principal=self.principal, dry_run=dry_run),
            lambda result: self._imported(source, dry_run, result), busy=self._layout)

    def _imported(self, source: str, dry_run: bool, result) -> None:
        if isinstance(result, Exception):
            if not isinstance(result, WorkbenchError):
                log.error("import of %s failed", source, exc_info=result)
            self._show_import(_reason(result), "danger")
            return
        quality = result.quality.summary()
        if dry_run:
            self._show_import(f"Checked **{result.rows:,} rows** for {result.series_key}; nothing "
                              f"written. Quality: {quality}", "info")
            return
        self._show_import(f"Imported **{result.rows:,} rows** into **{result.series_key}** "
                          f"({result.first:%Y-%m-%d %H:%M} to {result.last:%Y-%m-%d %H:%M} UTC). "
                          f"Quality: {quality}", "success")
        self._load(select=result.series_key)

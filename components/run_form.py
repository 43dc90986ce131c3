"""The run form the Backtest and Sweeps pages share: strategy template, data slice, venue and
fill settings, and the strategy's parameters, generated from the templates' declared
parameters.

In grid mode (a sweep, a walk-forward analysis) each sweepable parameter takes the values to
try, a list (``5,10,20``) or a range (``LOW..HIGH:STEP``), instead of one value.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.formats import strategy_title
from components.offloop import run_off_loop
from components.parameters import ParameterFields, error_line
from services import ValidationError, Workbench, WorkbenchError
from services.backtest import VenueSettings
from services.catalog.coverage import IMPORTED, MIXED, SAMPLE
from services.formatting import format_count
from services.templates import StrategyTemplate
from services.timestamps import read_window, spec_text

# Parameter types a sweep can vary.
SWEEPABLE = ("int", "float", "decimal", "bool", "choice")


def refusal(error: ValidationError) -> str:
    """A refused submission as markdown: the summary, then each problem on its own line."""
    if not error.problems:
        return f"**{error.summary}**"
    problems = "\n".join(f"- {p}" for p in error.problems)
    return f"**{error.summary}.** Fix these and run again:\n\n{problems}"


class RunForm(Viewer):
    """Choose a strategy template and a slice of the catalog, set the venue and the strategy's
    parameters (one value each, or in grid mode the values to try)."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the form reads templates and catalog from.""")

    grid = param.Boolean(default=False, constant=True, doc="""
        Ask for the values to try per sweepable parameter (a sweep) instead of one value each.""")

    default_days = param.Integer(default=30, bounds=(1, None), constant=True, doc="""
        Length in days of the slice a new bar type starts with, ending on its last day.""")

    strategy = param.Selector(default=None, objects=[], doc="Strategy template to run.")

    bar_type = param.Selector(default=None, objects=[], label="Bar type", doc="""
        Data to run on: stored bars, or 1-minute bars aggregated from stored quotes.""")

    start = param.String(default="", label="Start (UTC)", doc="""
        Where the run starts (UTC), typed as on the Catalog page: a day (2024-03-01, from its
        first bar) or a day and time (2024-03-01 09:30); blank: the first bar.""")

    end = param.String(default="", label="End (UTC)", doc="""
        Where the run ends (UTC), included, as End on the Catalog page: a day alone
        (2024-03-31) runs to the end of that day, a day and time (2024-03-31 16:00) up to and
        including the bar closing then; blank: the last bar.""")

    currency = param.String(default="", label="Account currency", doc="""
        Account currency (the instrument's settlement currency).""")

    template = param.ClassSelector(class_=StrategyTemplate, default=None, allow_None=True, doc="""
        The chosen strategy's template (read-only).""")

    fields = param.ClassSelector(class_=ParameterFields, default=None, allow_None=True, doc="""
        The strategy's parameter fields (read-only): one value each, or in grid mode the
        values to try as text.""")

    venue_fields = param.ClassSelector(class_=ParameterFields, default=None, allow_None=True,
                                       doc="The venue and fill settings' fields (read-only).""")

    problems = param.List(default=[], item_type=str, doc="""
        What must be fixed before the form can run, one line each naming the field and the
        value (read-only; empty when everything is valid).""")

    message = param.String(default="", doc="""
        Why the form cannot offer something (a broken template, an empty catalog), or empty.""")

    message_kind = param.Selector(default="info", objects=["info", "warning", "danger"],
                                  doc="How serious the message is.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("RunForm needs a workbench (services.Workbench.open()).")
        self._series = {}
        self._instruments = {}
        self._strategy_box = pn.Column(sizing_mode="stretch_width")
        self._venue_box = pn.Column(sizing_mode="stretch_width")
        self._description = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._coverage = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._sample_note = pn.pane.Markdown("", sizing_mode="stretch_width", visible=False,
                                             css_classes=["synthetic-sample-note"])
        self._date_error = error_line()
        self._start_input = pn.widgets.TextInput.from_param(
            self.param.start, onkeyup=True, placeholder="2024-03-01 or 2024-03-01 09:30",
            sizing_mode="stretch_width")
        self._end_input = pn.widgets.TextInput.from_param(
            self.param.end, onkeyup=True, placeholder="2024-03-31 or 2024-03-31 16:00",
            sizing_mode="stretch_width")
        self._load_choices()
        self.strategy_card, self.data_card, self.venue_card = self._build_cards()

    # -- layout -------------------------------------------------------------------------------
    def _build_cards(self) -> tuple[pn.Card, pn.Card, pn.Card]:
        grid_note = pn.pane.Markdown(
            "**Values to try** per parameter: a list (`5,10,20`) or a range `LOW..HIGH:STEP`; "
            "leave empty to keep the default.", sizing_mode="stretch_width", visible=self.grid)
        strategy = pn.Card(
            pn.widgets.Select.from_param(self.param.strategy, sizing_mode="stretch_width"),
            self._description, grid_note, self._strategy_box,
            title="Strategy", collapsible=False, sizing_mode="stretch_width")
        data = pn.Card(
            pn.widgets.Select.from_param(self.param.bar_type, sizing_mode="stretch_width"),
            self._coverage,
            pn.Row(self._start_input, self._end_input, sizing_mode="stretch_width"),
            self._date_error, self._sample_note,
            title="Data", collapsible=False, sizing_mode="stretch_width")
        venue = pn.Card(
            pn.widgets.TextInput.from_param(self.param.currency, disabled=True),
            self._venue_box, title="Venue and account", collapsed=self.grid,
            sizing_mode="stretch_width")
        return strategy, data, venue

    def __panel__(self):
        return pn.Column(self.strategy_card, self.data_card, self.venue_card,
                         sizing_mode="stretch_width")

    # -- choices ------------------------------------------------------------------------------
    def _load_choices(self) -> None:
        catalog = self.workbench.catalog
        try:
            names = {strategy_title(self.workbench.templates, name): name
                     for name in self.workbench.templates.strategy_names()}
            series = catalog.backtestable()
            engine = self.workbench.templates.backtest_engine()
            self._instruments = {i.instrument_id: i for i in catalog.instruments()}
        except WorkbenchError as e:
            self._say(f"Cannot load templates or catalog: {e}", "danger")
            return
        self._series = {s.bar_type: s for s in series}
        self.venue_fields = ParameterFields(specs=engine.parameters, currency=self.currency)
        self.venue_fields.param.watch(self._collect, "problems")
        self._venue_box.objects = [self.venue_fields]
        self.param.strategy.objects = names
        self.param.bar_type.objects = list(self._series)
        if not series:
            self._say("The catalog holds no data to backtest. Import data first, or start the "
                      "workbench without --catalog to use the generated sample.", "warning")
        # Set the initial choices without firing the watchers, then build each panel once
        # (otherwise the strategy template would be loaded several times per session).
        with param.parameterized.discard_events(self):
            choices = list(names.values())
            if choices and self.strategy not in choices:
                self.strategy = "ema_cross" if "ema_cross" in choices else choices[0]
            if self._series and self.bar_type not in self._series:
                self.bar_type = next(iter(self._series))
        self._on_bar_type()
        self._on_strategy()

    @property
    def instrument(self):
        """The chosen bar type's instrument (an InstrumentInfo), or None."""
        series = self._series.get(self.bar_type)
        return self._instruments.get(series.instrument_id) if series is not None else None

    @property
    def instrument_class(self) -> str | None:
        instrument = self.instrument
        return instrument.instrument_class if instrument is not None else None

    @property
    def values(self) -> param.Parameterized | None:
        """The strategy's parameters, bound to their fields (None without a usable template)."""
        return self.fields.values if self.fields is not None else None

    @property
    def venue_values(self) -> param.Parameterized | None:
        """The venue and fill settings, bound to their fields."""
        return self.venue_fields.values if self.venue_fields is not None else None

    @param.depends("strategy", watch=True)
    def _on_strategy(self) -> None:
        if not self.strategy:
            return
        try:
            template = self.workbench.templates.strategy(self.strategy)
        except WorkbenchError as e:
            self.template = self.fields = None
            self._strategy_box.objects = []
            self._collect()
            self._say(f"Template **{self.strategy}** cannot be used:\n\n{e}", "danger")
            return
        self.template = template
        self._description.object = template.description
        specs = template.parameters
        if self.grid:
            specs = {k: s for k, s in specs.items() if s.type in SWEEPABLE}
        self.fields = ParameterFields(specs=specs, grid=self.grid,
                                      instrument_class=self.instrument_class)
        self.fields.param.watch(self._collect, "problems")
        self._strategy_box.objects = [self.fields]
        self._collect()

    @param.depends("bar_type", watch=True)
    def _on_bar_type(self) -> None:
        series = self._series.get(self.bar_type)
        if series is None:
            return
        first, last = series.first.date(), series.last.date()
        # Default slice: the last days of the data, which run in seconds.
        self.param.update(end=last.isoformat(),
                          start=max(first, last - dt.timedelta(days=self.default_days)).isoformat())
        source = ("stored bars" if series.data_type == "bars"
                  else "1-minute mid bars built from stored quotes")
        self._coverage.object = (f"{source}: **{series.first:%Y-%m-%d %H:%M}** to "
                                 f"**{series.last:%Y-%m-%d %H:%M}** UTC, {series.rows:,} rows")
        bar_type, catalog = self.bar_type, self.workbench.catalog
        run_off_loop(lambda: catalog.coverage(bar_type),
                     lambda coverage: self._covered(bar_type, source, coverage))
        instrument = self.instrument
        self.currency = instrument.settlement_currency if instrument is not None else ""
        # The fields stay (what the user typed is kept); defaults that depend on the
        # instrument, such as the trade size, follow it.
        for fields in (self.fields, self.venue_fields):
            if fields is not None:
                fields.param.update(instrument_class=self.instrument_class,
                                    currency=self.currency)

    def _covered(self, bar_type: str, source: str, coverage) -> None:
        """Name the holes of the chosen data, and whether it is synthetic."""
        if bar_type != self.bar_type or isinstance(coverage, Exception):
            return  # another series was picked since; or the first/last line stays as it is
        if coverage.holes:
            self._coverage.object = (f"{source} with holes: data {coverage.describe()} UTC, "
                                     f"{format_count(coverage.rows)} rows")
        self._sample_note.visible = coverage.origin != IMPORTED
        self._sample_note.object = {
            SAMPLE: "**Synthetic sample data.** This series was generated by the workbench "
                    "from a fixed seed; it is not market data.",
            MIXED: "**Synthetic sample data.** Part of this series was generated by the "
                   "workbench from a fixed seed (not market data); the rest was imported.",
        }.get(coverage.origin, "")

    # -- checking -----------------------------------------------------------------------------
    def _range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """Start and End as instants (End included, a day alone read through its end);
        ValidationError with a line per problem, naming the field and the text typed."""
        return read_window(self.start, self.end)

    def _date_problems(self) -> list[str]:
        try:
            self._range()
        except ValidationError as error:
            return error.problems
        return []

    @param.depends("start", "end", watch=True)
    def _collect(self, *_events) -> None:
        dates = self._date_problems()
        self._date_error.object, self._date_error.visible = "<br>".join(dates), bool(dates)
        self.problems = [*(self.fields.problems.values() if self.fields else ()),
                         *(self.venue_fields.problems.values() if self.venue_fields else ()),
                         *dates]

    # -- what the form says -------------------------------------------------------------------
    def parameters(self) -> dict:
        """The strategy's parameter values (one value each)."""
        return self.fields.submitted() if self.fields is not None and not self.grid else {}

    def grid_values(self) -> dict[str, list[str]]:
        """The values to try per parameter (grid mode), as the text typed; empty fields are
        left out (their default is kept)."""
        return self.fields.tried() if self.fields is not None and self.grid else {}

    def venue(self) -> VenueSettings:
        """The venue and account settings."""
        values = self.venue_fields.submitted() if self.venue_fields is not None else {}
        return VenueSettings(currency=self.currency or None, **values)

    def time_range(self) -> tuple[str | None, str | None]:
        """Start and end as the services take them: ISO instants, the end included (a day
        alone as End is the next midnight, when that day's last bar closes), None for the
        data's first or last bar; ValidationError naming what was typed when it is no date
        or the End is not after the Start."""
        start, end = self._range()
        series = self._series.get(self.bar_type)
        if end is not None and series is not None and end >= series.last:
            end = None  # up to the last bar
        return spec_text(start), spec_text(end)

    def _say(self, text: str, kind: str) -> None:
        self.message_kind = kind
        self.message = text

"""Configure and run a backtest: template, parameters, data slice, venue; progress and errors."""

from __future__ import annotations

import datetime as dt
import logging

import panel as pn
import param
from panel.viewable import Viewer

from components.parameters import parameters_from_specs, values_of, widgets_for
from components.live import follow
from components.offloop import run_off_loop
from components.permissions import permission, reason_note, restrict
from services.identity.principal import Principal
from services import ValidationError, Workbench, WorkbenchError
from services.backtest import BacktestSpec, VenueSettings
from services.catalog.coverage import IMPORTED, MIXED, SAMPLE
from services.formatting import format_count
from services.timestamps import inclusive_end

log = logging.getLogger(__name__)



class BacktestConfigurator(Viewer):
    """Pick a strategy template and a slice of the catalog, set parameters, run a backtest."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the component reads templates and catalog from and submits runs to.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    strategy = param.Selector(default=None, objects=[], doc="Strategy template to run.")

    bar_type = param.Selector(default=None, objects=[], label="Bar type", doc="""
        Data to run on: stored bars, or 1-minute bars aggregated from stored quotes.""")

    start = param.CalendarDate(default=None, allow_None=True, doc="First day of the run (UTC).")

    end = param.CalendarDate(default=None, allow_None=True, doc="""
        Last day of the run, inclusive (UTC): the run goes through that day's last bar, as the
        Catalog page's End does.""")

    currency = param.String(default="", doc="Account currency (the instrument's settlement currency).")

    label = param.String(default="", doc="Free text shown with the run.")

    run = param.Event(label="Run backtest", doc="Submit the backtest as configured.")

    run_id = param.String(default=None, allow_None=True, doc="The run submitted last.")

    status = param.String(default="", doc="Status of the run submitted last.")

    progress = param.Integer(default=0, bounds=(0, 100), doc="Progress of that run, in percent.")

    completed_run = param.String(default=None, allow_None=True, doc="""
        Id of the last run that completed; pages link it to the results viewer.""")

    message = param.String(default="", doc="Last outcome shown to the user (markdown).")

    message_kind = param.Selector(default="info", objects=["info", "success", "warning", "danger"],
                                  doc="How the message is shown.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("BacktestConfigurator needs a workbench (services.Workbench.open()).")
        self._series = {}
        self._live = self.workbench.live.start()
        self._strategy_params = None
        self._venue_specs = {}
        self._venue_params = None
        self._strategy_box = pn.Column(sizing_mode="stretch_width")
        self._venue_box = pn.Column(sizing_mode="stretch_width")
        self._description = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._coverage = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._sample_note = pn.pane.Markdown("", sizing_mode="stretch_width", visible=False,
                                             css_classes=["synthetic-sample-note"])
        self._start_picker = pn.widgets.DatePicker.from_param(self.param.start, name="Start (UTC)")
        self._end_picker = pn.widgets.DatePicker.from_param(self.param.end, name="End (UTC)")
        self._run_button = pn.widgets.Button.from_param(self.param.run, color="primary",
                                                        sizing_mode="stretch_width")
        self._alert = pn.pane.Alert(self.param.message, alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        self._progress_bar = pn.indicators.Progress(value=0, max=100, visible=False,
                                                    sizing_mode="stretch_width", bar_color="primary")
        self._status_text = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._may_run = permission(self.workbench, self.principal, "backtest.submit")
        restrict(self._run_button, *self._may_run)
        self._load_choices()
        self._layout = self._build_layout()
        follow(self._live, ["runs"], self._on_live)

    # -- layout -------------------------------------------------------------------------------
    def _build_layout(self):
        data_card = pn.Card(
            pn.widgets.Select.from_param(self.param.bar_type, sizing_mode="stretch_width"),
            self._coverage,
            pn.Row(self._start_picker, self._end_picker, sizing_mode="stretch_width"),
            self._sample_note,
            title="Data", collapsible=False, sizing_mode="stretch_width",
        )
        strategy_card = pn.Card(
            pn.widgets.Select.from_param(self.param.strategy, sizing_mode="stretch_width"),
            self._description, self._strategy_box,
            title="Strategy", collapsible=False, sizing_mode="stretch_width",
        )
        venue_card = pn.Card(
            pn.widgets.TextInput.from_param(self.param.currency, disabled=True),
            self._venue_box, title="Venue and account", collapsed=False, sizing_mode="stretch_width",
        )
        run_card = pn.Card(
            pn.widgets.TextInput.from_param(self.param.label, placeholder="optional note"),
            self._run_button, reason_note(self._may_run), self._progress_bar,
            self._status_text, self._alert,
            title="Run", collapsible=False, sizing_mode="stretch_width",
        )
        return pn.Row(
            pn.Column(strategy_card, venue_card, sizing_mode="stretch_width"),
            pn.Column(data_card, run_card, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def __panel__(self):
        return self._layout

    # -- choices ------------------------------------------------------------------------------
    def _load_choices(self) -> None:
        try:
            names = self.workbench.templates.strategy_names()
            series = self.workbench.catalog.backtestable()
            engine = self.workbench.templates.backtest_engine()
        except WorkbenchError as e:
            self._show(f"Cannot load templates or catalog: {e}", "danger")
            return
        self._venue_specs = engine.parameters
        self._series = {s.bar_type: s for s in series}
        self.param.strategy.objects = names
        self.param.bar_type.objects = list(self._series)
        if not series:
            self._show("The catalog holds no data to backtest. Import data first, or start the "
                       "workbench without --catalog to use the generated sample.", "warning")
        # Set the initial choices without firing the watchers, then build each panel once
        # (otherwise the strategy template would be loaded several times per session).
        with param.parameterized.discard_events(self):
            if names and self.strategy not in names:
                self.strategy = "ema_cross" if "ema_cross" in names else names[0]
            if self._series and self.bar_type not in self._series:
                self.bar_type = next(iter(self._series))
        self._on_bar_type()
        self._on_strategy()

    def _instrument_class(self) -> str | None:
        series = self._series.get(self.bar_type)
        if series is None:
            return None
        try:
            return self.workbench.catalog.instrument(series.instrument_id).instrument_class
        except WorkbenchError:
            return None

    @param.depends("strategy", watch=True)
    def _on_strategy(self, keep_values: bool = False) -> None:
        if not self.strategy:
            return
        try:
            template = self.workbench.templates.strategy(self.strategy)
        except WorkbenchError as e:
            self._strategy_params = None
            self._strategy_box.objects = []
            self._show(f"Template **{self.strategy}** cannot be used:\n\n{e}", "danger")
            return
        same = keep_values and getattr(self, "_template", None) is not None \
            and self._template.name == template.name
        previous = self._strategy_params if same else None
        self._template = template
        self._description.object = template.description
        self._strategy_params = parameters_from_specs(template.name, template.parameters,
                                                      self._instrument_class())
        if previous is not None:
            # Same strategy, other instrument: keep what the user typed, except values whose
            # sensible default depends on the instrument (e.g. trade size).
            for name, spec in template.parameters.items():
                if not spec.default_by_instrument_class:
                    setattr(self._strategy_params, name, getattr(previous, name))
        self._strategy_box.objects = [widgets_for(self._strategy_params, template.parameters)]

    @param.depends("bar_type", watch=True)
    def _on_bar_type(self) -> None:
        series = self._series.get(self.bar_type)
        if series is None:
            return
        first, last = series.first.date(), series.last.date()
        for picker in (self._start_picker, self._end_picker):
            picker.start, picker.end = first, last
        # Default slice: the last month of data, which runs in seconds.
        self.end = last
        self.start = max(first, last - dt.timedelta(days=30))
        source = "stored bars" if series.data_type == "bars" else "1-minute mid bars built from stored quotes"
        self._coverage.object = (f"{source}: **{series.first:%Y-%m-%d %H:%M}** to "
                                 f"**{series.last:%Y-%m-%d %H:%M}** UTC, {series.rows:,} rows")
        bar_type, catalog = self.bar_type, self.workbench.catalog
        run_off_loop(lambda: catalog.coverage(bar_type),
                     lambda coverage: self._covered(bar_type, source, coverage))
        instrument_class = self._instrument_class()
        try:
            self.currency = self.workbench.catalog.instrument(series.instrument_id).settlement_currency
        except WorkbenchError:
            self.currency = ""
        self._venue_params = parameters_from_specs("venue", self._venue_specs, instrument_class)
        self._venue_box.objects = [widgets_for(self._venue_params, self._venue_specs)]
        if self._strategy_params is not None:
            self._on_strategy(keep_values=True)  # trade size defaults depend on the instrument

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

    # -- running ------------------------------------------------------------------------------
    def spec(self) -> BacktestSpec:
        """The BacktestSpec the current settings describe."""
        strategy_values = (values_of(self._strategy_params, self._template.parameters)
                           if self._strategy_params is not None else {})
        venue_values = values_of(self._venue_params, self._venue_specs) if self._venue_params else {}
        end = inclusive_end(self.end).isoformat() if self.end else None
        if self.end and self._series.get(self.bar_type) and self.end >= self._series[self.bar_type].last.date():
            end = None  # up to the last bar
        return BacktestSpec(
            strategy=self.strategy, bar_type=self.bar_type, parameters=strategy_values,
            start=self.start.isoformat() if self.start else None, end=end,
            venue=VenueSettings(currency=self.currency or None, **venue_values), label=self.label,
        )

    @param.depends("run", watch=True)
    def _on_run(self) -> None:
        """Queue the backtest the form describes now; the page follows the newest one."""
        try:
            spec = self.spec()  # the values as they are at the click, before any waiting
        except WorkbenchError as e:
            self._show(f"Could not start the backtest: {e}", "danger")
            return
        following = self.run_id if self.status in ("Queued", "Running", "Paused") else None

        def submitted(outcome) -> None:
            if isinstance(outcome, ValidationError):
                problems = "\n".join(f"- {p}" for p in outcome.problems) or str(outcome)
                self._show(f"**{outcome.summary}.** Fix these and run again:\n\n{problems}",
                           "danger")
                return
            if isinstance(outcome, Exception):
                if not isinstance(outcome, WorkbenchError):
                    log.error("submitting a backtest failed", exc_info=outcome)
                self._show(f"Could not start the backtest: {outcome}", "danger")
                return
            self.run_id = outcome
            self.status, self.progress = "Queued", 0
            queued = (f" It joins the queue behind `{following}`, which is still running; "
                      "see every run on the [Runs](./runs) page.") if following else ""
            self._show(f"Run `{outcome}` submitted.{queued}", "info")
            self._progress_bar.visible = True
            self.poll()

        run_off_loop(lambda: self.workbench.backtests.submit(spec, principal=self.principal),
                     submitted, busy=self._run_button)

    def _on_live(self) -> None:
        info = next((r for r in self._live.runs if r.run_id == self.run_id), None)
        if info is not None and (info.status, info.progress) != (self.status, self.progress):
            self._follow(info)

    def poll(self) -> None:
        """Show the submitted run's status and progress (read now; the live state also pushes
        them every second)."""
        if not self.run_id:
            return
        try:
            self._follow(self.workbench.backtests.get(self.run_id))
        except WorkbenchError as e:
            self._show(f"Lost track of run {self.run_id}: {e}", "danger")

    def _follow(self, info) -> None:
        self.status = info.status
        self.progress = int(round((info.progress or 0) * 100))
        phase = f" ({info.phase})" if info.phase and not info.is_final else ""
        self._progress_bar.value = self.progress
        self._status_text.object = f"**{info.status}**{phase} · {self.progress} %"
        if not info.is_final:
            return
        self._progress_bar.visible = info.status == "Completed"
        if info.status == "Completed":
            self.progress = 100
            self._progress_bar.value = 100
            self.completed_run = info.run_id
            self._show(f"Run `{info.run_id}` completed: {info.num_trades or 0:,} trades. "
                       f"[Open the results](./results?run={info.run_id})", "success")
        else:
            self._show(f"Run `{info.run_id}` {info.status.lower()}: "
                       f"{info.error or 'no reason given'}", "danger")

    def _show(self, text: str, kind: str) -> None:
        self.message_kind = kind
        self.message = text
        self._alert.alert_type = kind
        self._alert.visible = bool(text)

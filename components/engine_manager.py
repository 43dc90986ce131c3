"""Start, watch and stop paper, sandbox and live trading engines (each in its own container).

Every state change goes through a confirmation step; starting (or restarting) a live engine shows
its risks and needs the engine's name typed — the service checks that name again, so the rule
holds for the API and the CLI too. Slow calls (Docker, validation against NautilusTrader) run off
the event loop; the served page refreshes itself from the service every few seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import os
from typing import ClassVar

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure
from panel.viewable import Viewer

from components.parameters import parameters_from_specs, values_of, widgets_for
from services.identity.principal import Principal
from services import PermissionDenied, ValidationError, Workbench, WorkbenchError
from services.engine.config import instrument_id_of

log = logging.getLogger(__name__)

STATE_COLOURS = {"Running": "#2e9d4f", "Starting": "#e0a100", "Stopping": "#e0a100",
                 "Stopped": "#8a8f98", "Error": "#d62728"}
# Template parameters shown together; anything a template adds lands in "Other settings".
SECTIONS = {
    "Strategy and data": ("strategy", "bar_type", "replay_speed", "replay_start"),
    "Venue and account": ("venue", "starting_balance", "balance_currency", "oms_type",
                          "account_type", "leverage"),
    "Risk engine": ("risk_engine", "max_notional_per_order", "max_order_submit_rate"),
    "Resources": ("memory_limit_mb", "cpu_limit"),
    "Cache and logging": ("bar_capacity", "log_level"),
}
LIVE_RISKS = (
    "**This engine trades real money.** It sends real orders to the venue with the keys in the "
    "server's environment. Losses are real and immediate; orders may fill before you can stop "
    "the engine; an emergency stop kills the engine but does not cancel orders already at the "
    "venue — check the venue afterwards."
)


def _state_badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#8a8f98")
    return f'<span style="color:{colour}; font-size:1.1em">&#9679;</span> {html.escape(state)}'


def _problem_list(error: ValidationError) -> str:
    lines = []
    for problem in error.problems or [str(error)]:
        field, sep, text = problem.partition(": ")
        lines.append(f"- **{field}**: {text}" if sep else f"- {problem}")
    return "\n".join(lines)


def _button(parameter: param.Parameter, **options) -> pn.widgets.Button:
    """A button for an Event parameter, without the tooltip of its doc: a tooltip left over
    from a click covers the confirmation button that appears next to it."""
    return pn.widgets.Button.from_param(parameter, description=None, **options)


def _time_figure(title: str, y_label: str, source: ColumnDataSource,
                 lines: list[tuple[str, str, str]], tooltip: str) -> figure:
    """A small time chart of ``source``'s columns (one line per (column, label, colour))."""
    chart = figure(title=title, x_axis_type="datetime", height=230, sizing_mode="stretch_width",
                   tools="pan,wheel_zoom,reset,save", toolbar_location="right")
    for column, label, colour in lines:
        legend = {"legend_label": label} if len(lines) > 1 else {}
        chart.line("ts", column, source=source, color=colour, line_width=2, **legend)
    chart.add_tools(HoverTool(tooltips=[("time", "@ts{%H:%M:%S}"), (title, tooltip)],
                              formatters={"@ts": "datetime"}, mode="vline"))
    chart.xaxis.axis_label, chart.yaxis.axis_label = "Time (UTC)", y_label
    chart.xaxis.ticker.desired_num_ticks = 4
    chart.y_range.start = 0
    if len(lines) > 1:
        chart.legend.location = "bottom_right"
    return chart


def _money(value) -> str:
    return f"{value:,.2f}" if isinstance(value, (int, float)) else "–"


class EngineManager(Viewer):
    """List trading engines, start them from a template, watch and stop them."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the component reads templates from and controls engines through.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    monitor = param.Parameter(default=None, doc="""
        The server's engine monitor (one per process): its state says whether Docker is
        reachable. Without it (in a notebook) the component asks the service itself.""")


    template = param.Selector(default=None, objects=[], doc="Engine template to start from.")

    engine_name = param.String(default="", label="Engine name", doc="""
        Name of the new engine (lower-case letters, digits, '.', '_', '-'); empty: a name made
        from the mode, strategy and instrument.""")

    selected = param.String(default=None, allow_None=True, doc="""
        Session id of the engine the controls, state, plots and log apply to.""")

    start = param.Event(label="Start engine…", doc="Validate the settings, then ask to confirm.")

    stop = param.Event(label="Stop…", doc="Ask to confirm a graceful stop of the selected engine.")

    restart = param.Event(label="Restart…", doc="Ask to confirm a restart of the selected engine.")

    kill = param.Event(label="Emergency stop…", doc="""
        Ask to confirm killing the selected engine's container now.""")

    pending = param.Selector(default=None, objects=[None, "start", "stop", "restart", "kill"],
                             doc="The action waiting for confirmation, if any.")

    confirm_text = param.String(default="", label="Type the engine's name to confirm", doc="""
        Typed confirmation for live engines: must equal the engine's name.""")

    confirm = param.Event(label="Confirm", doc="Carry out the pending action.")

    cancel = param.Event(label="Cancel", doc="Drop the pending action.")

    busy = param.Boolean(default=False, doc="An action is being carried out.")

    problems = param.List(default=[], doc="Per-field problems of the last validation.")

    message = param.String(default="", doc="Last outcome shown to the user (markdown).")

    message_kind = param.Selector(default="info", objects=["info", "success", "warning", "danger"],
                                  doc="How the message is shown.")

    docker_status = param.String(default="", doc="""
        Why engines cannot be controlled right now (Docker unreachable, image missing), or empty.""")

    log_search = param.String(default="", label="Search the log", doc="Show only lines with this text.")

    log_lines = param.Integer(default=200, bounds=(10, 5000), label="Lines",
                              doc="How many of the newest log lines to show.")

    # How often a served page re-reads engines, metrics and logs (the monitor samples every 5 s).
    REFRESH_MS: ClassVar[int] = 2000
    # Minutes of resource history the plots show.
    PLOT_MINUTES: ClassVar[int] = 15
    # Without a monitor, check Docker every this many refreshes.
    HEALTH_EVERY: ClassVar[int] = 5

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("EngineManager needs a workbench (services.Workbench.open()).")
        self.engines = self.workbench.engines
        self.engine_template = None
        self.engine_settings = None
        self.strategy_template = None
        self.strategy_settings = None
        self._pending_start: dict | None = None
        self._refreshes = 0
        self._poller = None
        self._table_frame = None
        self._build_widgets()
        self._layout = self._build_layout()
        self._load_templates()
        self.refresh(check_docker=True)
        self._start_polling()

    # -- layout -------------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self._alert = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self._docker_alert = pn.pane.Alert("", alert_type="danger", visible=False,
                                           sizing_mode="stretch_width",
                                           css_classes=["docker-status"])
        self._table = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, disabled=True, selectable=1, height=260,
            sizing_mode="stretch_width", formatters={"State": {"type": "html"}},
            widths={"State": 115},
            css_classes=["engine-list"])
        self._table.param.watch(self._on_table_selection, "selection")
        self._description = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._settings_box = pn.Column(sizing_mode="stretch_width")
        self._strategy_box = pn.Column(sizing_mode="stretch_width")
        self._venue_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self._problems_alert = pn.pane.Alert("", alert_type="danger", visible=False,
                                             sizing_mode="stretch_width",
                                             css_classes=["validation-problems"])
        self._start_confirm = pn.Column(sizing_mode="stretch_width", visible=False,
                                        css_classes=["start-confirmation"])
        self._action_confirm = pn.Column(sizing_mode="stretch_width", visible=False,
                                         css_classes=["action-confirmation"])
        self._buttons = {
            name: _button(self.param[name], button_type=kind,
                                               sizing_mode="stretch_width")
            for name, kind in (("start", "primary"), ("stop", "warning"),
                               ("restart", "default"), ("kill", "danger"))
        }
        self._engine_header = pn.pane.HTML("Select an engine in the list.",
                                           sizing_mode="stretch_width",
                                           css_classes=["engine-header"])
        self._engine_error = pn.pane.Alert("", alert_type="danger", visible=False,
                                           sizing_mode="stretch_width")
        self._engine_state = pn.pane.Markdown("", sizing_mode="stretch_width",
                                              css_classes=["engine-state"])
        self._positions = pn.pane.DataFrame(pd.DataFrame(), index=False, sizing_mode="stretch_width")
        self._balances = pn.pane.DataFrame(pd.DataFrame(), index=False, sizing_mode="stretch_width")
        # Bokeh sources updated in place: the plots follow the data without being rebuilt.
        self._cpu_source = ColumnDataSource({"ts": [], "cpu": []})
        self._memory_source = ColumnDataSource({"ts": [], "memory": [], "limit": []})
        self._log_view = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["engine-log"],
                                      styles={"max-height": "360px", "overflow": "auto"})
        self._audit = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                           height=300, sizing_mode="stretch_width",
                                           css_classes=["audit-trail"])

    def _plots(self) -> pn.Row:
        cpu = _time_figure("CPU", "CPU (% of one core)", self._cpu_source,
                           [("cpu", "CPU", "#0f6e8c")], "@cpu{0.0} %")
        memory = _time_figure("Memory", "Memory (MiB)", self._memory_source,
                              [("memory", "used", "#0f6e8c"), ("limit", "limit", "#d62728")],
                              "@memory{0,0} MiB of @limit{0,0} MiB")
        return pn.Row(pn.pane.Bokeh(cpu, sizing_mode="stretch_width"),
                      pn.pane.Bokeh(memory, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width", css_classes=["resource-plots"])

    def _build_layout(self) -> pn.Column:
        list_card = pn.Card(
            self._table,
            pn.Row(self._buttons["stop"], self._buttons["restart"], self._buttons["kill"],
                   sizing_mode="stretch_width"),
            self._action_confirm,
            title="Engines", collapsible=False, sizing_mode="stretch_width")
        start_card = pn.Card(
            pn.widgets.Select.from_param(self.param.template, sizing_mode="stretch_width"),
            self._description,
            pn.widgets.TextInput.from_param(self.param.engine_name, placeholder="automatic"),
            self._settings_box, self._strategy_box, self._venue_note,
            self._problems_alert, self._buttons["start"], self._start_confirm,
            title="Start an engine", collapsible=False, sizing_mode="stretch_width")
        engine_card = pn.Card(
            self._engine_header, self._engine_error, self._engine_state,
            pn.Row(pn.Column("**Open positions**", self._positions),
                   pn.Column("**Balances**", self._balances), sizing_mode="stretch_width"),
            self._plots(),
            title="Selected engine", collapsible=False, sizing_mode="stretch_width")
        log_tab = pn.Column(
            pn.Row(pn.widgets.TextInput.from_param(self.param.log_search, placeholder="text",
                                                   sizing_mode="stretch_width"),
                   pn.widgets.IntInput.from_param(self.param.log_lines, width=120),
                   sizing_mode="stretch_width"),
            self._log_view, name="Log", sizing_mode="stretch_width")
        return pn.Column(
            self._docker_alert, self._alert,
            pn.Row(pn.Column(list_card, engine_card, sizing_mode="stretch_width"),
                   pn.Column(start_card, width=440), sizing_mode="stretch_width"),
            pn.Tabs(log_tab, pn.Column(self._audit, name="Audit trail"),
                    sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    # -- the configuration panel --------------------------------------------------------------
    def _load_templates(self) -> None:
        try:
            names = self.engines.template_names()
        except WorkbenchError as e:
            self._show(f"Cannot read the engine templates: {e}", "danger")
            return
        self.param.template.objects = names
        if names:
            self.template = "paper_trading" if "paper_trading" in names else names[0]

    @param.depends("template", watch=True)
    def _on_template(self) -> None:
        self._cancel_pending()
        self._set_problems([])
        try:
            template = self.engines.template(self.template)
        except WorkbenchError as e:
            self.engine_template = self.engine_settings = None
            self._settings_box.objects = []
            self._show(f"Engine template **{self.template}** cannot be used:\n\n{e}", "danger")
            return
        self.engine_template = template
        self.engine_settings = parameters_from_specs(template.name, template.parameters)
        mode = template.mode.upper()
        catalog = (f"  \nReplays from the catalog `{self.workbench.catalog.location}`."
                   if template.mode != "live" else "")
        self._description.object = (f"**Mode: {mode}** — {template.title}.  \n"
                                    f"{template.description}{catalog}")
        sections = []
        placed = set()
        for title, keys in SECTIONS.items():
            specs = {k: template.parameters[k] for k in keys if k in template.parameters}
            placed.update(specs)
            if specs:
                sections.append(pn.Card(widgets_for(self.engine_settings, specs), title=title,
                                        collapsed=title == "Cache and logging",
                                        sizing_mode="stretch_width"))
        others = {k: s for k, s in template.parameters.items() if k not in placed}
        if others:
            sections.append(pn.Card(widgets_for(self.engine_settings, others),
                                    title="Other settings", sizing_mode="stretch_width"))
        self._settings_box.objects = sections
        for key in ("strategy", "bar_type"):
            if key in template.parameters:
                self.engine_settings.param.watch(self._on_strategy_choice, key)
        if "venue" in template.parameters:
            self.engine_settings.param.watch(lambda _: self._describe_venue(), "venue")
        self._on_strategy_choice()
        self._describe_venue()

    def _on_strategy_choice(self, *_events) -> None:
        name = getattr(self.engine_settings, "strategy", None)
        if not name:
            self.strategy_template = self.strategy_settings = None
            self._strategy_box.objects = []
            return
        try:
            strategy = self.workbench.templates.strategy(name)
        except WorkbenchError as e:
            self.strategy_template = self.strategy_settings = None
            self._strategy_box.objects = [pn.pane.Alert(str(e), alert_type="danger")]
            return
        previous = (self.strategy_settings if self.strategy_template is not None
                    and self.strategy_template.name == strategy.name else None)
        self.strategy_template = strategy
        self.strategy_settings = parameters_from_specs(strategy.name, strategy.parameters,
                                                       self._instrument_class())
        if previous is not None:
            # Same strategy, other instrument: keep what was typed, except instrument-dependent
            # defaults (trade size).
            for key, spec in strategy.parameters.items():
                if not spec.default_by_instrument_class:
                    setattr(self.strategy_settings, key, getattr(previous, key))
        self._strategy_box.objects = [pn.Card(
            pn.pane.Markdown(strategy.description, sizing_mode="stretch_width"),
            widgets_for(self.strategy_settings, strategy.parameters),
            title=f"Strategy parameters: {strategy.title}", sizing_mode="stretch_width")]

    def _instrument_class(self) -> str | None:
        instrument_id = instrument_id_of(str(getattr(self.engine_settings, "bar_type", "")))
        if not instrument_id:
            return None
        try:
            return self.workbench.catalog.instrument(instrument_id).instrument_class
        except WorkbenchError:  # not in the catalog (live venues): no instrument-specific defaults
            return None

    def _describe_venue(self) -> None:
        template = self.engine_template
        if template is None or template.mode != "live":
            self._venue_note.object = ""
            return
        venue = getattr(self.engine_settings, "venue", None)
        needed = template.environment_for(venue)
        rows = "\n".join(
            f"- `{name}` ({kind}): {'set' if os.environ.get(name) else '**not set**'}"
            for name, kind in needed.items())
        self._venue_note.object = (
            f"**Venue settings for {venue}** come from the server's environment and are passed "
            f"only into the engine container (never stored or shown):\n\n{rows}"
            if needed else "")

    def values(self) -> dict:
        """Engine and strategy parameters as the service takes them."""
        values = {}
        if self.engine_settings is not None:
            values.update(values_of(self.engine_settings, self.engine_template.parameters))
        if self.strategy_settings is not None:
            values.update(values_of(self.strategy_settings, self.strategy_template.parameters))
        return values

    # -- actions ------------------------------------------------------------------------------
    @param.depends("start", watch=True)
    async def _on_start(self) -> None:
        if self.busy or self.template is None:
            return
        self._cancel_pending()
        values, name = self.values(), self.engine_name.strip() or None
        self.busy = True
        try:
            config = await asyncio.to_thread(self.engines.validate, self.template, values, name)
        except ValidationError as e:
            self._set_problems(e.problems or [str(e)], e)
            self._show("The configuration is not valid; fix the fields listed and try again.",
                       "danger")
            return
        except WorkbenchError as e:
            self._show(f"Cannot check the configuration: {e}", "danger")
            return
        finally:
            self.busy = False
        self._set_problems([])
        self._pending_start = {"template": self.template, "values": values, "name": config.name,
                               "mode": config.mode, "warnings": list(config.warnings),
                               "given_name": name}
        self._ask("start", config.name, config.mode, self._start_summary(config))

    def _start_summary(self, config) -> str:
        strategy = ", ".join(f"{k}={v}" for k, v in config.strategy_parameters.items())
        return (f"Start **{config.mode}** engine **{config.name}** from template "
                f"`{config.template}`: strategy `{config.parameters.get('strategy')}` "
                f"({strategy}) on `{config.parameters.get('bar_type')}`, "
                f"{config.memory_limit_mb} MiB memory, {config.cpu_limit:g} CPU.")

    @param.depends("stop", watch=True)
    def _on_stop(self) -> None:
        info = self._selected_info()
        if info is not None:
            self._ask("stop", info.name, info.mode,
                      f"Stop engine **{info.name}** ({info.state}) gracefully? Its strategies stop "
                      "and the container exits.")

    @param.depends("restart", watch=True)
    def _on_restart(self) -> None:
        info = self._selected_info()
        if info is not None:
            self._ask("restart", info.name, info.mode,
                      f"Restart engine **{info.name}** ({info.state})? It is stopped (if active) "
                      "and a new session starts with the same configuration.")

    @param.depends("kill", watch=True)
    def _on_kill(self) -> None:
        info = self._selected_info()
        if info is not None:
            self._ask("kill", info.name, info.mode,
                      f"**Kill** engine **{info.name}** ({info.state}) now? Its container gets "
                      "SIGKILL: strategies do not stop cleanly and open orders stay at the venue.")

    def _selected_info(self):
        self._cancel_pending()
        if not self.selected:
            self._show("Select an engine in the list first.", "warning")
            return None
        try:
            return self.engines.get(self.selected)
        except WorkbenchError as e:
            self._show(str(e), "danger")
            return None

    def _ask(self, action: str, name: str, mode: str, summary: str) -> None:
        """Show the confirmation step for ``action``; live starts need the typed name."""
        self.confirm_text = ""
        self.pending = action
        typed = mode == "live" and action in ("start", "restart")
        parts = []
        if typed:
            parts.append(pn.pane.Alert(
                LIVE_RISKS + "".join(f"\n\n**{w}**" for w in (self._pending_start or {}).get(
                    "warnings", []) if action == "start")
                + f"\n\nType **{name}** below to confirm.",
                alert_type="danger", sizing_mode="stretch_width", css_classes=["live-warning"]))
        parts.append(pn.pane.Markdown(summary, sizing_mode="stretch_width"))
        if typed:
            parts.append(pn.widgets.TextInput.from_param(self.param.confirm_text, placeholder=name,
                                                         sizing_mode="stretch_width"))
        confirm_label = {"start": "Confirm start", "stop": "Confirm stop",
                         "restart": "Confirm restart", "kill": "Confirm emergency stop"}[action]
        parts.append(pn.Row(
            _button(self.param.confirm, name=confirm_label,
                                         button_type="danger" if typed or action == "kill"
                                         else "primary"),
            _button(self.param.cancel), sizing_mode="stretch_width"))
        box = self._start_confirm if action == "start" else self._action_confirm
        other = self._action_confirm if action == "start" else self._start_confirm
        other.objects, other.visible = [], False
        box.objects, box.visible = parts, True

    @param.depends("cancel", watch=True)
    def _on_cancel(self) -> None:
        self._cancel_pending()
        self._show("Cancelled; nothing was changed.", "info")

    def _cancel_pending(self) -> None:
        self.pending = None
        self.confirm_text = ""
        for box in (self._start_confirm, self._action_confirm):
            box.objects, box.visible = [], False

    @param.depends("confirm", watch=True)
    async def _on_confirm(self) -> None:
        action = self.pending
        if action is None or self.busy:
            return
        actor, typed = self.principal, self.confirm_text.strip() or None
        if action == "start":
            job = self._pending_start
            call = lambda: self.engines.start(job["template"], job["values"], principal=actor,
                                              name=job["given_name"], confirm=typed)
        else:
            session_id = self.selected
            call = {"stop": lambda: self.engines.stop(session_id, principal=actor),
                    "restart": lambda: self.engines.restart(session_id, principal=actor,
                                                            confirm=typed),
                    "kill": lambda: self.engines.emergency_stop(session_id,
                                                                principal=actor)}[action]
        self._cancel_pending()
        self.busy = True
        try:
            info = await asyncio.to_thread(call)
        except ValidationError as e:
            self._set_problems(e.problems or [str(e)], e)
            self._show(f"Refused: {e.summary}.", "danger")
            return
        except PermissionDenied as e:
            self._show(f"Refused: {e}", "danger")
            return
        except WorkbenchError as e:
            self._show(f"Could not {'emergency stop' if action == 'kill' else action}: {e}",
                       "danger")
            return
        finally:
            self.busy = False
        self.selected = info.session_id
        done = {"start": "is starting", "stop": "is stopping", "restart": "restarted as a new session",
                "kill": "was killed" if info.final_state == "Killed" else "was not running; "
                "marked Stopped"}[action]
        self._show(f"Engine **{info.name}** {done} (session `{info.session_id}`, {info.state}).",
                   "success")
        self.refresh()

    @param.depends("busy", watch=True)
    def _on_busy(self) -> None:
        for button in self._buttons.values():
            button.disabled = self.busy
        self._layout.loading = self.busy

    # -- refreshing ---------------------------------------------------------------------------
    def _start_polling(self) -> None:
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            return  # a notebook or a test: call refresh() when wanted
        self._poller = pn.state.add_periodic_callback(self.refresh, period=self.REFRESH_MS)
        # Panel stops a session's periodic callbacks when it ends; drop our handle too.
        pn.state.on_session_destroyed(lambda _context: self._stop_polling())

    def _stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    def refresh(self, check_docker: bool = False) -> None:
        """Re-read engines, the selected engine's state, metrics, log and the audit trail."""
        self._refreshes += 1
        self._refresh_docker(check_docker or self._refreshes % self.HEALTH_EVERY == 0)
        try:
            sessions = self.engines.list_sessions()
        except WorkbenchError as e:
            self._show(f"Cannot list engines: {e}", "danger")
            return
        self._refresh_table(sessions)
        if self.selected is None and sessions:
            active = [s for s in sessions if s.is_active]
            self.selected = (active or sessions)[0].session_id  # its watcher fills the details
        else:
            self._refresh_selected()
        self._refresh_audit()

    def _refresh_docker(self, ask_service: bool) -> None:
        if self.monitor is not None:
            state = self.monitor.state
            if state.docker_reachable is False:
                self.docker_status = (
                    f"**Docker is not reachable**, so engines cannot be started or stopped and "
                    f"their state is the last one known. {state.detail}  \nThe workbench keeps "
                    f"retrying: {state.failures} failed attempt(s), next in "
                    f"{state.next_poll_in:.0f} s.")
            else:
                self.docker_status = ""
        elif ask_service:
            try:
                health = self.engines.health()
            except WorkbenchError as e:
                health = {"docker": "unreachable", "detail": str(e)}
            if health.get("docker") != "reachable":
                self.docker_status = (f"**Docker is not reachable**, so engines cannot be "
                                      f"started or stopped. {health.get('detail', '')}")
            elif health.get("image_present") is False:
                self.docker_status = (f"**The engine image {health.get('image')} is not built.** "
                                      "Build it with `nautilus-workbench engine build-image`.")
            else:
                self.docker_status = ""

    @param.depends("docker_status", watch=True)
    def _on_docker_status(self) -> None:
        self._docker_alert.object = self.docker_status
        self._docker_alert.visible = bool(self.docker_status)

    def _refresh_table(self, sessions) -> None:
        frame = pd.DataFrame([{
            "State": _state_badge(s.state), "Name": s.name, "Mode": s.mode,
            "Template": s.template,
            "Started (UTC)": f"{(s.started_at or s.created_at):%Y-%m-%d %H:%M:%S}",
            "Session": s.session_id, "Actor": s.actor,
        } for s in sessions], columns=["State", "Name", "Mode", "Template", "Started (UTC)",
                                       "Session", "Actor"])
        if self._table_frame is None or not frame.equals(self._table_frame):
            self._table_frame = frame
            self._table.value = frame
        rows = frame.index[frame["Session"] == self.selected].tolist()
        if self._table.selection != rows:
            self._table.selection = rows

    def _on_table_selection(self, event) -> None:
        if event.new and self._table_frame is not None and event.new[0] < len(self._table_frame):
            session_id = self._table_frame["Session"].iloc[event.new[0]]
            if session_id != self.selected:
                self.selected = session_id

    @param.depends("selected", watch=True)
    def _on_selected(self) -> None:
        self._cancel_pending()
        self._refresh_selected()
        if self._table_frame is not None:
            self._table.selection = self._table_frame.index[
                self._table_frame["Session"] == self.selected].tolist()

    def _refresh_selected(self) -> None:
        if not self.selected:
            return
        try:
            info = self.engines.get(self.selected)
        except WorkbenchError as e:
            self._engine_header.object = html.escape(str(e))
            return
        e = html.escape
        self._engine_header.object = (
            f"<h4>{e(info.name)} &nbsp; {_state_badge(info.state)}</h4>"
            f"<div>{e(info.mode)} engine from <code>{e(info.template)}</code> · session "
            f"<code>{e(info.session_id)}</code> · container <code>{e(info.container_name)}</code>"
            f" · {info.memory_limit_mb} MiB, {info.cpu_limit:g} CPU</div>")
        self._engine_error.object = (f"**{info.state}:**\n\n```\n{info.error}\n```"
                                     if info.error else "")
        self._engine_error.visible = bool(info.error)
        self._show_status(info.status)
        self._refresh_metrics(info)
        self._refresh_log()

    def _show_status(self, status: dict) -> None:
        strategies = status.get("strategies") or {}
        listed = ", ".join(f"{k} ({v})" for k, v in strategies.items()) or "–"
        self._engine_state.object = (
            "| Trader | Strategies | Open orders | Orders | Fills | Realized PnL | "
            "Unrealized PnL |\n|---|---|---|---|---|---|---|\n"
            f"| {status.get('trader_state', '–')} | {listed} | {status.get('open_orders', '–')} | "
            f"{status.get('orders', '–')} | {status.get('fills', '–')} | "
            f"{_money(status.get('realized_pnl'))} | {_money(status.get('unrealized_pnl'))} |")
        positions = pd.DataFrame(status.get("positions") or [],
                                 columns=["instrument_id", "side", "quantity", "avg_px_open"])
        balances = pd.DataFrame([{"account": k, "total": _money(v)}
                                 for k, v in (status.get("balances") or {}).items()],
                                columns=["account", "total"])
        self._positions.object = positions
        self._balances.object = balances

    def _refresh_metrics(self, info) -> None:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=self.PLOT_MINUTES)
        try:
            rows = self.engines.metrics(info.session_id, since=since)
        except WorkbenchError:
            rows = []
        frame = pd.DataFrame(rows, columns=["ts", "name", "value"])
        wide = frame.pivot_table(index="ts", columns="name", values="value", aggfunc="last") \
            if len(frame) else pd.DataFrame()

        def column(name: str, scale: float = 1.0) -> pd.Series:
            key = f"nautilus.engine.{name}"
            return wide[key] / scale if key in wide else pd.Series(dtype=float)

        cpu = column("cpu_usage")
        memory = column("memory_usage", 2**20)
        limit = column("memory_limit", 2**20).reindex(memory.index)
        cpu_data = {"ts": pd.to_datetime(cpu.index).tolist(), "cpu": cpu.tolist()}
        memory_data = {"ts": pd.to_datetime(memory.index).tolist(), "memory": memory.tolist(),
                       "limit": limit.tolist()}
        if cpu_data != self._cpu_source.data:
            self._cpu_source.data = cpu_data
        if memory_data != self._memory_source.data:
            self._memory_source.data = memory_data

    @param.depends("log_search", "log_lines", watch=True)
    def _refresh_log(self) -> None:
        if not self.selected:
            return
        try:
            lines = self.engines.logs(self.selected, tail=self.log_lines,
                                      search=self.log_search or None)
        except WorkbenchError as e:
            lines = [f"(cannot read the log: {e})"]
        if not lines:
            lines = ["(no matching log lines)" if self.log_search else "(no log lines yet)"]
        self._log_view.object = ('<pre style="font-size:0.8em; white-space:pre-wrap; margin:0">'
                                 + html.escape("\n".join(lines)) + "</pre>")

    def _refresh_audit(self) -> None:
        try:
            entries = self.engines.audit_log(limit=200)
        except WorkbenchError:
            return
        frame = pd.DataFrame([{
            "Time (UTC)": f"{e['ts']:%Y-%m-%d %H:%M:%S}", "Actor": e["actor"],
            "Action": e["action"].removeprefix("engine."), "Engine": e["target"],
            "From": e["from_state"] or "", "To": e["to_state"] or "", "Outcome": e["outcome"],
            "Detail": e["detail"] or "",
        } for e in entries], columns=["Time (UTC)", "Actor", "Action", "Engine", "From", "To",
                                      "Outcome", "Detail"])
        if not frame.equals(self._audit.value):
            self._audit.value = frame

    # -- messages -----------------------------------------------------------------------------
    def _set_problems(self, problems: list[str], error: ValidationError | None = None) -> None:
        self.problems = list(problems)
        if problems and error is not None:
            self._problems_alert.object = f"**{error.summary}:**\n\n{_problem_list(error)}"
        self._problems_alert.visible = bool(problems)

    def _show(self, text: str, kind: str) -> None:
        self.message_kind = kind
        self.message = text
        self._alert.object = text
        self._alert.alert_type = kind
        self._alert.visible = bool(text)


class EmergencyStop(Viewer):
    """A button that kills every active engine after one confirmation (on every page)."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services whose engines it stops.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")


    arm = param.Event(label="EMERGENCY STOP", doc="Ask to confirm killing every active engine.")

    confirm = param.Event(label="Kill all engines now", doc="Kill every active engine.")

    cancel = param.Event(label="Cancel", doc="Do nothing.")

    armed = param.Boolean(default=False, doc="Waiting for the confirmation.")

    message = param.String(default="", doc="What the last emergency stop did.")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("EmergencyStop needs a workbench (services.Workbench.open()).")
        self._arm = _button(self.param.arm, button_type="danger",
                                                 css_classes=["emergency-stop"], width=170)
        self._confirm = _button(self.param.confirm, button_type="danger",
                                                     visible=False, width=190)
        self._cancel = _button(self.param.cancel, visible=False, width=90)
        self._text = pn.pane.Markdown("", styles={"color": "white"}, margin=(0, 10),
                                      css_classes=["emergency-stop-message"])
        self._layout = pn.Row(self._arm, self._confirm, self._cancel, self._text,
                              sizing_mode="fixed", align="center")

    def __panel__(self):
        return self._layout

    @param.depends("arm", watch=True)
    def _on_arm(self) -> None:
        try:
            active = [e for e in self.workbench.engines.list_sessions() if e.is_active]
        except WorkbenchError as e:
            self._say(f"Cannot list engines: {e}")
            return
        self.armed = True
        self._say(f"Kill {len(active)} active engine(s)? " if active else
                  "No engine is active; confirm to check again and kill any that started.")

    @param.depends("cancel", watch=True)
    def _on_cancel(self) -> None:
        self.armed = False
        self._say("")

    @param.depends("confirm", watch=True)
    async def _on_confirm(self) -> None:
        if not self.armed:
            return
        self.armed = False
        self._say("Killing…")
        try:
            killed = await asyncio.to_thread(self.workbench.engines.emergency_stop_all,
                                           principal=self.principal)
        except WorkbenchError as e:
            self._say(f"Emergency stop failed: {e}")
            return
        names = ", ".join(f"{e.name} ({e.session_id})" for e in killed)
        self._say(f"Emergency stop: killed {len(killed)} engine(s){': ' + names if names else ''}.")
        if pn.state.notifications is not None:
            pn.state.notifications.warning(self.message, duration=10000)

    @param.depends("armed", watch=True)
    def _on_armed(self) -> None:
        self._confirm.visible = self._cancel.visible = self.armed

    def _say(self, text: str) -> None:
        self.message = text
        self._text.object = text


__all__ = ["EmergencyStop", "EngineManager"]

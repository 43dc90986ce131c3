"""One engine: its state, risk banner, controls (stop, restart, the emergency tiers, trading
state, strategies), order ticket and blotter, risk limits, feed health, resources, log, audit
trail and alerts. Everything live comes from the live state; nothing polls the database.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from typing import ClassVar

import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool, Label
from bokeh.plotting import figure
from panel.viewable import Viewer

from components.confirm import ConfirmAction, button
from components.engines.alerts import AlertList
from components.engines.blotter import Blotter
from components.engines.common import Outcome, frame, money
from components.engines.feed import FeedHealthView
from components.engines.risk import RiskPanel
from components.engines.ticket import OrderTicket
from components.live import follow
from components.permissions import permission, reason_note
from components.theme import NEUTRAL, TRADING_COLOURS, signed_colour, state_badge
from services import Workbench, WorkbenchError
from services.engine.states import ACTIVE_STATES
from services.identity.principal import Principal
from services.live import LiveState

TIERS = {
    "halt": ("Halt new orders…", "warning",
             "**Halt** engine **{name}**: trading state HALTED, the risk engine denies every new "
             "order (open orders stay; positions stay)."),
    "cancel": ("Cancel all orders…", "warning",
               "**Cancel every open order** of engine **{name}** (every strategy's)."),
    "flatten": ("Flatten…", "danger",
                "**Flatten** engine **{name}**: cancel every open order and close every position "
                "with market orders (a halted engine stays halted)."),
    "kill": ("Kill…", "danger",
             "**Kill** engine **{name}** ({state}) now? Its container gets SIGKILL: strategies do "
             "not stop cleanly and open orders stay at the venue."),
}
AUDIT_COLUMNS = ["Time (UTC)", "Actor", "Action", "Engine", "From", "To", "Outcome", "Detail"]


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
        legend = chart.legend[0]
        chart.center.remove(legend)
        legend.orientation, legend.location = "horizontal", "top_left"
        chart.add_layout(legend, "above")  # never over the data
    # Shown while the source is empty (see EngineDetail._show_empty).
    chart.add_layout(Label(x=60, y=90, x_units="screen", y_units="screen", name="no-data",
                           text="No samples yet", text_color="#8a8f98",
                           text_font_size="11pt"))
    return chart


class EngineDetail(Viewer):
    """The selected engine, live, with every control that acts on it."""

    workbench = param.ClassSelector(class_=Workbench, doc="Services the controls act through.")

    live = param.ClassSelector(class_=LiveState, doc="The live state the view follows.")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    session_id = param.String(default=None, allow_None=True, doc="The engine shown.")

    stop = param.Event(label="Stop…", doc="Ask to confirm a graceful stop.")

    restart = param.Event(label="Restart…", doc="Ask to confirm a restart.")

    halt = param.Event(label=TIERS["halt"][0], doc="Emergency tier 1: no new orders.")

    cancel_all = param.Event(label=TIERS["cancel"][0], doc="Emergency tier 2: cancel all.")

    flatten = param.Event(label=TIERS["flatten"][0], doc="Emergency tier 3: cancel and close.")

    kill = param.Event(label=TIERS["kill"][0], doc="Emergency tier 4: kill the container.")

    trading_state = param.Selector(default="ACTIVE", objects=["ACTIVE", "REDUCING", "HALTED"],
                                   label="Trading state", doc="Trading state to set.")

    set_trading = param.Event(label="Set…", doc="Ask to confirm the trading state.")

    strategy = param.Selector(default=None, objects=[], doc="Strategy the buttons act on.")

    pause = param.Event(label="Pause…", doc="Pause the strategy (NautilusTrader DEGRADED).")

    resume = param.Event(label="Resume…", doc="Resume a paused strategy.")

    stop_strategy = param.Event(label="Stop strategy…", doc="Stop the strategy.")

    log_search = param.String(default="", label="Search the log",
                              doc="Show only lines with this text.")

    log_lines = param.Integer(default=200, bounds=(10, 5000), label="Lines",
                              doc="How many of the newest log lines to show.")

    # Minutes of resource history the plots keep.
    PLOT_MINUTES: ClassVar[int] = 15
    # The log is re-read at most this often while status lines arrive (seconds).
    LOG_EVERY_S: ClassVar[float] = 3.0

    def __init__(self, **params):
        super().__init__(**params)
        self.outcome = Outcome()
        self.confirmation = ConfirmAction()
        kw = dict(workbench=self.workbench, live=self.live, principal=self.principal)
        self.ticket = OrderTicket(**kw)
        self.blotter = Blotter(**kw)
        self.risk = RiskPanel(**kw)
        self.feed = FeedHealthView(live=self.live)
        self.alerts = AlertList(workbench=self.workbench, live=self.live)
        self._children = (self.ticket, self.blotter, self.risk, self.feed, self.alerts)
        self._log_read = 0.0
        self._shown_state: tuple | None = None
        self._build()
        follow(self.live, ["engines"], self._on_engine)
        follow(self.live, ["resources"], self._on_resources)
        self._on_session()

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> None:
        self._header = pn.pane.HTML("Select an engine in the list.",
                                    sizing_mode="stretch_width", css_classes=["engine-header"])
        self._error = pn.pane.Alert("", alert_type="danger", visible=False,
                                    sizing_mode="stretch_width")
        self._state = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["engine-state"])
        self._banner = pn.pane.Alert("", alert_type="danger", visible=False,
                                     sizing_mode="stretch_width", css_classes=["risk-banner"],
                                     styles={"background": "#c62828", "color": "white",
                                             "border-radius": "6px", "padding": "4px 12px"})
        self.risk.param.watch(self._on_banner, "banner")
        self._message = pn.pane.Alert("", visible=False, sizing_mode="stretch_width",
                                      css_classes=["engine-message"])
        self.outcome.param.watch(self._show, ["message", "message_kind"])
        self._buttons = {name: button(self.param[name], color=kind)
                         for name, kind in (("stop", "warning"), ("restart", "default"))}
        for tier, event in (("halt", "halt"), ("cancel", "cancel_all"), ("flatten", "flatten"),
                            ("kill", "kill")):
            self._buttons[event] = button(self.param[event], color=TIERS[tier][1],
                                          width=140, css_classes=[f"tier-{tier}"])
        for name in ("set_trading", "pause", "resume", "stop_strategy"):
            self._buttons[name] = button(self.param[name], align="end", width=120)
        self._note = reason_note()
        # Rows of buttons wrap: beside the start form at 1280 px a Row would overlap them.
        controls = pn.Column(
            pn.Row(self._buttons["stop"], self._buttons["restart"], sizing_mode="stretch_width"),
            pn.pane.Markdown("**Emergency stop, tier by tier**", margin=(0, 5)),
            pn.FlexBox(*(self._buttons[e] for e in ("halt", "cancel_all", "flatten", "kill")),
                       flex_wrap="wrap", sizing_mode="stretch_width",
                       css_classes=["emergency-tiers"]),
            pn.Row(pn.widgets.Select.from_param(self.param.trading_state, width=150),
                   self._buttons["set_trading"], sizing_mode="stretch_width"),
            pn.FlexBox(pn.widgets.Select.from_param(self.param.strategy, width=200),
                       *(self._buttons[b] for b in ("pause", "resume", "stop_strategy")),
                       flex_wrap="wrap", align_items="flex-end", sizing_mode="stretch_width"),
            self._note, self.confirmation, self._message, sizing_mode="stretch_width")
        self._cpu = ColumnDataSource({"ts": [], "cpu": []})
        self._memory = ColumnDataSource({"ts": [], "memory": [], "limit": []})
        self._charts = [
            (_time_figure("CPU", "CPU (% of one core)", self._cpu,
                          [("cpu", "CPU", "#0f6e8c")], "@cpu{0.0} %"), self._cpu),
            (_time_figure("Memory", "Memory (MiB)", self._memory,
                          [("memory", "used", "#0f6e8c"), ("limit", "limit", "#d62728")],
                          "@memory{0,0} MiB of @limit{0,0} MiB"), self._memory)]
        plots = pn.Row(
            *(pn.pane.Bokeh(chart, sizing_mode="stretch_width") for chart, _ in self._charts),
            sizing_mode="stretch_width", css_classes=["resource-plots"])
        self._log = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["engine-log"],
                                 styles={"max-height": "360px", "overflow": "auto"})
        self._audit = pn.widgets.Tabulator(frame([], AUDIT_COLUMNS), show_index=False,
                                           disabled=True, height=300, sizing_mode="stretch_width",
                                           css_classes=["audit-trail"])
        log_tab = pn.Column(
            pn.Row(pn.widgets.TextInput.from_param(self.param.log_search, placeholder="text",
                                                   sizing_mode="stretch_width"),
                   pn.widgets.IntInput.from_param(self.param.log_lines, width=120),
                   sizing_mode="stretch_width"),
            self._log, sizing_mode="stretch_width")
        tabs = pn.Tabs(("Orders and positions",
                        pn.Column(self.blotter, self.ticket, sizing_mode="stretch_width")),
                       ("Risk limits", self.risk), ("Feed health", self.feed),
                       ("Resources", plots), ("Log", log_tab), ("Audit trail", self._audit),
                       ("Alerts", self.alerts), sizing_mode="stretch_width", dynamic=False,
                       # The tab strip wraps: at 1280 px "Audit trail" and "Alerts" ran off
                       # the card's edge, out of reach.
                       stylesheets=[".bk-headers-wrapper { flex-wrap: wrap; }"])
        # Opening the trail reads it again: another process (the CLI, the API of another
        # server) may have acted on this engine without changing its state here.
        self._audit_tab = len(tabs) - 2
        tabs.param.watch(self._on_tab, "active")
        self._layout = pn.Column(
            self._header, self._banner, self._error, self._state, controls, tabs,
            sizing_mode="stretch_width", css_classes=["engine-detail"])

    def __panel__(self):
        return self._layout

    # -- following ----------------------------------------------------------------------------
    def info(self):
        return self.live.engines.get(self.session_id) if self.session_id else None

    @param.depends("session_id", watch=True)
    def _on_session(self) -> None:
        self.confirmation.dismiss()
        for child in self._children:
            if child is not self.alerts:
                child.session_id = self.session_id
        self.alerts.session_id = self.session_id
        self._shown_state = None
        # The plots' sources are Bokeh models: changed only under the session's lock.
        pn.state.execute(self._reset_plots, schedule=True)
        self._on_engine()
        self.refresh_log()
        self.refresh_audit()
        info = self.info()
        if info is not None and info.state == "Running":
            pn.state.execute(self.blotter.load)

    def _on_engine(self) -> None:
        info = self.info()
        if info is None:
            self._header.object = "Select an engine in the list."
            for widget in self._buttons.values():  # nothing to act on: none looks active
                widget.disabled, widget.description = True, "Select an engine in the list first."
            return
        e = html.escape
        self._header.object = (
            f"<h4>{e(info.name)} &nbsp; {state_badge(info.state)}</h4>"
            f"<div>{e(info.mode)} engine from <code>{e(info.template)}</code> · session "
            f"<code>{e(info.session_id)}</code> · container <code>{e(info.container_name)}</code>"
            f" · {info.memory_limit_mb} MiB, {info.cpu_limit:g} CPU</div>")
        self._error.object = f"**{info.state}:**\n\n```\n{info.error}\n```" if info.error else ""
        self._error.visible = bool(info.error)
        self._show_status(info.status, ran_before=info.state not in ACTIVE_STATES)
        strategies = sorted(info.status.get("strategies") or {})
        if strategies != self.param.strategy.objects:
            self.param.strategy.objects = strategies
            if self.strategy not in strategies:
                self.strategy = strategies[0] if strategies else None
        self._permissions(info)
        state = (info.state, info.final_state, info.error)
        if state != self._shown_state:  # a state change: what it did shows in the audit trail
            self._shown_state = state
            self.refresh_audit()
        if time.monotonic() - self._log_read >= self.LOG_EVERY_S:
            self.refresh_log()

    def _permissions(self, info) -> None:
        """Disable what this user may not do to this engine (live engines need live_trader),
        and what a stopped engine cannot do; say why."""
        live = info.mode == "live"
        checks = {action: permission(self.workbench, self.principal, action, live=live)
                  for action in ("engine.stop", "engine.restart", "engine.emergency_stop",
                                 "engine.command")}
        needs = {"stop": "engine.stop", "restart": "engine.restart",
                 "kill": "engine.emergency_stop", "halt": "engine.emergency_stop",
                 "cancel_all": "engine.emergency_stop",
                 "flatten": "engine.emergency_stop", "set_trading": "engine.command",
                 "pause": "engine.command", "resume": "engine.command",
                 "stop_strategy": "engine.command"}
        running = info.state == "Running"
        # Kill and restart work from any state; stop needs an engine that is starting or
        # running; commands need a running node.
        usable = {"stop": info.state in ("Starting", "Running"), "restart": True, "kill": True}
        for name, action in needs.items():
            allowed, reason = checks[action]
            widget = self._buttons[name]
            widget.disabled = not allowed or not usable.get(name, running)
            widget.description = None if allowed else reason
        self._note.object = "\n\n".join(sorted({r for ok, r in checks.values() if not ok}))
        self._note.visible = bool(self._note.object)

    def _show_status(self, status: dict, ran_before: bool = False) -> None:
        e = html.escape
        strategies = status.get("strategies") or {}
        listed = ", ".join(f"{k} ({v})" for k, v in strategies.items()) or "–"
        trading = status.get("trading_state")
        colour = TRADING_COLOURS.get(trading, NEUTRAL)
        cells = [status.get("trader_state", "–"), None, listed, status.get("open_orders", "–"),
                 status.get("orders", "–"), status.get("fills", "–"),
                 money(status.get("realized_pnl")), money(status.get("unrealized_pnl"))]
        badge = f'<b style="color:{colour}">{e(trading)}</b>' if trading else "–"
        shown = [badge if value is None else e(str(value)) for value in cells]
        for column, key in ((6, "realized_pnl"), (7, "unrealized_pnl")):  # gain or loss colour
            shown[column] = (f'<span style="color:{signed_colour(status.get(key))}">'
                             f"{shown[column]}</span>")
        heads = ["Trader", "Trading", "Strategies", "Open orders", "Orders", "Fills",
                 "Realized PnL", "Unrealized PnL"]
        self._state.object = (
            '<table class="engine-state-table" style="width:100%"><tr>'
            + "".join(f"<th style='text-align:left'>{h}</th>" for h in heads) + "</tr><tr>"
            + "".join(f"<td>{c}</td>" for c in shown) + "</tr></table>"
            # A stopped engine's node reported last while it ran: say so, or "RUNNING, ACTIVE"
            # beside a Stopped badge reads as a contradiction.
            + ('<div class="engine-state-note">Last reported while the engine ran.</div>'
               if ran_before and status else ""))

    def _on_banner(self, *_events) -> None:
        self._banner.object, self._banner.visible = self.risk.banner, bool(self.risk.banner)

    def _reset_plots(self) -> None:
        self._load_history()
        self._on_resources()  # the latest sample the live state holds
        self._show_empty()

    def _show_empty(self) -> None:
        """'No samples yet' on a chart with nothing to draw, not a bare frame."""
        for chart, source in self._charts:
            chart.select_one({"name": "no-data"}).visible = not len(source.data["ts"])

    def _load_history(self) -> None:
        """The plots' history from the recorded metrics, once per engine shown."""
        self._cpu.data, self._memory.data = {"ts": [], "cpu": []}, {"ts": [], "memory": [],
                                                                    "limit": []}
        if not self.session_id:
            return
        since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=self.PLOT_MINUTES)
        try:
            rows = self.workbench.engines.metrics(self.session_id, since=since)
        except WorkbenchError:
            return
        table = pd.DataFrame(rows, columns=["ts", "name", "value"])
        if not len(table):
            return
        wide = table.pivot_table(index="ts", columns="name", values="value", aggfunc="last")

        def column(name: str, scale: float = 1.0) -> list:
            key = f"nautilus.engine.{name}"
            return (wide[key] / scale).tolist() if key in wide else [None] * len(wide)

        times = pd.to_datetime(wide.index).tolist()
        self._cpu.data = {"ts": times, "cpu": column("cpu_usage")}
        # Each source gets its own list: a stream extends its columns in place.
        self._memory.data = {"ts": list(times), "memory": column("memory_usage", 2**20),
                             "limit": column("memory_limit", 2**20)}

    def _on_resources(self) -> None:
        sample = self.live.resources.get(self.session_id) if self.session_id else None
        if not sample:
            return
        ts = pd.Timestamp(sample["ts"], unit="s", tz="UTC")
        times = self._cpu.data["ts"]
        if times and pd.Timestamp(times[-1]).tz_localize(None) >= ts.tz_localize(None):
            return
        keep = self.PLOT_MINUTES * 60
        self._cpu.stream({"ts": [ts], "cpu": [sample.get("cpu_usage")]}, rollover=keep)
        self._memory.stream({"ts": [ts], "memory": [(sample.get("memory_usage") or 0) / 2**20],
                             "limit": [(sample.get("memory_limit") or 0) / 2**20]},
                            rollover=keep)
        self._show_empty()

    @param.depends("log_search", "log_lines", watch=True)
    def refresh_log(self) -> None:
        self._log_read = time.monotonic()
        if not self.session_id:
            return
        try:
            lines = self.workbench.engines.logs(self.session_id, tail=self.log_lines,
                                                search=self.log_search or None)
        except WorkbenchError as e:
            lines = [f"(cannot read the log: {e})"]
        if not lines:
            lines = ["(no matching log lines)" if self.log_search else "(no log lines yet)"]
        self._log.object = ('<pre style="font-size:0.8em; white-space:pre-wrap; margin:0">'
                            + html.escape("\n".join(lines)) + "</pre>")

    def _on_tab(self, event) -> None:
        if event.new == self._audit_tab:
            self.refresh_audit()

    def refresh_audit(self) -> None:
        if not self.session_id:
            return
        try:
            entries = self.workbench.engines.audit_log(self.session_id, limit=200)
        except WorkbenchError:
            return
        table = frame([{
            "Time (UTC)": f"{e['ts']:%Y-%m-%d %H:%M:%S}", "Actor": e["actor"],
            "Action": e["action"].removeprefix("engine."), "Engine": e["target"],
            "From": e["from_state"] or "", "To": e["to_state"] or "", "Outcome": e["outcome"],
            "Detail": e["detail"] or ""} for e in entries], AUDIT_COLUMNS)
        if not table.equals(self._audit.value):
            self._audit.value = table

    # -- actions ------------------------------------------------------------------------------
    def _ask(self, summary: str, call, done: str, *, label: str, danger: bool = False,
             expected: str = "", warning: str = "") -> None:
        info = self.info()
        if info is None:
            self.outcome.say("Select an engine in the list first.", "warning")
            return

        async def act(typed: str) -> None:
            result = await self.outcome.run(lambda: call(info, typed), done=done,
                                            failed="Refused")
            if result is not None:
                self.refresh_audit()

        self.confirmation.ask(summary, act, label=label, danger=danger, expected=expected,
                              warning=warning)

    @param.depends("stop", watch=True)
    def _on_stop(self) -> None:
        info = self.info()
        self._ask(f"Stop engine **{info.name}** ({info.state}) gracefully? Its strategies stop "
                  "and the container exits." if info else "",
                  lambda i, _t: self.workbench.engines.stop(i.session_id, principal=self.principal),
                  "Stopping.", label="Confirm stop")

    @param.depends("restart", watch=True)
    def _on_restart(self) -> None:
        info = self.info()
        if info is None:
            return self._ask("", None, "", label="")
        live = info.mode == "live"
        self._ask(f"Restart engine **{info.name}** ({info.state})? It is stopped (if active) "
                  "and a new session starts with the same configuration.",
                  lambda i, typed: self.workbench.engines.restart(
                      i.session_id, principal=self.principal, confirm=typed or None),
                  "Restarted as a new session.", label="Confirm restart", danger=live,
                  expected=info.name if live else "",
                  warning=f"This starts live engine **{info.name}** again. Type its name to "
                          "confirm." if live else "")

    def _tier(self, tier: str) -> None:
        info = self.info()
        label, kind, text = TIERS[tier]
        commands = self.workbench.commands
        self._ask(text.format(name=info.name, state=info.state) if info else "",
                  lambda i, _t: commands.emergency(i.session_id, tier, principal=self.principal),
                  {"halt": "Trading HALTED.", "cancel": "Cancel requested for every open order.",
                   "flatten": "Flattened.", "kill": "Killed."}[tier],
                  label=f"Confirm: {label.rstrip('…').lower()}", danger=kind == "danger")

    @param.depends("halt", watch=True)
    def _on_halt(self) -> None:
        self._tier("halt")

    @param.depends("cancel_all", watch=True)
    def _on_cancel_all(self) -> None:
        self._tier("cancel")

    @param.depends("flatten", watch=True)
    def _on_flatten(self) -> None:
        self._tier("flatten")

    @param.depends("kill", watch=True)
    def _on_kill(self) -> None:
        self._tier("kill")

    @param.depends("set_trading", watch=True)
    def _on_set_trading(self) -> None:
        state, commands = self.trading_state, self.workbench.commands
        self._ask(f"Set the trading state to **{state}**?",
                  lambda i, _t: commands.set_trading_state(i.session_id, state,
                                                           principal=self.principal),
                  f"Trading {state}.", label="Confirm trading state",
                  danger=state != "ACTIVE")

    def _strategy_action(self, action: str) -> None:
        strategy, commands = self.strategy, self.workbench.commands
        if not strategy:
            self.outcome.say("This engine reports no strategy.", "warning")
            return
        what = {"pause": "Pause (no data or events reach it; its orders and positions stay)",
                "resume": "Resume", "stop": "Stop (its own on_stop runs: it may cancel and "
                                           "close)"}[action]
        self._ask(f"{what} strategy **{strategy}**?",
                  lambda i, _t: commands.strategy(i.session_id, action, strategy,
                                                  principal=self.principal),
                  f"Strategy {strategy}: {action} done.", label=f"Confirm {action}",
                  danger=action == "stop")

    @param.depends("pause", watch=True)
    def _on_pause(self) -> None:
        self._strategy_action("pause")

    @param.depends("resume", watch=True)
    def _on_resume(self) -> None:
        self._strategy_action("resume")

    @param.depends("stop_strategy", watch=True)
    def _on_stop_strategy(self) -> None:
        self._strategy_action("stop")

    def _show(self, *_events) -> None:
        self._message.object = self.outcome.message
        self._message.alert_type = self.outcome.message_kind
        self._message.visible = bool(self.outcome.message)

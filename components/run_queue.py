"""The backtest queue: every queued, running and paused run with its progress, simulated time,
events, ETA, CPU and memory, and controls to pause, resume and cancel it."""

from __future__ import annotations

import logging

import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from components.confirm import ConfirmAction
from components.formats import parameters_text, progress_cell, run_choices, run_name
from components.live import follow, on_session_end
from components.offloop import run_off_loop
from components.permissions import permission, reason_note
from services import Workbench, WorkbenchError
from services.backtest.eta import describe as describe_eta
from services.identity.principal import Principal

log = logging.getLogger(__name__)


# What a user watches first (which run, how far, how long still); the id last.
_COLUMNS = {
    "name": "Run", "parameters": "Parameters", "status": "Status", "progress": "Progress",
    "eta": "ETA", "phase": "Phase", "sim_time": "Simulated time", "events": "Events",
    "cpu": "CPU (s)", "memory": "Memory (MB)", "runtime": "Runtime", "strategy": "Strategy",
    "bar_type": "Bar type", "error": "Note", "run_id": "Run id",
}


def runs_frame(runs) -> pd.DataFrame:
    """The queue table: one row per run, numbers rounded for display."""
    rows = [{
        "name": run_name(r), "run_id": r.run_id, "status": r.status,
        "progress": round((1.0 if r.status == "Completed" else r.progress or 0.0) * 100, 1),
        "phase": r.phase or "", "parameters": parameters_text(r),
        "sim_time": f"{r.sim_time:%Y-%m-%d %H:%M}" if r.sim_time else "",
        "events": f"{r.events:,}" if r.events else "",
        "eta": describe_eta(r.eta),
        "cpu": round(r.cpu_seconds, 1) if r.cpu_seconds is not None else None,
        "memory": round(r.memory_bytes / 1e6) if r.memory_bytes else None,
        "runtime": r.runtime, "strategy": r.strategy, "bar_type": r.bar_type,
        "error": r.error or "",
    } for r in runs]
    return pd.DataFrame(rows, columns=list(_COLUMNS))


class RunQueue(Viewer):
    """Queued, running and recent backtests; pause, resume or cancel the selected one."""

    workbench = param.ClassSelector(class_=Workbench, doc="""
        Services the runs are listed from and controlled through.""")

    principal = param.ClassSelector(class_=Principal, default=None, allow_None=True, doc="""
        Who acts: the signed-in user in the app; None in a notebook (the local OS user).""")

    sweep_id = param.String(default=None, allow_None=True, doc="""
        Show only the runs of this sweep (None: every run).""")

    limit = param.Integer(default=100, bounds=(1, 10_000), doc="""
        At most this many runs are listed (active ones first) when no sweep is chosen; a
        sweep's runs are all listed.""")

    page = param.Integer(default=0, bounds=(0, None), doc="""
        The page of the table on display (from 0): only its rows go to the browser.""")

    page_size = param.Integer(default=15, bounds=(1, 200), doc="Rows per page.")

    previous_page = param.Event(label="‹ Previous", doc="Show the previous page.")

    next_page = param.Event(label="Next ›", doc="Show the next page.")

    total = param.Integer(default=0, doc="How many runs the table pages through (read-only).")

    selected = param.Selector(default=None, objects=[], allow_None=True, label="Run", doc="""
        The run the controls act on.""")

    pause = param.Event(label="Pause", doc="Pause the selected run (its worker stops using CPU).")

    resume = param.Event(label="Resume", doc="Resume the selected paused run.")

    cancel = param.Event(label="Cancel", doc="Cancel the selected queued, running or paused run.")

    refresh = param.Event(label="Refresh", doc="Reload the table now.")

    runs = param.DataFrame(default=None, allow_None=True, doc="The table on display (read-only).")

    message = param.String(default="", doc="Outcome of the last control action (markdown).")

    def __init__(self, **params):
        super().__init__(**params)
        if self.workbench is None:
            raise ValueError("RunQueue needs a workbench (services.Workbench.open()).")
        # Paged here, not in the browser: a 10,000-run sweep sends one page of rows, and a
        # live update of the page costs the page, not the sweep.
        self._table = pn.widgets.Tabulator(
            runs_frame([]), titles=_COLUMNS, show_index=False, disabled=True, selectable=1,
            pagination=None, sizing_mode="stretch_width",
            layout="fit_data_stretch", hidden_columns=["bar_type"],
            formatters={"progress": progress_cell()},
        )
        self._table.param.watch(self._on_row_selected, "selection")
        self._alert = pn.pane.Alert(self.param.message, alert_type="info", visible=False,
                                    sizing_mode="stretch_width")
        self._note = reason_note()
        self._pager = pn.pane.Markdown("", margin=(8, 10))
        self._runs: list = []
        self.confirmation = ConfirmAction()
        self._buttons = {
            "pause": pn.widgets.Button.from_param(self.param.pause, width=100),
            "resume": pn.widgets.Button.from_param(self.param.resume, width=100),
            "cancel": pn.widgets.Button.from_param(self.param.cancel, color="danger",
                                                   width=100),
        }
        self._layout = pn.Column(
            # Wraps rather than widening the page where the queue sits beside a form.
            pn.FlexBox(pn.widgets.Select.from_param(self.param.selected, width=420),
                       *self._buttons.values(),
                       pn.widgets.Button.from_param(self.param.refresh, width=100),
                       align_items="flex-end", sizing_mode="stretch_width"),
            self.confirmation, self._note, self._alert, self._table,
            pn.Row(pn.widgets.Button.from_param(self.param.previous_page, width=110),
                   pn.widgets.Button.from_param(self.param.next_page, width=110),
                   self._pager),
            sizing_mode="stretch_width",
        )
        # The process-level live state, refreshed once a second for every session at once.
        self._live = self.workbench.live.start()
        self._watching = None
        self._follow_sweep()
        self._show(self._current())
        follow(self._live, ["runs", "sweep_runs"], lambda: self._show(self._current()))
        on_session_end(lambda: self._unfollow())

    def __panel__(self):
        return self._layout

    def _current(self):
        """The runs to page through, from the live state (or the database while it has none
        yet): a sweep's all, active first."""
        if not self.sweep_id:
            return self._live.runs[:self.limit]
        snapshot = self._live.sweep_runs.get(self.sweep_id)
        if snapshot is not None:
            return snapshot.runs
        return self.workbench.backtests.list_runs(limit=self.page_size, sweep_id=self.sweep_id,
                                                  active_first=True)

    def _follow_sweep(self) -> None:
        if self._watching == self.sweep_id:
            return
        self._unfollow()
        if self.sweep_id:
            self._live.watch_sweep(self.sweep_id)
            self._watching = self.sweep_id

    def _unfollow(self) -> None:
        if self._watching:
            self._live.unwatch_sweep(self._watching)
            self._watching = None

    @param.depends("sweep_id", watch=True)
    def _on_sweep(self) -> None:
        self._follow_sweep()
        with param.parameterized.discard_events(self):
            self.page = 0
        self._show(self._current())

    @param.depends("previous_page", watch=True)
    def _on_previous(self) -> None:
        self.page = max(self.page - 1, 0)

    @param.depends("next_page", watch=True)
    def _on_next(self) -> None:
        self.page = min(self.page + 1, self._last_page())

    def _last_page(self) -> int:
        return max((self.total - 1) // self.page_size, 0)

    @param.depends("page", "page_size", watch=True)
    def _on_page(self) -> None:
        self._show(self._runs)

    @param.depends("refresh", watch=True)
    def _load(self) -> None:
        """Read the runs now (the Refresh button)."""
        try:
            runs = (self.workbench.backtests.list_runs(limit=self.limit, active_first=True)
                    if not self.sweep_id else self._current())
        except WorkbenchError as e:
            self._say(f"Cannot list runs: {e}", "danger")
            return
        self._show(runs)

    def _show(self, runs) -> None:
        self._runs = runs
        self.total = len(runs)
        if self.page > self._last_page():
            with param.parameterized.discard_events(self):
                self.page = self._last_page()
        first = self.page * self.page_size
        runs = list(runs[first:first + self.page_size])
        frame = runs_frame(runs)
        self._pager.object = (f"Runs {first + 1:,}-{first + len(runs):,} of {self.total:,}"
                              if runs else "No runs.")
        self._statuses = {r.run_id: r.status for r in runs}
        self._owners = {r.run_id: r.actor for r in runs}
        if self.runs is None or not frame.equals(self.runs):
            self.runs = frame
            self._table.value = frame
        ids = [r.run_id for r in runs]
        if ids != self.param.selected.objects:
            current = self.selected
            self.param.selected.objects = run_choices(runs)
            self.selected = current if current in ids else next(
                (r.run_id for r in runs if not r.is_final), ids[0] if ids else None)
        self._enable_buttons()

    @param.depends("selected", watch=True)
    def _enable_buttons(self) -> None:
        status = getattr(self, "_statuses", {}).get(self.selected)
        allowed, reason = permission(self.workbench, self.principal, "backtest.control",
                                     owner=getattr(self, "_owners", {}).get(self.selected))
        self._buttons["pause"].disabled = not allowed or status != "Running"
        self._buttons["resume"].disabled = not allowed or status != "Paused"
        self._buttons["cancel"].disabled = not allowed or status not in ("Queued", "Running",
                                                                         "Paused")
        self._note.object, self._note.visible = reason, bool(self.selected) and not allowed

    def _on_row_selected(self, event) -> None:
        if event.new:
            self.selected = self._table.value.iloc[event.new[0]]["run_id"]

    @param.depends("pause", watch=True)
    def _on_pause(self) -> None:
        self._control("pause", "paused")

    @param.depends("resume", watch=True)
    def _on_resume(self) -> None:
        self._control("resume", "resumed")

    @param.depends("cancel", watch=True)
    def _on_cancel(self) -> None:
        """Ask first: a cancelled run cannot be resumed."""
        run_id = self.selected
        if not run_id:
            self._say("Select a run first.", "warning")
            return
        status = getattr(self, "_statuses", {}).get(run_id, "")
        self.confirmation.ask(
            f"Cancel run `{run_id}`{f' ({status})' if status else ''}? Its worker stops and the "
            "run ends Cancelled; it cannot be resumed.",
            lambda _typed: self._control("cancel", "cancelled", run_id),
            label="Cancel run", danger=True, dismiss="Keep it")

    def _control(self, action: str, done: str, run_id: str | None = None) -> None:
        run_id = run_id or self.selected
        if not run_id:
            self._say("Select a run first.", "warning")
            return

        def finished(outcome) -> None:
            if isinstance(outcome, WorkbenchError):
                self._say(f"Could not {action} run `{run_id}`: {outcome}", "danger")
            elif isinstance(outcome, Exception):
                log.error("%s of run %s failed", action, run_id, exc_info=outcome)
                self._say(f"Could not {action} run `{run_id}`; the details are in the server "
                          "log.", "danger")
            else:
                self._say(f"Run `{outcome.run_id}` {done}: now **{outcome.status}**.", "success")
            self._load()

        run_off_loop(lambda: getattr(self.workbench.backtests, action)(
            run_id, principal=self.principal), finished, busy=self._table)

    def _say(self, text: str, kind: str) -> None:
        self.message = text
        self._alert.alert_type = kind
        self._alert.visible = bool(text)

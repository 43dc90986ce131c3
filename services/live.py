"""One process-level picture of what is going on — runs, sweeps, the scheduler, engines and
the engine monitor's health — that every browser session watches through param.

A single feeder thread per process refreshes it from the database once a second (and at once
when this process's scheduler changes a run), so the load does not grow with open tabs: a
component depends on ``live.param.runs`` instead of polling the database on a timer. The
engine monitor writes ``engines`` and ``monitor`` after each of its polls.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import param

from services.backtest.records import ACTIVE_STATES, QUEUED, RunInfo, SweepSummary

log = logging.getLogger(__name__)

REFRESH_S = 1.0
RECENT_RUNS = 200  # active runs first, then the newest
RECENT_WALK_FORWARDS = 50


@dataclass(frozen=True, eq=False)
class SweepRuns:
    """Every run of one sweep, the running and paused first, then the queued, then the
    finished (newest first within each); ``version`` changes whenever any of them does, so
    comparing two snapshots costs nothing whatever the sweep's size."""

    sweep_id: str
    version: int
    runs: tuple[RunInfo, ...]

    def __eq__(self, other) -> bool:
        return isinstance(other, SweepRuns) and (self.sweep_id, self.version) == (
            other.sweep_id, other.version)

    def __hash__(self) -> int:
        return hash((self.sweep_id, self.version))


def _order(run: RunInfo) -> tuple:
    rank = 0 if run.status in ACTIVE_STATES else 1 if run.status == QUEUED else 2
    return rank, -run.created_at.timestamp(), run.run_id


class LiveState(param.Parameterized):
    """What every session shows live; changed only by the feeder, the monitor, the scheduler."""

    runs = param.List(default=[], item_type=RunInfo, doc="""
        Active runs first, then the newest (at most RECENT_RUNS).""")

    sweeps = param.List(default=[], item_type=SweepSummary, doc="Recent sweeps, newest first.")

    scheduler = param.String(default="", doc="""
        Who runs the installation's backtests ('' when no scheduler runs).""")

    engines = param.List(default=[], doc="Every engine session (EngineInfo), newest first.")

    monitor = param.Dict(default={}, doc="The engine monitor's health (Docker reachable, ...).")

    sweep_runs = param.Dict(default={}, doc="""
        The runs of the sweeps some session shows (SweepRuns), by sweep id (see watch_sweep).""")

    walk_forwards = param.List(default=[], doc="""
        Recent walk-forward analyses (WalkForwardInfo), newest first.""")

    revision = param.Integer(default=0, doc="Bumped on every change: a cheap thing to depend on.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._watched: dict[str, int] = {}
        self._watched_lock = threading.Lock()

    def update(self, **values) -> None:
        """Set what changed (equal values are not re-sent to every session)."""
        changed = {k: v for k, v in values.items() if getattr(self, k) != v}
        if changed:
            self.param.update(**changed, revision=self.revision + 1)

    def watch_sweep(self, sweep_id: str) -> None:
        """Keep ``sweep_runs[sweep_id]`` current until as many unwatch_sweep calls."""
        with self._watched_lock:
            self._watched[sweep_id] = self._watched.get(sweep_id, 0) + 1

    def unwatch_sweep(self, sweep_id: str) -> None:
        with self._watched_lock:
            left = self._watched.get(sweep_id, 0) - 1
            if left <= 0:
                self._watched.pop(sweep_id, None)
            else:
                self._watched[sweep_id] = left

    def watched_sweeps(self) -> list[str]:
        with self._watched_lock:
            return list(self._watched)


class LiveFeed:
    """The thread that keeps a LiveState current for one workbench."""

    def __init__(self, workbench, state: LiveState, period: float = REFRESH_S) -> None:
        self._wb = workbench
        self.state = state
        self._period = period
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-state", daemon=True)
        self._sweep_runs: dict[str, dict[str, RunInfo]] = {}  # per watched sweep, by run id
        self._versions: dict[str, int] = {}
        workbench.backtests.add_listener(self._wake.set)

    def start(self) -> LiveFeed:
        self.refresh()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def refresh(self) -> None:
        from services.backtest.scheduler import live_lease

        backtests = self._wb.backtests
        runs = backtests.list_runs(limit=RECENT_RUNS, active_first=True)
        lease = live_lease(backtests.repository)
        watched = self.state.watched_sweeps()
        for gone in set(self._sweep_runs) - set(watched):
            self._sweep_runs.pop(gone)
        sweep_runs = {sweep_id: self._snapshot(sweep_id) for sweep_id in watched}
        self.state.update(runs=runs, sweeps=self._sweeps(), sweep_runs=sweep_runs,
                          walk_forwards=self._wb.walk_forwards.list(RECENT_WALK_FORWARDS),
                          scheduler=lease.describe() if lease else "")

    def _snapshot(self, sweep_id: str) -> SweepRuns:
        """The sweep's runs, reading again only those whose status changed or that are active
        (a queued or finished run changes only with its status): a 10,000-run sweep costs one
        two-column query a second, not 10,000 rows."""
        known = self._sweep_runs.setdefault(sweep_id, {})
        statuses = self._wb.backtests.repository.sweep_statuses(sweep_id)
        stale = [run_id for run_id, status in statuses.items()
                 if status in ACTIVE_STATES or run_id not in known
                 or known[run_id].status != status]
        changed = len(statuses) != len(known) or any(r not in statuses for r in known)
        if changed:
            for run_id in [r for r in known if r not in statuses]:
                known.pop(run_id)
        for info in self._wb.backtests.repository.runs(stale):
            changed = changed or known.get(info.run_id) != info
            known[info.run_id] = info
        version = self._versions.get(sweep_id, 0) + (1 if changed else 0)
        self._versions[sweep_id] = version
        current = self.state.sweep_runs.get(sweep_id)
        if current is not None and current.version == version:
            return current
        return SweepRuns(sweep_id, version, tuple(sorted(known.values(), key=_order)))

    def _sweeps(self) -> list[SweepSummary]:
        return self._wb.backtests.repository.sweep_summaries()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._period)
            self._wake.clear()
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the feed
                log.exception("refreshing the live state failed; retrying")


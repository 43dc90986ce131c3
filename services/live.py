"""The process-level live state every browser session watches through param: runs, sweeps and
the scheduler; engines with their orders, fills, positions, risk events, resources and alerts.

One :class:`LiveState` per server process (``Workbench.live``), kept current by two feeds, so
the load does not grow with open tabs and nothing polls per component:

- engine events from the event hub, drained by one thread; each batch changes each parameter
  at most once (new dict objects, so watchers see a change), which keeps the cost flat when
  engines trade fast;
- runs, sweeps and the scheduler lease from the database, by :class:`RunFeed` once a second and
  at once when this process's scheduler changes a run.

``param`` is plain Python (no Panel): the state belongs to the service layer, the components
only watch it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

import param

from services import events
from services.backtest.records import ACTIVE_STATES, QUEUED, RunInfo, SweepSummary
from services.engine.service import EngineInfo, EngineService
from services.errors import WorkbenchError

log = logging.getLogger("nautilus_workbench.live")
MAX_FILLS = 500
MAX_RISK_EVENTS = 100
MAX_ALERTS = 200
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
    """What every session shows live; changed only by its feeds (engines by session id)."""

    runs = param.List(default=[], item_type=RunInfo, doc="""
        Active runs first, then the newest (at most RECENT_RUNS).""")

    sweeps = param.List(default=[], item_type=SweepSummary, doc="Recent sweeps, newest first.")

    scheduler = param.String(default="", doc="""
        Who runs the installation's backtests ('' when no scheduler runs).""")

    sweep_runs = param.Dict(default={}, doc="""
        The runs of the sweeps some session shows (SweepRuns), by sweep id (see watch_sweep).""")

    walk_forwards = param.List(default=[], doc="""
        Recent walk-forward analyses (WalkForwardInfo), newest first.""")

    engines = param.Dict(default={}, doc="Session id -> EngineInfo, status snapshot included.")

    orders = param.Dict(default={}, doc="Session id -> {client order id -> order}.")

    fills = param.Dict(default={}, doc="Session id -> fills, oldest first.")

    positions = param.Dict(default={}, doc="Session id -> {position id -> position, with PnL}.")

    risk_events = param.Dict(default={}, doc="Session id -> risk events, oldest first.")

    resources = param.Dict(default={}, doc="Session id -> latest docker stats sample.")

    alerts = param.List(default=[], doc="Recent alerts, newest first.")

    updates = param.Integer(default=0, doc="Batches of events applied so far.")

    pipeline = param.Parameter(default=(), doc="""
        A signature of the strategy pipeline's tables (services.pipeline.signature): it
        changes whenever a version, request, decision, deployment or drift does.""")

    def __init__(self, hub: events.EventHub, engines: EngineService, backtests=None,
                 walk_forwards=None, pipeline_signature=None, **params) -> None:
        super().__init__(**params)
        self.hub = hub
        self.engine_service = engines
        self._run_feed = (RunFeed(backtests, self, walk_forwards,
                                  pipeline_signature=pipeline_signature)
                          if backtests is not None else None)
        self._subscription: events.Subscription | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._watched: dict[str, int] = {}
        self._watched_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, thread: bool = True) -> LiveState:
        """Load the engine list and the runs once, then follow the hub and the database in
        daemon threads (``thread=False``: the caller applies hub events with :meth:`pump`
        and refreshes runs with :meth:`refresh_runs`, in its own thread). Idempotent."""
        with self._lock:
            if self._subscription is not None:
                return self
            self._subscription = self.hub.subscribe()
            if self._run_feed is not None:
                self._run_feed.start(thread)
            try:
                self.engines = {i.session_id: i for i in self.engine_service.list_sessions()}
            except WorkbenchError as e:
                log.warning("live state: cannot list engines: %s", e)
            if thread:
                self._thread = threading.Thread(target=self._run, name="live-engines",
                                                daemon=True)
                self._thread.start()
        return self

    @property
    def is_following(self) -> bool:
        """Started: its engines, runs and sweeps are kept current."""
        return self._subscription is not None

    def pump(self) -> int:
        """Apply the events that arrived since the last call; returns how many (for a state
        started without its thread)."""
        batch = self._subscription.drain() if self._subscription is not None else []
        if batch:
            self.apply(batch)
        return len(batch)

    def refresh_runs(self) -> None:
        """Read runs, sweeps and the scheduler lease now (the run feed does it every second)."""
        if self._run_feed is not None:
            self._run_feed.refresh()

    def update(self, **values) -> None:
        """Set what changed (equal values are not re-sent to every session)."""
        changed = {k: v for k, v in values.items() if getattr(self, k) != v}
        if changed:
            self.param.update(**changed)

    def watch_sweep(self, sweep_id: str) -> None:
        """Keep ``sweep_runs[sweep_id]`` current until as many unwatch_sweep calls."""
        with self._watched_lock:
            self._watched[sweep_id] = self._watched.get(sweep_id, 0) + 1
        if self._run_feed is not None:
            self._run_feed.wake()

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

    def stop(self) -> None:
        if self._run_feed is not None:
            self._run_feed.stop()
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def seed(self, session_id: str, orders: list[dict], fills: list[dict],
             positions: list[dict]) -> None:
        """Fill in an engine's blotter from its cache (when a page opens it late); events
        that arrive afterwards update it."""
        self.param.update(
            orders={**self.orders, session_id: {**{o["client_order_id"]: o for o in orders},
                                                **self.orders.get(session_id, {})}},
            fills={**self.fills, session_id: _merge_fills(fills, self.fills.get(session_id, []))},
            positions={**self.positions, session_id: {**{p["position_id"]: p for p in positions},
                                                      **self.positions.get(session_id, {})}})

    # -- applying events ------------------------------------------------------------------

    def _run(self) -> None:
        subscription = self._subscription
        while subscription is not None and not subscription.closed:
            first = subscription.get(timeout=0.5)
            if first is None:
                continue
            batch = [first, *subscription.drain()]
            try:
                self.apply(batch)
            except Exception:  # a malformed event must not end the feed
                log.exception("live state: applying %d events failed", len(batch))

    def apply(self, batch: list[events.Event]) -> None:
        """Apply a batch of hub events (also called directly by tests)."""
        changed: dict[str, dict | list] = {}

        def working(name: str):
            if name not in changed:
                current = getattr(self, name)
                changed[name] = list(current) if isinstance(current, list) else dict(current)
            return changed[name]

        for event in batch:
            handler = _HANDLERS.get(event.type)
            if handler is not None:
                handler(self, working, event)
        if changed:  # one update: each watcher runs once per batch
            self.param.update(**changed, updates=self.updates + 1)

    def _engine_status(self, working, event) -> None:
        data, session_id = event.data, event.source
        engines = working("engines")
        if "engine" in data:
            engines[session_id] = EngineInfo(**_info_fields(data["engine"]))
        elif "status" in data:
            info = engines.get(session_id)
            if info is None:
                try:
                    info = self.engine_service.get(session_id)
                except WorkbenchError:
                    return
            engines[session_id] = replace(info, status=dict(data["status"]))
        else:
            return
        snapshot = engines[session_id].status.get("positions")
        if snapshot:
            positions = working("positions")
            mine = dict(positions.get(session_id, {}))
            for position in snapshot:  # unrealized PnL moves with the market
                if "position_id" in position:  # older engines sent no ids
                    mine[position["position_id"]] = position
            positions[session_id] = mine

    def _order(self, working, event) -> None:
        order = event.data.get("order")
        session_id = event.source
        if order is not None:
            orders = working("orders")
            orders[session_id] = {**orders.get(session_id, {}), order["client_order_id"]: order}
        fill = event.data.get("fill")
        if fill is not None:
            fills = working("fills")
            fills[session_id] = [*fills.get(session_id, []), fill][-MAX_FILLS:]

    def _position(self, working, event) -> None:
        position = event.data.get("position")
        if position is not None:
            positions = working("positions")
            positions[event.source] = {**positions.get(event.source, {}),
                                       position["position_id"]: position}

    def _risk(self, working, event) -> None:
        risk = working("risk_events")
        risk[event.source] = [*risk.get(event.source, []),
                              {"ts": event.ts, **event.data}][-MAX_RISK_EVENTS:]

    def _resources(self, working, event) -> None:
        working("resources")[event.source] = {"ts": event.ts, **event.data}

    def _alert(self, working, event) -> None:
        alerts = working("alerts")
        alerts.insert(0, event.data)
        del alerts[MAX_ALERTS:]


_HANDLERS = {
    events.ENGINE_STATUS: LiveState._engine_status,
    events.ORDER_EVENTS: LiveState._order,
    events.POSITION_EVENTS: LiveState._position,
    events.RISK_EVENTS: LiveState._risk,
    events.RESOURCE_METRICS: LiveState._resources,
    events.ALERT_EVENTS: LiveState._alert,
}


def _merge_fills(seeded: list[dict], seen: list[dict]) -> list[dict]:
    known = {f["trade_id"] for f in seen}
    return ([f for f in seeded if f["trade_id"] not in known] + seen)[-MAX_FILLS:]


def _info_fields(record: dict) -> dict:
    """EngineInfo's fields from its ``to_json`` form."""
    from datetime import datetime

    fields = dict(record)
    for key in ("created_at", "started_at", "stopped_at", "status_at"):
        fields[key] = datetime.fromisoformat(fields[key]) if fields.get(key) else None
    return {k: v for k, v in fields.items() if k in EngineInfo.__dataclass_fields__}


def _to_read_again(statuses, known: dict[str, RunInfo]) -> list[str]:
    """Of ``statuses`` ((run id, status) pairs), the runs whose full row must be read again:
    the active ones (their progress moves) and those new or with another status (a queued or
    finished run changes only with its status)."""
    return [run_id for run_id, status in statuses
            if status in ACTIVE_STATES or run_id not in known or known[run_id].status != status]


class RunFeed:
    """Keeps a LiveState's runs, sweeps, walk-forwards, scheduler (and the pipeline's
    signature) current from the database: once a second, and at once when this process's
    scheduler changes a run."""

    def __init__(self, backtests, state: LiveState, walk_forwards=None,
                 period: float = REFRESH_S, pipeline_signature=None) -> None:
        self._backtests = backtests
        self._walk_forwards = walk_forwards
        self._pipeline_signature = pipeline_signature
        self._state = state
        self._period = period
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sweep_runs: dict[str, dict[str, RunInfo]] = {}  # per watched sweep, by run id
        self._recent: dict[str, RunInfo] = {}  # the recent runs, by run id
        self._versions: dict[str, int] = {}

    def start(self, thread: bool = True) -> None:
        self._backtests.add_listener(self._wake.set)
        self.refresh()
        if thread:
            self._thread = threading.Thread(target=self._loop, name="live-runs", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def refresh(self) -> None:
        from services.backtest.scheduler import live_lease

        backtests = self._backtests
        runs = self._recent_runs()
        lease = live_lease(backtests.repository)
        watched = self._state.watched_sweeps()
        for gone in set(self._sweep_runs) - set(watched):
            self._sweep_runs.pop(gone)
        sweep_runs = {sweep_id: self._snapshot(sweep_id) for sweep_id in watched}
        walk_forwards = (self._walk_forwards.list(RECENT_WALK_FORWARDS)
                         if self._walk_forwards is not None else [])
        pipeline = (self._pipeline_signature() if self._pipeline_signature is not None
                    else ())
        self._state.update(runs=runs, sweeps=backtests.repository.sweep_summaries(),
                           sweep_runs=sweep_runs, walk_forwards=walk_forwards,
                           scheduler=lease.describe() if lease else "", pipeline=pipeline)

    def _recent_runs(self) -> list[RunInfo]:
        """What ``list_runs(RECENT_RUNS, active_first=True)`` returns, reading again only the
        active runs and those whose status changed: while a sweep runs, 200 full rows a second
        (their specs parsed from JSON) held the interpreter lock the event loop needs."""
        repository = self._backtests.repository
        order = repository.recent_statuses(RECENT_RUNS)
        known = self._recent
        fresh = {info.run_id: info for info in repository.runs(_to_read_again(order, known))}
        self._recent = {run_id: fresh.get(run_id) or known[run_id] for run_id, _ in order
                        if run_id in fresh or run_id in known}
        return list(self._recent.values())

    def _snapshot(self, sweep_id: str) -> SweepRuns:
        """The sweep's runs, reading again only those whose status changed or that are active
        (a queued or finished run changes only with its status): a 10,000-run sweep costs one
        two-column query a second, not 10,000 rows."""
        known = self._sweep_runs.setdefault(sweep_id, {})
        repository = self._backtests.repository
        statuses = repository.sweep_statuses(sweep_id)
        stale = _to_read_again(statuses.items(), known)
        changed = len(statuses) != len(known) or any(r not in statuses for r in known)
        if changed:
            for run_id in [r for r in known if r not in statuses]:
                known.pop(run_id)
        for info in repository.runs(stale):
            changed = changed or known.get(info.run_id) != info
            known[info.run_id] = info
        version = self._versions.get(sweep_id, 0) + (1 if changed else 0)
        self._versions[sweep_id] = version
        current = self._state.sweep_runs.get(sweep_id)
        if current is not None and current.version == version:
            return current
        return SweepRuns(sweep_id, version, tuple(sorted(known.values(), key=_order)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._period)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the feed
                log.exception("refreshing runs for the live state failed; retrying")

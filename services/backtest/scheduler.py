"""One scheduler per installation: it alone claims queued runs, starts and supervises their
workers and reconciles after a restart.

Every other process (the CLI, notebooks) only queues runs and reads them. The scheduler holds
a lease in the database (``scheduler_leases``) renewed by heartbeats; a second scheduler waits
in standby until the lease is free or its holder's heartbeat is older than LEASE_TTL. Capacity
counts the Running and Paused rows of each runtime in the database, so workers that a previous
holder started (and this one adopted) count too.

A scheduler started "for its own runs" (``only=``) is what ``backtest run`` uses when no
scheduler runs: it dispatches just those runs and gives the lease back when they are final.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from services.backtest.layout import (
    DISK_FULL_MESSAGE,
    ERROR_FILE,
    EXIT_DISK_FULL,
    PARTIAL,
    PROGRESS_FILE,
    RESULTS,
    WORKER_LOG,
)
from services.backtest.records import (
    ACTIVE_STATES,
    COMPLETED,
    FAILED,
    FINAL_STATES,
    aware,
    now,
    read_progress,
    signal_name,
)
from services.backtest.repository import RunRepository
from services.backtest.runtime import (
    ControlFileExecution,
    Execution,
    LocalRuntime,
    PidExecution,
    Resources,
    Runtime,
    RuntimeLostError,
    find_worker_pid,
    unavailable_runtime_error,
    worker_alive,
)
from services.db import BacktestRunRow, SchedulerLeaseRow
from services.errors import RuntimeUnavailableError, StorageError

log = logging.getLogger(__name__)

LEASE_NAME = "backtests"
LEASE_TTL = timedelta(seconds=15)
HEARTBEAT_S = 3.0
POLL_S = 0.5  # how often the loop looks for queued runs when nobody wakes it
SAMPLE_PERIOD_S = 1.0  # how often a watcher samples its worker's CPU and memory
FINISH_RETRY_S = 300  # how long a watcher keeps trying to record a run's end (database locks)


@dataclass(frozen=True)
class LeaseInfo:
    """The live scheduler of an installation."""

    holder: str
    host: str
    pid: int
    command: str
    runtimes: tuple[str, ...]
    scope: str
    heartbeat_at: datetime

    def describe(self) -> str:
        return f"{self.command} (pid {self.pid} on {self.host})"


def live_lease(repository: RunRepository) -> LeaseInfo | None:
    """The scheduler that runs this installation's backtests now, or None."""
    with repository.db.session() as session:
        row = session.get(SchedulerLeaseRow, LEASE_NAME)
        if row is None or aware(row.heartbeat_at) < now() - LEASE_TTL or _dead_here(row):
            return None
        return LeaseInfo(row.holder, row.host, row.pid, row.command, tuple(row.runtimes),
                         row.scope, aware(row.heartbeat_at))


def _dead_here(row: SchedulerLeaseRow) -> bool:
    """A holder on this machine whose process is gone (killed): its lease is free at once."""
    return row.host == socket.gethostname() and not psutil.pid_exists(row.pid)


class SchedulerLease:
    """This process's claim on the scheduler role."""

    def __init__(self, repository: RunRepository, runtimes: Callable[[], list[str]],
                 scope: str) -> None:
        self._db = repository.db
        self._runtimes = runtimes
        self.scope = scope
        self.holder = uuid.uuid4().hex
        self.command = " ".join(os.path.basename(a) for a in sys.argv[:3])[:255] or "python"

    def _values(self, acquired: datetime | None = None) -> dict:
        stamp = now()
        values = {"holder": self.holder, "host": socket.gethostname(), "pid": os.getpid(),
                  "command": self.command, "runtimes": self._runtimes(), "scope": self.scope,
                  "heartbeat_at": stamp}
        if acquired is not None:
            values["acquired_at"] = acquired
        return values

    def acquire(self) -> bool:
        """Take the lease if it is free, expired or held by a dead process on this machine."""
        with self._db.session() as session:
            row = session.get(SchedulerLeaseRow, LEASE_NAME)
            if row is None:
                session.add(SchedulerLeaseRow(name=LEASE_NAME, **self._values(now())))
                try:
                    session.flush()
                except IntegrityError:
                    return False  # another process inserted it first
                return True
            previous, beat = row.holder, row.heartbeat_at
            if row.holder != self.holder and aware(beat) >= now() - LEASE_TTL \
                    and not _dead_here(row):
                return False
            # Conditional on what we read: of two takers of an expired lease, one wins.
            taken = session.execute(
                update(SchedulerLeaseRow)
                .where(SchedulerLeaseRow.name == LEASE_NAME, SchedulerLeaseRow.holder == previous,
                       SchedulerLeaseRow.heartbeat_at == beat)
                .values(**self._values(now()))).rowcount
            return bool(taken)

    def renew(self) -> bool:
        """Heartbeat; False when another process has taken the lease over."""
        with self._db.session() as session:
            return bool(session.execute(
                update(SchedulerLeaseRow)
                .where(SchedulerLeaseRow.name == LEASE_NAME,
                       SchedulerLeaseRow.holder == self.holder)
                .values(**self._values())).rowcount)

    def release(self) -> None:
        with self._db.session() as session:
            session.execute(update(SchedulerLeaseRow)
                            .where(SchedulerLeaseRow.name == LEASE_NAME,
                                   SchedulerLeaseRow.holder == self.holder)
                            .values(heartbeat_at=datetime(1970, 1, 1, tzinfo=UTC)))


class Scheduler:
    """Claims queued runs, starts their workers on runtimes and watches them to the end.

    ``prepare(run_id)`` writes a claimed run's folder (spec, NautilusTrader config) before its
    worker starts; ``on_change`` is called whenever a run changes state (the process-level live
    state listens). ``steps(only)`` is called on every pass of the loop while this scheduler
    holds the lease: what is built on runs (a walk-forward analysis submits a fold's test run
    when its train sweep is done) moves on there, in the one process that survives the
    submitter and is replaced after a restart. It returns the ids of the runs it queued; a
    scheduler for its own runs (``only``) passes them and dispatches what it returns as well.
    """

    def __init__(self, repository: RunRepository, prepare: Callable[[str], None],
                 runtimes: dict[str, Runtime] | None = None, *, only: Iterable[str] | None = None,
                 on_change: Callable[[], None] | None = None,
                 steps: Callable[[set[str] | None], Iterable[str]] | None = None) -> None:
        self.repository = repository
        self._prepare = prepare
        self._runtimes: dict[str, Runtime] = dict(runtimes or {"local": LocalRuntime()})
        self._only = set(only) if only is not None else None
        self._on_change = on_change or (lambda: None)
        self._steps = steps or (lambda only: ())
        self.lease = SchedulerLease(repository, lambda: sorted(self._runtimes),
                                    "own" if self._only is not None else "all")
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.active = False  # holds the lease and dispatches
        self._executions: dict[str, tuple[str, Execution]] = {}
        self._usage: dict[str, Resources] = {}
        self._watchers: list[threading.Thread] = []

    # -- runtimes ---------------------------------------------------------------------------
    def attach(self, runtime: Runtime) -> None:
        with self._lock:
            self._runtimes[runtime.name] = runtime
        if self.active:
            self.lease.renew()  # submitters read the runtimes from the lease
        self.wake()

    def runtime(self, name: str) -> Runtime:
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise unavailable_runtime_error(name)
        return runtime

    @property
    def runtime_names(self) -> list[str]:
        return list(self._runtimes)

    def usage(self, run_id: str) -> Resources | None:
        return self._usage.get(run_id)

    def execution(self, run_id: str) -> Execution | None:
        watched = self._executions.get(run_id)
        return watched[1] if watched else None

    # -- life -------------------------------------------------------------------------------
    def start(self) -> Scheduler:
        """Run the loop in a thread: standby until the lease is ours, then dispatch."""
        self._thread = threading.Thread(target=self._loop, name="backtest-scheduler",
                                        daemon=True)
        self._thread.start()
        return self

    def wait_active(self, timeout: float) -> bool:
        """Wait until this scheduler holds the lease (False: another one does)."""
        deadline = time.monotonic() + timeout
        while not self.active and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)
        return self.active

    def wake(self) -> None:
        """Look for queued runs now (after a submission in this process)."""
        self._wake.set()

    def stop(self, wait_for_runs: bool = False) -> None:
        """Give the lease back. Workers keep running (the next scheduler adopts them) unless
        ``wait_for_runs``, which waits for this scheduler's watchers to record their ends."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if wait_for_runs:
            for watcher in list(self._watchers):
                watcher.join()
        if self.active:
            self.lease.release()
            self.active = False
        for name, runtime in list(self._runtimes.items()):
            if name != "local":
                runtime.close()

    def _loop(self) -> None:
        last_beat = 0.0
        while not self._stop.is_set():
            try:
                if not self.active:
                    if self.lease.acquire():
                        log.info("backtest scheduler active (%s)", self.lease.command)
                        self.reconcile()
                        self.active = True
                elif time.monotonic() - last_beat >= HEARTBEAT_S:
                    if not self.lease.renew():
                        log.warning("another scheduler took the lease over; standing by")
                        self.active = False
                    last_beat = time.monotonic()
                if self.active:
                    self.dispatch()
                    if self.step():
                        self.dispatch()
            except StorageError as e:  # the database is away for a moment: try again
                log.warning("backtest scheduler: %s", e)
            except Exception:  # noqa: BLE001 - the loop must outlive any one failure
                log.exception("backtest scheduler loop failed; retrying")
            self._wake.wait(POLL_S)
            self._wake.clear()

    # -- the queue --------------------------------------------------------------------------
    def step(self) -> bool:
        """Run the steps once; True when they queued runs (this scheduler's own, too)."""
        queued = list(self._steps(None if self._only is None else set(self._only)))
        if queued and self._only is not None:
            with self._lock:
                self._only.update(queued)
        return bool(queued)

    def dispatch(self) -> None:
        """Start queued runs (oldest first) while their runtime has free slots."""
        with self._lock:
            for name, runtime in list(self._runtimes.items()):
                busy = self.repository.count(ACTIVE_STATES, runtime=name)
                free = runtime.capacity() - busy
                if free <= 0:
                    continue
                for run_id in self.repository.oldest_queued(name, free, self._only):
                    self._start(run_id, runtime)

    def _start(self, run_id: str, runtime: Runtime) -> None:
        if not self.repository.claim(run_id):
            return
        try:
            self._prepare(run_id)
            folder = Path(self.repository.get(run_id).run_folder)
            execution = runtime.start(run_id, folder)
        except Exception as e:  # noqa: BLE001 - OSError, a changed catalog, a lost cluster
            self._fail(run_id, f"Could not start a worker on the {runtime.name} runtime: {e}")
            return
        with self.repository.db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            row.worker_pid = execution.pid
            cancelled = row.status in FINAL_STATES  # cancelled while it was starting
        self._follow(run_id, runtime.name, execution)
        if cancelled:
            execution.kill()
        self._on_change()

    def _follow(self, run_id: str, runtime: str, execution: Execution) -> None:
        self._executions[run_id] = (runtime, execution)
        watcher = threading.Thread(target=self._watch, args=(run_id, execution), daemon=True,
                                   name=f"backtest-watch-{run_id}")
        self._watchers.append(watcher)
        watcher.start()

    def _watch(self, run_id: str, execution: Execution) -> None:
        lost = code = None
        try:
            while code is None:
                code = execution.wait(SAMPLE_PERIOD_S)
                self._sample(run_id, execution)
        except RuntimeLostError as e:
            lost = str(e)
        except Exception as e:  # noqa: BLE001 - never let a watcher die silently
            log.exception("watching run %s failed", run_id)
            lost = f"the workbench lost track of the worker ({type(e).__name__}: {e})"
        try:
            self._sample(run_id, execution)
        except Exception:  # noqa: BLE001 - the sample is a nicety; the end must be recorded
            pass
        self._record_end(run_id, code if lost is None else 1, lost)
        with self._lock:
            self._executions.pop(run_id, None)
        self._on_change()
        self.wake()

    def _record_end(self, run_id: str, code: int, lost: str | None) -> None:
        """Write the run's end, riding out database locks (a run must never stay Running)."""
        deadline = time.monotonic() + FINISH_RETRY_S
        delay = 0.2
        while True:
            try:
                self._finish(run_id, code, lost)
                return
            except StorageError as e:
                if time.monotonic() > deadline:
                    log.error("could not record the end of run %s: %s", run_id, e)
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _sample(self, run_id: str, execution: Execution) -> None:
        used = execution.resources()
        if used is None:
            return
        previous = self._usage.get(run_id)
        peak = max(used.memory_bytes, previous.memory_bytes if previous else 0)
        self._usage[run_id] = Resources(used.cpu_seconds, peak)

    def _finish(self, run_id: str, code: int, lost: str | None = None) -> None:
        usage = self._usage.get(run_id)
        with self.repository.db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            if row is None:
                return
            if usage is not None:
                row.cpu_seconds, row.memory_bytes = usage.cpu_seconds, usage.memory_bytes
            if row.status in FINAL_STATES:
                return
            folder = Path(row.run_folder)
            row.finished_at, row.phase, row.paused_at = now(), None, None
            if lost is None and code == 0 and (folder / RESULTS / "summary.json").exists():
                completed(row, folder)
            else:
                row.status = FAILED
                row.error = (f"Failed: {lost}. Run it again." if lost is not None
                             else failure_reason(folder, code))
                shutil.rmtree(folder / PARTIAL, ignore_errors=True)
            if usage is None:
                live = read_progress(folder / PROGRESS_FILE) or {}
                row.cpu_seconds, row.memory_bytes = live.get("cpu_seconds"), live.get(
                    "memory_bytes")
        self._usage.pop(run_id, None)

    def _fail(self, run_id: str, error: str) -> None:
        with self.repository.db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            if row is not None and row.status not in FINAL_STATES:
                row.status, row.finished_at, row.phase, row.error = FAILED, now(), None, error
        self._on_change()

    # -- after a restart --------------------------------------------------------------------
    def reconcile(self) -> None:
        """Adopt the workers a previous scheduler left running; fail the runs whose worker is
        gone ("Interrupted"); record the ends a previous scheduler missed."""
        with self.repository.db.session() as session:
            rows = session.scalars(select(BacktestRunRow).where(
                BacktestRunRow.status.in_(ACTIVE_STATES))).all()
            pending = [(r.run_id, r.runtime, r.worker_pid, r.run_folder, r.status) for r in rows]
        for run_id, runtime, pid, folder, status in pending:
            if run_id in self._executions or (self._only is not None and run_id not in self._only):
                continue
            adopted = self._adoptable(run_id, runtime, pid, folder)
            if adopted is not None:
                # A worker that outlived its scheduler: adopt it, record its end when it exits.
                log.info("adopting the %s worker of run %s", runtime, run_id)
                self._follow(run_id, runtime, adopted)
                continue
            with self.repository.db.session() as session:
                row = session.get(BacktestRunRow, run_id)
                if row.status in ACTIVE_STATES:
                    settle_lost(row, "the scheduler stopped while this run was in progress (it "
                                     f"was {status.lower()} on the {runtime} runtime).")
        self._on_change()

    @staticmethod
    def _adoptable(run_id: str, runtime: str, pid: int | None, folder: str) -> Execution | None:
        if runtime == "local":
            pid = pid if worker_alive(pid, folder) else find_worker_pid(folder)
            return PidExecution(pid) if pid is not None else None
        if runtime == "docker":
            from services.backtest.docker_runtime import find_execution

            try:
                return find_execution(run_id)
            except RuntimeUnavailableError:
                return None
        execution = ControlFileExecution(Path(folder))
        return execution if execution.supervised() else None


def completed(row: BacktestRunRow, folder: Path) -> None:
    """Mark ``row`` Completed with the headline statistics its worker wrote."""
    stats = json.loads((folder / RESULTS / "summary.json").read_text())["statistics"]
    if stats.get("bars") == 0:
        # The range was checked against the catalog at submission: no bar means the data
        # files went missing while the run was queued or running.
        row.status, row.progress = FAILED, None
        row.error = (f"The run read no bars of {row.bar_type}: its data files were missing or "
                     "removed while it ran. Check the series ('nautilus-workbench catalog "
                     "list') and run it again.")
        return
    row.status, row.progress, row.error = COMPLETED, 1.0, None
    row.total_return, row.sharpe = stats.get("total_return"), stats.get("sharpe")
    row.max_drawdown, row.num_trades = stats.get("max_drawdown"), stats.get("num_trades")
    row.final_equity = stats.get("final_equity")


def settle_lost(row: BacktestRunRow, what_happened: str) -> None:
    """End a run whose worker is gone: Completed if its results are all written, else Failed
    ("Interrupted: ``what_happened``"), its partial results removed."""
    folder = Path(row.run_folder)
    row.finished_at, row.phase, row.paused_at = now(), None, None
    if (folder / RESULTS / "summary.json").exists():
        completed(row, folder)
    else:
        row.status, row.error = FAILED, f"Interrupted: {what_happened} Run it again."
        remove_partial(folder)


def failure_reason(folder: Path, code: int) -> str:
    """What a user is told about a worker that ended without results."""
    error_file = folder / ERROR_FILE
    if error_file.exists():
        try:
            return json.loads(error_file.read_text())["error"]
        except (OSError, ValueError, KeyError):
            pass
    if code == EXIT_DISK_FULL:
        return DISK_FULL_MESSAGE
    if code == -signal.SIGABRT:
        return ("NautilusTrader aborted the worker (SIGABRT, a panic in its native core) before "
                f"it finished; the reason is at the end of {folder / WORKER_LOG}.")
    if code < 0:
        return (f"The worker process was killed ({signal_name(code)}) before it finished. "
                "If memory ran out, shorten the date range; otherwise run it again.")
    return f"The worker process exited with code {code} without results; see {folder / WORKER_LOG}."


def remove_partial(folder: Path) -> None:
    shutil.rmtree(folder / PARTIAL, ignore_errors=True)
    (folder / PROGRESS_FILE).unlink(missing_ok=True)

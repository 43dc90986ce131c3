"""Submit, queue, control, list and read backtests and sweeps. NautilusTrader runs only in
worker processes, started by a runtime (local processes, a Dask cluster).

A run goes Queued -> Running (<-> Paused) -> Completed | Failed | Cancelled. The database row
is the index (status, runtime, timings, headline statistics, CPU and memory, error text); the
run folder holds the artefacts. The queue is the table itself: any workbench process over the
same database starts the oldest queued runs of the runtimes it has, claiming each row with a
conditional update so that no run starts twice.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import select, update

from services.backtest.config_builder import build_run_config
from services.backtest.layout import (
    ERROR_FILE,
    PARTIAL,
    PROGRESS_FILE,
    RESULTS,
    WORKER_LOG,
)
from services.backtest.progress import read_progress
from services.backtest.runtime import (
    RUNTIME_NAMES,
    ControlFileExecution,
    Execution,
    LocalRuntime,
    PidExecution,
    Resources,
    Runtime,
    RuntimeLostError,
    unavailable_runtime_error,
    worker_alive,
)
from services.backtest.spec import BacktestSpec
from services.backtest.statistics import (
    LOWER_IS_BETTER,
    METRICS_VERSION,
    compute_statistics,
)
from services.backtest.sweep import SweepSpec, expand, run_specs
from services.backtest.worker import DISK_FULL_MESSAGE, EXIT_DISK_FULL
from services.catalog import CatalogService
from services.audit import AuditLog
from services.db import BacktestRunRow, Database, SweepRow
from services.errors import BacktestError, RunNotFound, StorageError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.templates import TemplateService

log = logging.getLogger(__name__)

QUEUED, RUNNING, PAUSED = "Queued", "Running", "Paused"
COMPLETED, FAILED, CANCELLED = "Completed", "Failed", "Cancelled"
ACTIVE_STATES = (RUNNING, PAUSED)  # a worker exists
FINAL_STATES = (COMPLETED, FAILED, CANCELLED)
# How often a watcher samples its worker's CPU and memory (seconds).
SAMPLE_PERIOD_S = 1.0


@dataclass(frozen=True)
class RunInfo:
    """A backtest run as the UI, CLI and notebooks see it."""

    run_id: str
    status: str
    strategy: str
    instrument_id: str
    bar_type: str
    start: datetime | None
    end: datetime | None
    label: str
    parameters: dict
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    phase: str | None
    progress: float | None
    error: str | None
    total_return: float | None
    sharpe: float | None
    max_drawdown: float | None
    num_trades: int | None
    final_equity: float | None
    currency: str | None
    run_folder: str
    sweep_id: str | None = None
    runtime: str = "local"
    sim_time: datetime | None = None  # simulated time the engine has reached
    events: int | None = None  # messages through NautilusTrader's message bus so far
    eta_seconds: float | None = None  # wall time left, estimated from the progress so far
    cpu_seconds: float | None = None
    memory_bytes: int | None = None
    actor: str | None = None  # who submitted it

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(UTC)
        return (_aware(end) - _aware(self.started_at)).total_seconds()


@dataclass(frozen=True)
class RunResults:
    """Everything a completed run left in its folder, ready for charts and tables."""

    info: RunInfo
    spec: dict
    summary: dict
    statistics: dict
    equity: pd.DataFrame  # per bar: close, position, equity, drawdown
    fills: pd.DataFrame
    positions: pd.DataFrame
    orders: pd.DataFrame
    account: pd.DataFrame
    config: dict


# Columns the viewer, the report and the metrics rely on, per artefact.
_REQUIRED_COLUMNS = {
    "equity": {"close", "position", "equity", "drawdown"},
    "fills": {"ts", "side", "quantity", "price", "commission"},
    "positions": {"entry", "opened", "closed", "realized_pnl"},
}


def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything is stored in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# Entries of statistics.json that describe the run rather than measure it.
NOT_A_METRIC = {"metrics_version", "start", "end", "starting_balance", "periods_per_year", "bars",
                "max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery"}


def sweep_metrics(service: BacktestService, info: SweepInfo) -> list[str]:
    """The metrics a sweep's completed runs can be ranked by (sharpe, total_return, ...)."""
    for run in info.runs:
        if run.status == COMPLETED:
            stats = service.run_statistics(run)
            return [k for k, v in stats.items() if k not in NOT_A_METRIC and _is_number(v)]
    return ["sharpe", "total_return", "max_drawdown", "num_trades"]


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


@dataclass(frozen=True)
class SweepInfo:
    """A sweep and where its runs stand."""

    sweep_id: str
    strategy: str
    bar_type: str
    runtime: str
    spec: dict
    created_at: datetime
    stopped_at: datetime | None
    runs: list[RunInfo]
    actor: str | None = None  # who submitted it

    def count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.runs)

    @property
    def is_final(self) -> bool:
        return all(r.is_final for r in self.runs)

    @property
    def progress(self) -> float:
        """Share of the sweep done: final runs count whole, running ones by their progress."""
        if not self.runs:
            return 1.0
        done = sum(1.0 if r.is_final else (r.progress or 0.0) if r.is_active else 0.0
                   for r in self.runs)
        return done / len(self.runs)

    @property
    def status(self) -> str:
        if not self.is_final:
            return "Stopping" if self.stopped_at else RUNNING if self.count(*ACTIVE_STATES) else QUEUED
        if self.stopped_at:
            return "Stopped"
        return COMPLETED if self.count(COMPLETED) == len(self.runs) else "Finished with failures"


class BacktestService:
    """Queues backtests and runs them on runtimes, at most each runtime's capacity at once."""

    def __init__(
        self,
        database: Database,
        templates: TemplateService,
        catalog: CatalogService,
        runs_dir: Path,
        authorizer: Authorizer,
        max_parallel: int | None = None,
    ) -> None:
        self._db = database
        self._auth = authorizer
        self._templates = templates
        self._catalog = catalog
        self._runs_dir = Path(runs_dir)
        self._lock = threading.RLock()
        self._done = threading.Condition(self._lock)
        self._runtimes: dict[str, Runtime] = {"local": LocalRuntime(max_parallel)}
        # Runs this process watches: run id -> (runtime name, execution).
        self._executions: dict[str, tuple[str, Execution]] = {}
        self._usage: dict[str, Resources] = {}  # last CPU and peak memory seen per watched run
        self._statistics_cache: dict[str, dict] = {}

    # -- runtimes -----------------------------------------------------------------------------
    @property
    def max_parallel(self) -> int:
        """How many runs the local runtime runs at once (default: the number of cores)."""
        return self._runtimes["local"].capacity()

    @max_parallel.setter
    def max_parallel(self, value: int) -> None:
        if value < 1:
            raise BacktestError(f"max_parallel must be at least 1, was {value}")
        self._runtimes["local"].max_parallel = value
        self._dispatch()

    def attach_runtime(self, runtime: Runtime) -> None:
        """Make ``runtime`` available to submissions (replacing one of the same name)."""
        with self._lock:
            self._runtimes[runtime.name] = runtime
        self._dispatch()

    def runtime(self, name: str) -> Runtime:
        """The attached runtime called ``name``, or RuntimeUnavailableError saying how to get it."""
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise unavailable_runtime_error(name)
        return runtime

    @property
    def runtime_names(self) -> list[str]:
        return list(self._runtimes)

    def close(self) -> None:
        """Detach and close every runtime but the local one (its workers keep running)."""
        with self._lock:
            others = [r for name, r in self._runtimes.items() if name != "local"]
            self._runtimes = {"local": self._runtimes["local"]}
        for runtime in others:
            runtime.close()

    # -- submission ---------------------------------------------------------------------------
    def validate(self, spec: BacktestSpec, progress_file: str | None = None):
        """Return the BacktestRunConfig for ``spec`` or raise a WorkbenchError saying why not.

        The config runs as it is (e.g. with BacktestNode); its progress reporter writes to
        ``progress_file`` (default: a file in the system's temporary folder).
        """
        if progress_file is None:
            progress_file = str(Path(tempfile.gettempdir()) / f"workbench-progress-{uuid.uuid4().hex}.json")
        return self._build(spec, progress_file=progress_file)[0]

    def _build(self, spec: BacktestSpec, progress_file: str):
        strategy = self._templates.strategy(spec.strategy)
        engine = self._templates.backtest_engine()
        return build_run_config(spec, strategy, engine, self._catalog, progress_file)

    def submit(self, spec: BacktestSpec, *, principal: Principal | None = None,
               runtime: str = "local") -> str:
        """Validate ``spec``, record it as Queued and start it when a slot of ``runtime`` is free."""
        actor = self._auth.require(principal, "backtest.submit", f"{spec.strategy} on {spec.bar_type}")
        if runtime not in RUNTIME_NAMES:
            raise unavailable_runtime_error(runtime)
        self.runtime(runtime)
        run_id = self._prepare(spec, actor, runtime, sweep_id=None)
        self._dispatch()
        return run_id

    @staticmethod
    def _new_id() -> str:
        return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]

    def _prepare(self, spec: BacktestSpec, actor: Principal, runtime: str, sweep_id: str | None,
                 session=None) -> str:
        """Write the run folder and add the Queued row (to ``session`` if given)."""
        run_id = self._new_id()
        folder = self._runs_dir / run_id
        config, resolved = self._build(spec, progress_file=str(folder / PROGRESS_FILE))
        instrument = resolved["instrument"]
        venue = config.venues[0]
        starting_balance = float(venue.starting_balances[0].split()[0])
        try:
            folder.mkdir(parents=True)
            (folder / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2))
            (folder / "config.json").write_bytes(config.json())
            (folder / "run.json").write_text(json.dumps({
                "run_id": run_id,
                "catalog": self._catalog.location,
                "bar_type": spec.bar_type,
                "instrument_id": instrument.instrument_id,
                "start": resolved["start"].isoformat(),
                "end": resolved["end"].isoformat(),
                "starting_balance": starting_balance,
                "currency": resolved["currency"],
                "multiplier": instrument.multiplier,
            }, indent=2))
        except OSError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise StorageError(f"Cannot create the run folder {folder}: {e.strerror or e}. "
                               "Check the state folder's free space and permissions.") from e
        row = BacktestRunRow(
            run_id=run_id, status=QUEUED, strategy=spec.strategy,
            instrument_id=instrument.instrument_id, bar_type=spec.bar_type,
            start=resolved["start"].to_pydatetime(), end=resolved["end"].to_pydatetime(),
            spec=spec.to_dict(), run_folder=str(folder), actor=actor.name, created_at=_now(),
            currency=resolved["currency"], phase="queued", runtime=runtime, sweep_id=sweep_id,
            paused_seconds=0.0,
        )
        audit = AuditLog.row(actor, "backtest.submit", run_id, "ok",
                             f"{spec.strategy} on {spec.bar_type} ({runtime})", to_state=QUEUED)
        if session is not None:
            session.add_all([row, audit])
            return run_id
        try:
            with self._db.session() as own:
                own.add_all([row, audit])
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return run_id

    def submit_sweep(self, spec: SweepSpec, *, principal: Principal | None = None,
                     runtime: str = "local") -> str:
        """Validate every run of the sweep, queue them all (or none) and return the sweep id."""
        actor = self._auth.require(principal, "sweep.submit", f"{spec.strategy} on {spec.bar_type}")
        if runtime not in RUNTIME_NAMES:
            raise unavailable_runtime_error(runtime)
        self.runtime(runtime)
        template = self._templates.strategy(spec.strategy)
        series = self._catalog.backtestable_series(spec.bar_type)
        instrument_class = self._catalog.instrument(series.instrument_id).instrument_class
        combinations = expand(spec, template, instrument_class)
        specs = run_specs(spec, combinations)
        self.validate(specs[0])  # dates, venue and data, once, before any folder is written
        sweep_id = "sweep-" + self._new_id()
        run_ids: list[str] = []
        try:
            with self._db.session() as session:
                session.add(SweepRow(
                    sweep_id=sweep_id, strategy=spec.strategy, bar_type=spec.bar_type,
                    spec={**spec.to_dict(), "combinations": len(specs)}, runtime=runtime,
                    num_runs=len(specs), actor=actor.name, created_at=_now()))
                session.add(AuditLog.row(actor, "sweep.submit", sweep_id, "ok",
                                         f"{len(specs)} runs of {spec.strategy} on "
                                         f"{spec.bar_type} ({runtime})", to_state=QUEUED))
                for run_spec in specs:
                    run_ids.append(self._prepare(run_spec, actor, runtime, sweep_id, session))
        except BaseException:
            # All or nothing: no folder of a sweep that was not recorded stays behind.
            for run_id in run_ids:
                shutil.rmtree(self._runs_dir / run_id, ignore_errors=True)
            raise
        self._dispatch()
        return sweep_id

    # -- the queue ----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Start queued runs (oldest first) while their runtime has free slots."""
        with self._lock:
            for name, runtime in list(self._runtimes.items()):
                busy = sum(1 for rt, _ in self._executions.values() if rt == name)
                free = runtime.capacity() - busy
                if free <= 0:
                    continue
                with self._db.session() as session:
                    candidates = session.scalars(
                        select(BacktestRunRow.run_id)
                        .where(BacktestRunRow.status == QUEUED, BacktestRunRow.runtime == name)
                        .order_by(BacktestRunRow.created_at).limit(free)
                    ).all()
                for run_id in candidates:
                    self._start(run_id, runtime)

    def _start(self, run_id: str, runtime: Runtime) -> None:
        # Claim the row: another workbench process over the same database may dispatch too.
        with self._db.session() as session:
            claimed = session.execute(
                update(BacktestRunRow)
                .where(BacktestRunRow.run_id == run_id, BacktestRunRow.status == QUEUED)
                .values(status=RUNNING, started_at=_now(), phase="starting")
            ).rowcount
        if not claimed:
            return
        with self._db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            try:
                execution = runtime.start(run_id, Path(row.run_folder))
            except Exception as e:  # OSError locally; connection errors from a cluster
                row.status, row.finished_at, row.phase = FAILED, _now(), None
                row.error = f"Could not start a worker on the {runtime.name} runtime: {e}"
                return
            row.worker_pid = execution.pid
        self._executions[run_id] = (runtime.name, execution)
        threading.Thread(target=self._watch, args=(run_id, execution), daemon=True,
                         name=f"backtest-watch-{run_id}").start()

    def _watch(self, run_id: str, execution: Execution) -> None:
        lost = None
        code = None
        try:
            while code is None:
                code = execution.wait(SAMPLE_PERIOD_S)
                self._sample(run_id, execution)
        except RuntimeLostError as e:
            lost = str(e)
        except Exception as e:  # never let a watcher die silently: the run would hang
            log.exception("watching run %s failed", run_id)
            lost = f"the workbench lost track of the worker ({type(e).__name__}: {e})"
        try:
            self._sample(run_id, execution)
            self._finish(run_id, code if lost is None else 1, lost=lost)
        finally:
            with self._lock:
                self._executions.pop(run_id, None)
                self._done.notify_all()
            self._dispatch()

    def _sample(self, run_id: str, execution: Execution) -> None:
        used = execution.resources()
        if used is None:
            return
        previous = self._usage.get(run_id)
        peak = max(used.memory_bytes, previous.memory_bytes if previous else 0)
        self._usage[run_id] = Resources(used.cpu_seconds, peak)

    def _finish(self, run_id: str, code: int, lost: str | None = None) -> None:
        usage = self._usage.pop(run_id, None)
        with self._db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            if row is None:
                return
            if usage is not None:
                row.cpu_seconds, row.memory_bytes = usage.cpu_seconds, usage.memory_bytes
            if row.status in FINAL_STATES:
                return
            folder = Path(row.run_folder)
            row.finished_at = _now()
            row.phase = None
            row.paused_at = None
            if lost is None and code == 0 and (folder / RESULTS / "summary.json").exists():
                self._completed(row, folder)
            else:
                row.status = FAILED
                row.error = (f"Failed: {lost}. Run it again." if lost is not None
                             else self._failure_reason(folder, code))
                shutil.rmtree(folder / PARTIAL, ignore_errors=True)
            if usage is None:
                live = read_progress(folder / PROGRESS_FILE) or {}
                row.cpu_seconds, row.memory_bytes = live.get("cpu_seconds"), live.get("memory_bytes")

    @staticmethod
    def _completed(row: BacktestRunRow, folder: Path) -> None:
        stats = json.loads((folder / RESULTS / "summary.json").read_text())["statistics"]
        row.status, row.progress, row.error = COMPLETED, 1.0, None
        row.total_return, row.sharpe = stats.get("total_return"), stats.get("sharpe")
        row.max_drawdown, row.num_trades = stats.get("max_drawdown"), stats.get("num_trades")
        row.final_equity = stats.get("final_equity")

    @staticmethod
    def _failure_reason(folder: Path, code: int) -> str:
        error_file = folder / ERROR_FILE
        if error_file.exists():
            try:
                return json.loads(error_file.read_text())["error"]
            except (OSError, ValueError, KeyError):
                pass
        if code == EXIT_DISK_FULL:
            return DISK_FULL_MESSAGE
        if code < 0:
            return (f"The worker process was killed ({_signal_name(code)}) before it finished. "
                    "If memory ran out, shorten the date range; otherwise run it again.")
        return f"The worker process exited with code {code} without results; see {folder / WORKER_LOG}."

    # -- control ------------------------------------------------------------------------------
    def _handle(self, row: BacktestRunRow) -> Execution | None:
        """The worker of an active run: watched here, or a local one another process started,
        or one on a cluster (steered through its control file)."""
        watched = self._executions.get(row.run_id)
        if watched is not None:
            return watched[1]
        if row.runtime == "local":
            return PidExecution(row.worker_pid) if worker_alive(row.worker_pid, row.run_folder) else None
        if row.runtime == "docker":
            from services.backtest.docker_runtime import find_execution

            return find_execution(row.run_id)
        return ControlFileExecution(Path(row.run_folder))

    def _audit(self, session, actor, action, run_id, before, after, detail=None) -> None:
        session.add(AuditLog.row(actor, action, run_id, "ok", detail, before, after))

    def _authorise_control(self, principal: Principal | None, run_id: str) -> Principal:
        """The acting principal if it may control ``run_id`` (its own runs, or any as admin)."""
        with self._db.session() as session:
            row = self._row(session, run_id)
            owner, status = row.actor, row.status
        return self._auth.require(principal, "backtest.control", run_id, owner=owner,
                                  state=status)

    def _row(self, session, run_id: str) -> BacktestRunRow:
        row = session.get(BacktestRunRow, run_id)
        if row is None:
            raise RunNotFound(f"No backtest run {run_id!r}. List runs with "
                                "'nautilus-workbench backtest list'.")
        return row

    def pause(self, run_id: str, *, principal: Principal | None = None) -> RunInfo:
        """Suspend a running backtest's worker: it keeps its memory and slot but uses no CPU."""
        actor = self._authorise_control(principal, run_id)
        with self._lock, self._db.session() as session:
            row = self._row(session, run_id)
            if row.status != RUNNING:
                raise BacktestError(f"Run {run_id} is {row.status}; only a Running run can be "
                                    "paused.")
            handle = self._handle(row)
            if handle is None:
                raise BacktestError(f"The worker of run {run_id} is not reachable from here; "
                                    "it cannot be paused.")
            handle.suspend()
            row.status, row.paused_at = PAUSED, _now()
            self._audit(session, actor, "backtest.pause", run_id, RUNNING, PAUSED)
        return self.get(run_id)

    def resume(self, run_id: str, *, principal: Principal | None = None) -> RunInfo:
        """Let a paused backtest continue where it stopped."""
        actor = self._authorise_control(principal, run_id)
        with self._lock, self._db.session() as session:
            row = self._row(session, run_id)
            if row.status != PAUSED:
                raise BacktestError(f"Run {run_id} is {row.status}; only a Paused run can be "
                                    "resumed.")
            handle = self._handle(row)
            if handle is None:
                raise BacktestError(f"The worker of run {run_id} is not reachable from here; "
                                    "it cannot be resumed.")
            handle.resume()
            if row.paused_at is not None:
                row.paused_seconds = (row.paused_seconds or 0.0) + (
                    _now() - _aware(row.paused_at)).total_seconds()
            row.status, row.paused_at = RUNNING, None
            self._audit(session, actor, "backtest.resume", run_id, PAUSED, RUNNING)
        return self.get(run_id)

    def cancel(self, run_id: str, *, principal: Principal | None = None) -> RunInfo:
        """Stop a queued, running or paused backtest; it ends Cancelled, its partial results
        removed (the spec, config and worker log stay as the record)."""
        return self._cancel(run_id, self._authorise_control(principal, run_id))

    def _cancel(self, run_id: str, actor: Principal) -> RunInfo:
        with self._lock:
            with self._db.session() as session:
                row = self._row(session, run_id)
                before = row.status
                if before in FINAL_STATES:
                    raise BacktestError(f"Run {run_id} is already {before}; nothing to cancel.")
                handle = self._handle(row) if before in ACTIVE_STATES else None
                row.status, row.finished_at, row.phase, row.paused_at = CANCELLED, _now(), None, None
                row.error = f"Cancelled by {actor.name}."
                self._audit(session, actor, "backtest.cancel", run_id, before, CANCELLED)
                folder = Path(row.run_folder)
            if handle is not None:
                handle.kill()
            self._remove_partial(folder)
        return self.get(run_id)

    @staticmethod
    def _remove_partial(folder: Path) -> None:
        shutil.rmtree(folder / PARTIAL, ignore_errors=True)
        (folder / PROGRESS_FILE).unlink(missing_ok=True)

    def stop_sweep(self, sweep_id: str, *, principal: Principal | None = None) -> SweepInfo:
        """Cancel every run of the sweep that has not finished; finished runs keep results."""
        with self._db.session() as session:
            sweep = session.get(SweepRow, sweep_id)
            if sweep is None:
                raise RunNotFound(f"No sweep {sweep_id!r}. List sweeps with "
                                    "'nautilus-workbench backtest sweeps'.")
            owner = sweep.actor
        actor = self._auth.require(principal, "sweep.stop", sweep_id, owner=owner)
        with self._db.session() as session:
            sweep = session.get(SweepRow, sweep_id)
            sweep.stopped_at = sweep.stopped_at or _now()
            session.add(AuditLog.row(actor, "sweep.stop", sweep_id, "ok", to_state="Stopped"))
            # Queued runs first, so none of them starts in a slot a cancelled run frees.
            pending = session.scalars(
                select(BacktestRunRow).where(BacktestRunRow.sweep_id == sweep_id,
                                             BacktestRunRow.status.not_in(FINAL_STATES))
                .order_by(BacktestRunRow.status != QUEUED)
            ).all()
            pending_ids = [r.run_id for r in pending]
        for run_id in pending_ids:
            try:
                # The sweep's owner (or an admin) stops the sweep: its runs go with it.
                self._cancel(run_id, actor)
            except BacktestError:
                pass  # it finished meanwhile
        return self.sweep(sweep_id)

    def reconcile(self) -> None:
        """After a server start: active runs whose worker died end Failed ("Interrupted");
        live local workers of a previous server are adopted; queued runs start."""
        with self._lock, self._db.session() as session:
            rows = session.scalars(
                select(BacktestRunRow).where(BacktestRunRow.status.in_(ACTIVE_STATES))).all()
            for row in rows:
                if row.run_id in self._executions:
                    continue
                adopted = None
                if row.runtime == "local" and worker_alive(row.worker_pid, row.run_folder):
                    adopted = PidExecution(row.worker_pid)
                elif row.runtime == "docker":
                    from services.backtest.docker_runtime import find_execution

                    adopted = find_execution(row.run_id)
                if adopted is not None:
                    # A worker that outlived its server (workers run in their own session, or
                    # in their own container): adopt it, and finish its row when it exits.
                    execution = adopted
                    self._executions[row.run_id] = (row.runtime, execution)
                    threading.Thread(target=self._watch, args=(row.run_id, execution),
                                     daemon=True, name=f"backtest-adopt-{row.run_id}").start()
                    continue
                folder = Path(row.run_folder)
                if (folder / RESULTS / "summary.json").exists():
                    self._completed(row, folder)
                    row.finished_at, row.phase = _now(), None
                else:
                    row.error = ("Interrupted: the server stopped while this run was in progress "
                                 f"(it was {row.status.lower()} on the {row.runtime} runtime). "
                                 "Run it again.")
                    row.status, row.finished_at, row.phase, row.paused_at = FAILED, _now(), None, None
                    self._remove_partial(folder)
        self._dispatch()

    # -- queries ------------------------------------------------------------------------------
    def _info(self, row: BacktestRunRow) -> RunInfo:
        phase, progress = row.phase, row.progress
        sim_time = events = eta = None
        cpu, memory = row.cpu_seconds, row.memory_bytes
        if row.status in ACTIVE_STATES:
            live = read_progress(Path(row.run_folder) / PROGRESS_FILE) or {}
            if live:
                phase, progress = live["phase"], live["fraction"]
                events = live.get("events")
                if live.get("sim_time_ns"):
                    sim_time = pd.Timestamp(live["sim_time_ns"], unit="ns", tz="UTC").to_pydatetime()
                cpu, memory = live.get("cpu_seconds"), live.get("memory_bytes")
                eta = self._eta(row, live)
            usage = self._usage.get(row.run_id)
            if usage is not None:
                cpu, memory = usage.cpu_seconds, usage.memory_bytes
            if row.status == PAUSED:
                phase = "paused"
        spec = row.spec or {}
        return RunInfo(
            run_id=row.run_id, status=row.status, strategy=row.strategy,
            instrument_id=row.instrument_id, bar_type=row.bar_type,
            start=_aware(row.start), end=_aware(row.end), label=spec.get("label", ""),
            parameters=spec.get("parameters", {}), created_at=_aware(row.created_at),
            started_at=_aware(row.started_at), finished_at=_aware(row.finished_at),
            phase=phase, progress=progress, error=row.error, total_return=row.total_return,
            sharpe=row.sharpe, max_drawdown=row.max_drawdown, num_trades=row.num_trades,
            final_equity=row.final_equity, currency=row.currency, run_folder=row.run_folder,
            sweep_id=row.sweep_id, runtime=row.runtime or "local", sim_time=sim_time,
            events=events, eta_seconds=eta, cpu_seconds=cpu, memory_bytes=memory,
            actor=row.actor,
        )

    @staticmethod
    def _eta(row: BacktestRunRow, live: dict) -> float | None:
        """Seconds left: the wall time the engine needed so far (pauses excluded), scaled."""
        fraction, since = live.get("fraction") or 0.0, live.get("running_since")
        if row.status != RUNNING or live.get("phase") != "running" or since is None \
                or fraction < 0.01:
            return None
        active = live["wall_time"] - since - (row.paused_seconds or 0.0)
        return max(active, 0.0) * (1.0 - fraction) / fraction

    def get(self, run_id: str) -> RunInfo:
        with self._db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            if row is None:
                raise RunNotFound(f"No backtest run {run_id!r}. List runs with "
                                    "'nautilus-workbench backtest list'.")
            return self._info(row)

    def list_runs(self, limit: int = 500, sweep_id: str | None = None,
                  active_first: bool = False) -> list[RunInfo]:
        """Newest runs first (all of a sweep's runs with ``sweep_id``); with ``active_first``
        the running, paused and queued runs come before the others."""
        with self._db.session() as session:
            query = select(BacktestRunRow)
            if sweep_id is not None:
                query = query.where(BacktestRunRow.sweep_id == sweep_id)
            if active_first:
                query = query.order_by(BacktestRunRow.status.not_in((RUNNING, PAUSED, QUEUED)))
            rows = session.scalars(
                query.order_by(BacktestRunRow.created_at.desc()).limit(limit)).all()
            return [self._info(r) for r in rows]

    # -- sweeps -------------------------------------------------------------------------------
    def _sweep_info(self, session, row: SweepRow) -> SweepInfo:
        runs = session.scalars(select(BacktestRunRow).where(BacktestRunRow.sweep_id == row.sweep_id)
                               .order_by(BacktestRunRow.created_at, BacktestRunRow.run_id)).all()
        return SweepInfo(
            sweep_id=row.sweep_id, strategy=row.strategy, bar_type=row.bar_type,
            runtime=row.runtime, spec=row.spec, created_at=_aware(row.created_at),
            stopped_at=_aware(row.stopped_at), runs=[self._info(r) for r in runs],
            actor=row.actor)

    def sweep(self, sweep_id: str) -> SweepInfo:
        with self._db.session() as session:
            row = session.get(SweepRow, sweep_id)
            if row is None:
                raise RunNotFound(f"No sweep {sweep_id!r}. List sweeps with "
                                    "'nautilus-workbench backtest sweeps'.")
            return self._sweep_info(session, row)

    def list_sweeps(self, limit: int = 100) -> list[SweepInfo]:
        with self._db.session() as session:
            rows = session.scalars(
                select(SweepRow).order_by(SweepRow.created_at.desc()).limit(limit)).all()
            return [self._sweep_info(session, r) for r in rows]

    def wait_sweep(self, sweep_id: str, timeout: float | None = None, poll: float = 0.5,
                   on_progress=None) -> SweepInfo:
        """Block until every run of the sweep is final (or ``timeout``); ``on_progress(info)``
        is called after every poll."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.sweep(sweep_id)
            if on_progress is not None:
                on_progress(info)
            if info.is_final or (deadline is not None and time.monotonic() >= deadline):
                return info
            with self._lock:
                self._done.wait(timeout=poll)

    def run_statistics(self, run: RunInfo) -> dict:
        """All metrics of a completed run (statistics.json), cached: results never change."""
        cached = self._statistics_cache.get(run.run_id)
        if cached is None:
            try:
                cached = json.loads((Path(run.run_folder) / RESULTS / "statistics.json").read_text())
            except (OSError, ValueError):
                cached = {}
            self._statistics_cache[run.run_id] = cached
        return cached

    def sweep_metrics(self, sweep_id: str) -> list[str]:
        """The metrics the sweep's runs can be ranked by (sharpe, total_return, ...)."""
        return sweep_metrics(self, self.sweep(sweep_id))

    def leaderboard(self, sweep_id: str, metric: str = "sharpe") -> pd.DataFrame:
        """One row per run: status, the varied parameters, ``metric`` and the headline metrics;
        completed runs best first (higher is better, except for e.g. volatility)."""
        info = self.sweep(sweep_id)
        varied = list((info.spec.get("grid") or {}).keys())
        rows = []
        for run in info.runs:
            stats = self.run_statistics(run) if run.status == COMPLETED else {}
            value = stats.get(metric)
            rows.append({
                "run_id": run.run_id, "status": run.status,
                **{name: run.parameters.get(name) for name in varied},
                metric: value if _is_number(value) else None,
                **{k: stats.get(k) for k in ("total_return", "sharpe", "max_drawdown",
                                             "num_trades") if k != metric},
            })
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        if metric in NOT_A_METRIC or not any(_is_number(v) for v in frame[metric]) \
                and any(r.status == COMPLETED for r in info.runs):
            raise BacktestError(f"{metric!r} is not a metric of these runs; choose one of "
                                f"{', '.join(sweep_metrics(self, info))}")
        ascending = metric in LOWER_IS_BETTER
        return frame.sort_values(metric, ascending=ascending, na_position="last",
                                 kind="stable").reset_index(drop=True)

    def heatmap(self, sweep_id: str, metric: str, x: str, y: str) -> pd.DataFrame:
        """``metric`` of the completed runs over two varied parameters: rows ``y``, columns
        ``x`` (the mean where other parameters also vary)."""
        board = self.leaderboard(sweep_id, metric)
        for name in (x, y):
            if name not in board.columns or name in ("run_id", "status", metric):
                raise BacktestError(f"{name!r} is not a parameter this sweep varies; choose from "
                                    f"{', '.join(self.sweep(sweep_id).spec.get('grid') or {})}")
        if x == y:
            raise BacktestError("Choose two different parameters for the heatmap.")
        done = board[board["status"] == COMPLETED].dropna(subset=[metric])
        return done.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")

    def wait(self, run_id: str, timeout: float | None = None, poll: float = 0.2) -> RunInfo:
        """Block until the run is final (or ``timeout`` seconds pass) and return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.get(run_id)
            if info.is_final:
                return info
            if deadline is not None and time.monotonic() >= deadline:
                return info
            with self._lock:
                self._done.wait(timeout=poll)

    def results(self, run_id: str) -> RunResults:
        """Load a completed run's artefacts, or raise BacktestError saying why there are none."""
        info = self.get(run_id)
        if info.status != COMPLETED:
            reason = f": {info.error}" if info.error else "."
            raise BacktestError(f"Run {run_id} is {info.status}; it has no results{reason}")
        folder = Path(info.run_folder)
        results = folder / RESULTS
        try:
            loaded = RunResults(
                info=info,
                spec=json.loads((folder / "spec.json").read_text()),
                summary=json.loads((results / "summary.json").read_text()),
                statistics=json.loads((results / "statistics.json").read_text()),
                equity=pd.read_parquet(results / "equity.parquet"),
                fills=pd.read_parquet(results / "fills.parquet"),
                positions=pd.read_parquet(results / "positions.parquet"),
                orders=pd.read_parquet(results / "orders.parquet"),
                account=pd.read_parquet(results / "account.parquet"),
                config=json.loads((folder / "config.json").read_text()),
            )
            for name, frame in (("equity", loaded.equity), ("fills", loaded.fills),
                                ("positions", loaded.positions)):
                missing = _REQUIRED_COLUMNS[name] - set(frame.columns)
                if missing:
                    raise ValueError(f"{name}.parquet lacks the columns {sorted(missing)}")
            if loaded.statistics.get("metrics_version") != METRICS_VERSION:
                loaded = self._upgrade_metrics(loaded, results)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BacktestError(
                f"The results of run {run_id} in {folder} are missing or damaged ({e}). "
                "Run the backtest again."
            ) from e
        return loaded

    @staticmethod
    def _upgrade_metrics(loaded: RunResults, results: Path) -> RunResults:
        """Recompute the metrics of a run made by an older workbench and store them."""
        run_meta = json.loads((results.parent / "run.json").read_text())
        statistics = compute_statistics(
            loaded.equity, loaded.positions, float(loaded.fills["commission"].sum()),
            loaded.statistics["starting_balance"], fills=loaded.fills,
            multiplier=run_meta.get("multiplier", 1.0))
        summary = {**loaded.summary, "statistics": statistics}
        for name, data in (("statistics.json", statistics), ("summary.json", summary)):
            tmp = results / f".{name}.tmp"
            tmp.write_text(json.dumps(data, indent=2))
            os.replace(tmp, results / name)
        return replace(loaded, statistics=statistics, summary=summary)

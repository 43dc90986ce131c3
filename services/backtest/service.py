"""What users ask of backtests: validate, queue, control, wait, read. The scheduler
(services.backtest.scheduler) runs them; NautilusTrader runs only in worker processes.

A run goes Queued -> Running (<-> Paused) -> Completed | Failed | Cancelled. The database row
is the index (status, runtime, timings, headline statistics, CPU and memory, error text); the
run folder, written when the run starts, holds the artefacts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select

from services.audit import AuditLog
from services.backtest import analysis
from services.backtest.config_builder import build_run_config
from services.backtest.layout import PROGRESS_FILE
from services.backtest.metric_labels import RANKABLE_METRICS
from services.backtest.records import (
    ACTIVE_STATES,
    CANCELLED,
    COMPLETED,
    FINAL_STATES,
    PAUSED,
    QUEUED,
    RUNNING,
    RunInfo,
    SweepInfo,
    aware,
    now,
)
from services.backtest.repository import RunRepository
from services.backtest.results import ResultsStore, RunResults
from services.backtest.runtime import (
    RUNTIME_NAMES,
    ControlFileExecution,
    Execution,
    LocalRuntime,
    PidExecution,
    Runtime,
    unavailable_runtime_error,
    worker_alive,
)
from services.backtest.scheduler import Scheduler, live_lease, remove_partial, settle_lost
from services.backtest.spec import BacktestSpec
from services.backtest.sweep import SweepSpec, expand, run_specs
from services.backtest.sweep_statistics import SweepStatistics, returns_frame, sweep_statistics
from services.catalog import CatalogService
from services.db import BacktestRunRow, Database, SweepRow
from services.errors import BacktestError, RuntimeUnavailableError, StorageError, ValidationError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.research.overfitting import DEFAULT_PARTITIONS, check_partitions
from services.templates import TemplateService

log = logging.getLogger(__name__)

__all__ = ["ACTIVE_STATES", "BacktestService", "FINAL_STATES", "PlannedSweep", "RunInfo",
           "RunResults", "SweepInfo"]


@dataclass(frozen=True)
class PlannedSweep:
    """A validated sweep ready to be written: its row and one row per run."""

    sweep_id: str
    sweep: dict
    runs: list[dict]


def data_gap_warning(bar_type: str, holes) -> str:
    """The warning a run carries when its range spans holes in its data."""
    listed = "; ".join(h.describe() for h in holes[:3])
    more = f"; and {len(holes) - 3:,} more" if len(holes) > 3 else ""
    what = "a hole" if len(holes) == 1 else f"{len(holes):,} holes"
    return (f"The data of {bar_type} has {what} inside this run's range, where the market was "
            f"open and no bars were stored: {listed}{more}. Nothing traded there, and "
            "indicators and open positions carried across it.")


class BacktestService:
    """Queues backtests and sweeps, controls them and reads them back."""

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
        self._templates = templates
        self._catalog = catalog
        self._runs_dir = Path(runs_dir)
        self._runs_folder = str(self._runs_dir)
        self._auth = authorizer
        self.repository = RunRepository(database)
        self.store = ResultsStore()
        self._runtimes: dict[str, Runtime] = {"local": LocalRuntime(max_parallel)}
        self.scheduler: Scheduler | None = None
        self._changed = threading.Condition()
        self._listeners: list = []
        self._holes: dict[tuple, tuple] = {}
        self._steps: list = []
        self._docker = None  # the Docker seam, made on first use (see ``docker``)

    # -- the scheduler and its runtimes -------------------------------------------------------
    def start_scheduler(self, only: list[str] | None = None) -> Scheduler:
        """Run this installation's scheduler in this process (the server; ``nautilus-workbench
        scheduler``; a notebook without a server). It waits in standby while another process
        holds the scheduler's lease. ``only``: dispatch just these runs (``backtest run``)."""
        scheduler = Scheduler(self.repository, self.prepare, self._runtimes, only=only,
                              on_change=self._notify, steps=self._run_steps).start()
        if only is None:
            self.scheduler = scheduler
        return scheduler

    def add_listener(self, callback) -> None:
        """Call ``callback()`` whenever this process's scheduler changes a run's state."""
        self._listeners.append(callback)

    def add_step(self, step) -> None:
        """Have every scheduler this process runs call ``step(only)`` on each pass of its loop
        (see :class:`Scheduler`): ``step`` returns the ids of the runs it queued."""
        self._steps.append(step)

    def _run_steps(self, only: set[str] | None) -> list[str]:
        queued: list[str] = []
        for step in list(self._steps):
            queued.extend(step(only))
        return queued

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
        for callback in list(self._listeners):
            try:
                callback()
            except Exception:
                log.exception("backtest listener failed")

    @property
    def max_parallel(self) -> int:
        """How many runs the local runtime runs at once (default: the number of cores)."""
        return self._runtimes["local"].capacity()

    @max_parallel.setter
    def max_parallel(self, value: int) -> None:
        if value < 1:
            raise BacktestError(f"max_parallel must be at least 1, was {value}")
        self._runtimes["local"].max_parallel = value
        if self.scheduler is not None:
            self.scheduler.wake()

    def attach_runtime(self, runtime: Runtime) -> None:
        """Make ``runtime`` available to this process's scheduler (replacing one of its name)."""
        self._runtimes[runtime.name] = runtime
        if self.scheduler is not None:
            self.scheduler.attach(runtime)

    def runtime(self, name: str) -> Runtime:
        """The attached runtime called ``name``, or RuntimeUnavailableError saying how to get it."""
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise unavailable_runtime_error(name)
        return runtime

    @property
    def runtime_names(self) -> list[str]:
        return list(self._runtimes)

    def attached_runtime(self, name: str) -> Runtime | None:
        """The runtime called ``name`` if this process has it, else None."""
        return self._runtimes.get(name)

    @property
    def authorizer(self) -> Authorizer:
        return self._auth

    def runtime_options(self) -> list:
        """Every runtime (RuntimeOption): available now, or why not and the app's fix."""
        from services.backtest.runtime_options import runtime_options

        return runtime_options(self, self.docker)

    def enable_docker_runtime(self, *, principal: Principal | None = None, progress=None):
        """Build the engine image if it is missing (an admin; ``progress(line)`` gets the build's
        output) and attach the docker runtime; the ImageBuild, or None if none was needed."""
        from services.backtest.runtime_options import enable_docker_runtime

        return enable_docker_runtime(self, self.docker, principal, progress)

    @property
    def docker(self):
        """The Docker seam the docker runtime's checks and builds go through."""
        if self._docker is None:
            from services.engine.docker_api import DockerGateway

            self._docker = DockerGateway(timeout=10)
        return self._docker

    @docker.setter
    def docker(self, gateway) -> None:
        self._docker = gateway

    def close(self) -> None:
        """Stop this process's scheduler and close every runtime but the local one (its
        workers keep running; the next scheduler adopts them)."""
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        for name in [n for n in self._runtimes if n != "local"]:
            self._runtimes.pop(name).close()

    def check_runtime(self, runtime: str) -> None:
        """Refuse a runtime nobody could run the queued runs on."""
        if runtime not in RUNTIME_NAMES:
            raise unavailable_runtime_error(runtime)
        lease = None if self.scheduler is not None else live_lease(self.repository)
        if lease is not None and lease.scope == "all":
            if runtime not in lease.runtimes:
                raise RuntimeUnavailableError(
                    f"The scheduler that runs this installation's backtests, {lease.describe()}, "
                    f"has no {runtime} runtime (it has {', '.join(lease.runtimes)}); nothing "
                    "was queued.")
        elif runtime not in self._runtimes:
            raise unavailable_runtime_error(runtime)

    # -- submission ---------------------------------------------------------------------------
    def validate(self, spec: BacktestSpec, progress_file: str | None = None):
        """Return the BacktestRunConfig for ``spec`` or raise a WorkbenchError saying why not.

        The config runs as it is (e.g. with BacktestNode); its progress reporter writes to
        ``progress_file`` (default: a file in the system's temporary folder).
        """
        if progress_file is None:
            progress_file = str(Path(tempfile.gettempdir())
                                / f"workbench-progress-{uuid.uuid4().hex}.json")
        config, resolved = self._build(spec, progress_file=progress_file)
        self._refuse_no_data(spec.bar_type, resolved)
        return config

    def _build(self, spec: BacktestSpec, progress_file: str):
        strategy = self._templates.strategy(spec.strategy)
        engine = self._templates.backtest_engine()
        return build_run_config(spec, strategy, engine, self._catalog, progress_file)

    def _refuse_no_data(self, bar_type: str, resolved: dict) -> None:
        """A range without a bar would run to "Completed, 0 trades": refuse it, naming the
        stretches that do hold data."""
        start, end = resolved["start"], resolved["end"]
        if self._catalog.rows_between(bar_type, start, end):
            return
        coverage = self._catalog.coverage(bar_type)
        raise ValidationError(f"no bars of {bar_type} between {start:%Y-%m-%d %H:%M} and "
                              f"{end:%Y-%m-%d %H:%M} UTC; the data has {coverage.describe()}")

    def _data_holes(self, bar_type: str, resolved: dict) -> tuple:
        """The holes of the run's data inside its range (Hole values)."""
        series = resolved["series"]
        # Runs of a sweep share bar type and range: the coverage is read once for all of them
        # (a change of the data changes the series' rows or last timestamp, and so the key).
        key = (bar_type, resolved["start"], resolved["end"], series.rows, series.last)
        if key not in self._holes:
            if len(self._holes) >= 64:  # a few entries per sweep; never more than these
                self._holes.clear()
            self._holes[key] = self._catalog.coverage(bar_type).holes_within(
                resolved["start"], resolved["end"])
        return self._holes[key]

    @staticmethod
    def _new_id() -> str:
        return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]

    def _row(self, run_id: str, spec: BacktestSpec, resolved: dict, owner: str,
             runtime: str, sweep_id: str | None, created_at: datetime,
             walk_forward_id: str | None = None) -> dict:
        return dict(
            run_id=run_id, status=QUEUED, strategy=spec.strategy,
            instrument_id=resolved["instrument"].instrument_id, bar_type=spec.bar_type,
            start=resolved["start"].to_pydatetime(), end=resolved["end"].to_pydatetime(),
            spec=spec.to_dict(), run_folder=os.path.join(self._runs_folder, run_id),
            actor=owner, created_at=created_at, currency=resolved["currency"],
            phase="queued", runtime=runtime, sweep_id=sweep_id, paused_seconds=0.0,
            walk_forward_id=walk_forward_id)

    def submit(self, spec: BacktestSpec, *, principal: Principal | None = None,
               runtime: str = "local", action: str = "backtest.submit") -> str:
        """Validate ``spec`` and queue it; the scheduler starts it when a slot is free.

        ``action`` is what authorises the submission: ``backtest.submit``, or the action of
        the feature a run belongs to (the pipeline's drift reruns: ``strategy.drift``).
        """
        actor = self._auth.require(principal, action, f"{spec.strategy} on {spec.bar_type}")
        self.check_runtime(runtime)
        _, resolved = self._build(spec, progress_file=str(Path(tempfile.gettempdir()) / "x"))
        self._refuse_no_data(spec.bar_type, resolved)
        run_id = self._new_id()
        with self._db.session() as session:
            session.add(BacktestRunRow(**self._row(run_id, spec, resolved, actor.name, runtime,
                                                   None, now())))
            session.add(AuditLog.row(actor, action, run_id, "ok",
                                     f"{spec.strategy} on {spec.bar_type} ({runtime})",
                                     to_state=QUEUED))
        self._wake()
        return run_id

    def submit_sweep(self, spec: SweepSpec, *, principal: Principal | None = None,
                     runtime: str = "local") -> str:
        """Validate every run of the sweep and queue them all in one transaction (or none).

        The full NautilusTrader configuration is built for the first run (dates, venue, data
        are the same for all); each run's parameters are checked against the template. Run
        folders are written when each run starts, so 10,000 runs queue in seconds.
        """
        actor = self._auth.require(principal, "sweep.submit",
                                   f"{spec.strategy} on {spec.bar_type}")
        self.check_runtime(runtime)
        planned = self.plan_sweep(spec, actor.name, runtime)
        with self._db.session() as session:
            self.insert_sweep(session, planned)
            session.add(AuditLog.row(actor, "sweep.submit", planned.sweep_id, "ok",
                                     f"{len(planned.runs)} runs of {spec.strategy} on "
                                     f"{spec.bar_type} ({runtime})", to_state=QUEUED))
        self._wake()
        return planned.sweep_id

    def plan_sweep(self, spec: SweepSpec, owner: str, runtime: str,
                   walk_forward_id: str | None = None) -> PlannedSweep:
        """Validate every run of ``spec`` and return the rows that queue them for ``owner``,
        unwritten: for callers that authorised the owner for ``sweep.submit`` and write them
        with :meth:`insert_sweep`, e.g. with other rows in one transaction."""
        template = self._templates.strategy(spec.strategy)
        series = self._catalog.backtestable_series(spec.bar_type)
        instrument_class = self._catalog.instrument(series.instrument_id).instrument_class
        specs = run_specs(spec, expand(spec, template, instrument_class))
        _, resolved = self._build(specs[0], progress_file=str(Path(tempfile.gettempdir()) / "x"))
        self._refuse_no_data(spec.bar_type, resolved)
        sweep_id = "sweep-" + self._new_id()
        created = now()
        base = self._new_id()
        rows = [self._row(f"{base}-{i:05d}", run_spec, resolved, owner, runtime, sweep_id,
                          created, walk_forward_id) for i, run_spec in enumerate(specs)]
        sweep = dict(sweep_id=sweep_id, strategy=spec.strategy, bar_type=spec.bar_type,
                     spec={**spec.to_dict(), "combinations": len(specs)}, runtime=runtime,
                     num_runs=len(specs), actor=owner, created_at=created)
        return PlannedSweep(sweep_id, sweep, rows)

    @staticmethod
    def insert_sweep(session, planned: PlannedSweep) -> None:
        """Write a planned sweep and its runs in ``session`` (one batched insert)."""
        session.add(SweepRow(**planned.sweep))
        session.flush()
        session.execute(insert(BacktestRunRow), planned.runs)

    def plan_run(self, spec: BacktestSpec, owner: str, runtime: str,
                 walk_forward_id: str | None = None) -> dict:
        """Validate ``spec`` and return the row that queues it, unwritten (see plan_sweep)."""
        _, resolved = self._build(spec, progress_file=str(Path(tempfile.gettempdir()) / "x"))
        return self._row(self._new_id(), spec, resolved, owner, runtime, None, now(),
                         walk_forward_id)

    def wake(self) -> None:
        """Have this process's scheduler look at the queue now (after rows were written)."""
        self._wake()

    def notify(self) -> None:
        """Tell this process's listeners (the live state) that runs changed."""
        self._notify()

    def prepare(self, run_id: str) -> None:
        """Write a claimed run's folder: spec, the exact NautilusTrader config, run facts."""
        info = self.repository.get(run_id)
        with self._db.session() as session:
            spec = BacktestSpec.from_dict(self.repository.row(session, run_id).spec)
        folder = Path(info.run_folder)
        config, resolved = self._build(spec, progress_file=str(folder / PROGRESS_FILE))
        instrument = resolved["instrument"]
        holes = self._data_holes(spec.bar_type, resolved)
        venue = config.venues[0]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "spec.json").write_text(json.dumps(spec.to_dict(), indent=2))
            (folder / "config.json").write_bytes(config.json())
            (folder / "run.json").write_text(json.dumps({
                "run_id": run_id, "catalog": self._catalog.location, "bar_type": spec.bar_type,
                "instrument_id": instrument.instrument_id,
                "start": resolved["start"].isoformat(), "end": resolved["end"].isoformat(),
                "starting_balance": float(venue.starting_balances[0].split()[0]),
                "currency": resolved["currency"], "multiplier": instrument.multiplier,
                "price_precision": instrument.price_precision,
                "size_precision": instrument.size_precision,
                "warnings": [data_gap_warning(spec.bar_type, holes)] if holes else [],
                # Where the charts break their price line: no bars there.
                "data_holes": [[h.after.isoformat(), h.until.isoformat()] for h in holes],
            }, indent=2))
        except OSError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise StorageError(f"Cannot create the run folder {folder}: {e.strerror or e}. "
                               "Check the state folder's free space and permissions.") from e

    def _wake(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    # -- control ------------------------------------------------------------------------------
    def _handle(self, row: BacktestRunRow) -> Execution | None:
        """The worker of an active run: watched by this process's scheduler, or a local one
        another process started, or one in a container or on a cluster."""
        if self.scheduler is not None:
            watched = self.scheduler.execution(row.run_id)
            if watched is not None:
                return watched
        if row.runtime == "local":
            return PidExecution(row.worker_pid) if worker_alive(row.worker_pid,
                                                                row.run_folder) else None
        if row.runtime == "docker":
            from services.backtest.docker_runtime import find_execution

            return find_execution(row.run_id)
        return ControlFileExecution(Path(row.run_folder))

    def _authorise_control(self, principal: Principal | None, run_id: str) -> Principal:
        """The acting principal if it may control ``run_id`` (its own runs, or any as admin)."""
        with self._db.session() as session:
            row = self.repository.row(session, run_id)
            owner, status = row.actor, row.status
        return self._auth.require(principal, "backtest.control", run_id, owner=owner,
                                  state=status)

    def pause(self, run_id: str, *, principal: Principal | None = None) -> RunInfo:
        """Suspend a running backtest's worker: it keeps its memory and slot but uses no CPU."""
        actor = self._authorise_control(principal, run_id)
        with self._db.session() as session:
            row = self.repository.row(session, run_id)
            if row.status != RUNNING:
                raise BacktestError(f"Run {run_id} is {row.status}; only a Running run can be "
                                    "paused.")
            handle = self._handle(row)
            if handle is None:
                raise BacktestError(f"The worker of run {run_id} is not reachable from here; "
                                    "it cannot be paused.")
            handle.suspend()
            row.status, row.paused_at = PAUSED, now()
            session.add(AuditLog.row(actor, "backtest.pause", run_id, "ok", None, RUNNING,
                                     PAUSED))
        self._notify()
        return self.get(run_id)

    def resume(self, run_id: str, *, principal: Principal | None = None) -> RunInfo:
        """Let a paused backtest continue where it stopped."""
        actor = self._authorise_control(principal, run_id)
        with self._db.session() as session:
            row = self.repository.row(session, run_id)
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
                    now() - aware(row.paused_at)).total_seconds()
            row.status, row.paused_at = RUNNING, None
            session.add(AuditLog.row(actor, "backtest.resume", run_id, "ok", None, PAUSED,
                                     RUNNING))
        self._notify()
        return self.get(run_id)

    def cancel(self, run_id: str, *, principal: Principal | None = None) -> RunInfo:
        """Stop a queued, running or paused backtest; it ends Cancelled, its partial results
        removed (the spec, config and worker log stay as the record)."""
        return self._cancel(run_id, self._authorise_control(principal, run_id))

    def _cancel(self, run_id: str, actor: Principal) -> RunInfo:
        with self._db.session() as session:
            row = self.repository.row(session, run_id)
            before = row.status
            if before in FINAL_STATES:
                raise BacktestError(f"Run {run_id} is already {before}; nothing to cancel.")
            handle = self._handle(row) if before in ACTIVE_STATES else None
            row.status, row.finished_at, row.phase, row.paused_at = CANCELLED, now(), None, None
            row.error = f"Cancelled by {actor.name}."
            session.add(AuditLog.row(actor, "backtest.cancel", run_id, "ok", None, before,
                                     CANCELLED))
            folder = Path(row.run_folder)
        if handle is not None:
            handle.kill()
        remove_partial(folder)
        self._notify()
        return self.get(run_id)

    def stop_sweep(self, sweep_id: str, *, principal: Principal | None = None) -> SweepInfo:
        """Cancel every run of the sweep that has not finished; finished runs keep results."""
        owner = self.repository.sweep(sweep_id).actor
        actor = self._auth.require(principal, "sweep.stop", sweep_id, owner=owner)
        with self._db.session() as session:
            sweep = session.get(SweepRow, sweep_id)
            sweep.stopped_at = sweep.stopped_at or now()
            session.add(AuditLog.row(actor, "sweep.stop", sweep_id, "ok", to_state="Stopped"))
            # Queued runs first, so none of them starts in a slot a cancelled run frees.
            pending = session.scalars(
                select(BacktestRunRow.run_id).where(BacktestRunRow.sweep_id == sweep_id,
                                                    BacktestRunRow.status.not_in(FINAL_STATES))
                .order_by(BacktestRunRow.status != QUEUED)).all()
        for run_id in pending:
            try:
                # The sweep's owner (or an admin) stops the sweep: its runs go with it.
                self._cancel(run_id, actor)
            except BacktestError:
                pass  # it finished meanwhile
        return self.sweep(sweep_id)

    # -- reading ------------------------------------------------------------------------------
    def get(self, run_id: str) -> RunInfo:
        with self._db.session() as session:
            row = self.repository.row(session, run_id)
            usage = self.scheduler.usage(run_id) if self.scheduler is not None else None
            return self.repository.info(row, usage)

    def list_runs(self, limit: int = 500, sweep_id: str | None = None,
                  active_first: bool = False, offset: int = 0,
                  status: str | None = None) -> list[RunInfo]:
        return self.repository.list_runs(limit, sweep_id, active_first, offset, status)

    def latest_completed(self) -> RunInfo | None:
        """The newest completed run, also behind a sweep of thousands of cancelled ones."""
        return next(iter(self.repository.list_runs(1, status=COMPLETED)), None)

    def sweep(self, sweep_id: str) -> SweepInfo:
        return self.repository.sweep(sweep_id)

    def list_sweeps(self, limit: int = 100) -> list[SweepInfo]:
        return self.repository.list_sweeps(limit)

    def results(self, run_id: str) -> RunResults:
        """Load a completed run's artefacts (once per process), or raise BacktestError saying
        why there are none."""
        return self.store.results(self.get(run_id))

    def run_statistics(self, run: RunInfo) -> dict:
        """All metrics of a completed run (statistics.json), cached: results never change."""
        return self.store.statistics(run)

    # Each reading below takes the SweepInfo a caller already read (``info``), so that one
    # view of a 10,000-run sweep reads its runs once, not once per figure.
    def sweep_metrics(self, sweep_id: str, info: SweepInfo | None = None) -> list[str]:
        """The metrics the sweep's runs can be ranked by (sharpe, total_return, ...)."""
        return analysis.sweep_metrics(info or self.sweep(sweep_id), self.run_statistics)

    def leaderboard(self, sweep_id: str, metric: str = "sharpe", by: str = "metric",
                    info: SweepInfo | None = None):
        """The sweep's runs ranked by ``metric`` (``by="smoothed"``: by its neighbourhood-
        smoothed value, see analysis.leaderboard)."""
        return analysis.leaderboard(info or self.sweep(sweep_id), metric, self.run_statistics,
                                    by)

    def heatmap(self, sweep_id: str, metric: str, x: str, y: str,
                info: SweepInfo | None = None):
        return analysis.heatmap(info or self.sweep(sweep_id), metric, x, y, self.run_statistics)

    def stability(self, sweep_id: str, metric: str = "sharpe", info: SweepInfo | None = None):
        """The local stability of ``metric`` over the sweep's grid (ParameterStability), or
        ValidationError saying why there is none (fewer than two varied parameters, ...)."""
        return analysis.stability(info or self.sweep(sweep_id), metric, self.run_statistics)

    def sweep_statistics(self, sweep_id: str, partitions: int = DEFAULT_PARTITIONS,
                         info: SweepInfo | None = None) -> SweepStatistics:
        """The overfitting statistics of a sweep: PSR of every completed run, the deflated
        Sharpe ratio of the best, PBO by CSCV with ``partitions`` partitions, the best run's
        minimum track record, the trials counted from the sweep; one note per figure that
        cannot be computed."""
        check_partitions(partitions)
        runs = (info or self.sweep(sweep_id)).runs
        completed = [r for r in runs if r.status == COMPLETED]
        ppy = next((self.run_statistics(r).get("periods_per_year") for r in completed), None)
        return sweep_statistics(sweep_id, runs, returns_frame(completed, self.store.daily_returns),
                                ppy, partitions)

    @staticmethod
    def validate_metric(metric: str) -> str:
        """``metric`` if runs can be ranked by it, else ValidationError listing those that can
        (before a sweep runs, not after)."""
        if metric not in RANKABLE_METRICS:
            raise ValidationError(f"{metric!r} is not a metric runs can be ranked by; choose one "
                                  f"of {', '.join(RANKABLE_METRICS)}")
        return metric

    # -- leftovers (the doctor) ---------------------------------------------------------------
    def orphaned_runs(self) -> list[RunInfo]:
        """Runs recorded Running or Paused whose worker is gone while no scheduler follows
        them (a live scheduler reconciles its own)."""
        if live_lease(self.repository) is not None or self.scheduler is not None:
            return []
        with self._db.session() as session:
            rows = session.scalars(select(BacktestRunRow).where(
                BacktestRunRow.status.in_(ACTIVE_STATES))).all()
            gone = [r.run_id for r in rows if Scheduler._adoptable(
                r.run_id, r.runtime, r.worker_pid, r.run_folder) is None]
        return [self.get(run_id) for run_id in gone]

    def settle_orphan(self, run_id: str) -> RunInfo:
        """End an orphaned run (see :meth:`orphaned_runs`): Completed if its results are all
        written, else Failed ("Interrupted"); a run with a live worker is left alone."""
        with self._db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            if row is not None and row.status in ACTIVE_STATES and Scheduler._adoptable(
                    row.run_id, row.runtime, row.worker_pid, row.run_folder) is None:
                settle_lost(row, "the workbench lost this run's worker while it was "
                                 f"{row.status.lower()} on the {row.runtime} runtime.")
        return self.get(run_id)

    # -- waiting ------------------------------------------------------------------------------
    def wait(self, run_id: str, timeout: float | None = None, poll: float = 0.2) -> RunInfo:
        """Block until the run is final (or ``timeout`` seconds pass) and return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.get(run_id)
            if info.is_final or (deadline is not None and time.monotonic() >= deadline):
                return info
            with self._changed:
                self._changed.wait(timeout=poll)

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
            with self._changed:
                self._changed.wait(timeout=poll)

    def wait_for_change(self, timeout: float) -> None:
        """Block until this process's scheduler changes a run (or ``timeout`` seconds pass)."""
        with self._changed:
            self._changed.wait(timeout=timeout)

    def scheduled_here(self, run_ids: list[str]) -> Scheduler | None:
        """If no scheduler runs this installation's backtests, start one in this process for
        just ``run_ids`` (what ``backtest run`` does) and return it; else None."""
        if live_lease(self.repository) is not None or self.scheduler is not None:
            return None
        scheduler = self.start_scheduler(only=run_ids)
        if not scheduler.wait_active(timeout=5.0):
            scheduler.stop()
            return None  # another scheduler took the lease meanwhile: it runs them
        return scheduler

"""Submit, track, list and read backtests. NautilusTrader runs only in worker processes.

A run goes Queued -> Running -> Completed | Failed | Cancelled. The database row is the index
(status, timings, headline statistics, error text); the run folder holds the artefacts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psutil
from sqlalchemy import select

from services.backtest.config_builder import build_run_config
from services.backtest.progress import read_progress
from services.backtest.spec import BacktestSpec
from services.backtest.statistics import METRICS_VERSION, compute_statistics
from services.backtest.layout import ERROR_FILE, PROGRESS_FILE, RESULTS, WORKER_LOG
from services.catalog import CatalogService
from services.db import AuditEntry, BacktestRunRow, Database
from services.errors import BacktestError, StorageError
from services.settings import PROJECT_ROOT
from services.templates import TemplateService

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "Queued", "Running", "Completed", "Failed", "Cancelled"
FINAL_STATES = (COMPLETED, FAILED, CANCELLED)


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

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

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


def _worker_alive(pid: int | None, run_folder: str) -> bool:
    """True if ``pid`` is still this run's worker (not a recycled pid of another process)."""
    if pid is None:
        return False
    try:
        return run_folder in psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class BacktestService:
    """Runs backtests in worker processes, at most ``max_parallel`` at once."""

    def __init__(
        self,
        database: Database,
        templates: TemplateService,
        catalog: CatalogService,
        runs_dir: Path,
        max_parallel: int | None = None,
    ) -> None:
        self._db = database
        self._templates = templates
        self._catalog = catalog
        self._runs_dir = Path(runs_dir)
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen] = {}
        self._done = threading.Condition(self._lock)

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

    def submit(self, spec: BacktestSpec, actor: str = "local") -> str:
        """Validate ``spec``, record it as Queued and start it when a worker slot is free."""
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
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
            raise StorageError(f"Cannot create the run folder {folder}: {e.strerror or e}. "
                               "Check the state folder's free space and permissions.") from e
        with self._db.session() as session:
            session.add(BacktestRunRow(
                run_id=run_id, status=QUEUED, strategy=spec.strategy,
                instrument_id=instrument.instrument_id, bar_type=spec.bar_type,
                start=resolved["start"].to_pydatetime(), end=resolved["end"].to_pydatetime(),
                spec=spec.to_dict(), run_folder=str(folder), actor=actor, created_at=_now(),
                currency=resolved["currency"], phase="queued",
            ))
            session.add(AuditEntry(ts=_now(), actor=actor, action="backtest.submit", target=run_id,
                                   from_state=None, to_state=QUEUED, outcome="ok",
                                   detail=f"{spec.strategy} on {spec.bar_type}"))
        self._dispatch()
        return run_id

    def _dispatch(self) -> None:
        """Start queued runs while worker slots are free (oldest first)."""
        with self._lock:
            free = self.max_parallel - len(self._processes)
            if free <= 0:
                return
            with self._db.session() as session:
                queued = session.scalars(
                    select(BacktestRunRow).where(BacktestRunRow.status == QUEUED)
                    .order_by(BacktestRunRow.created_at).limit(free)
                ).all()
                for row in queued:
                    self._start_worker(row)

    def _start_worker(self, row: BacktestRunRow) -> None:
        folder = Path(row.run_folder)
        env = dict(os.environ)
        # Workers import the project's packages (strategies, progress actor) even when the
        # project is not installed, e.g. when run from a source checkout.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        try:
            log = open(folder / WORKER_LOG, "wb")
            process = subprocess.Popen(
                [sys.executable, "-m", "services.backtest.worker", str(folder)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )
            log.close()
        except OSError as e:
            row.status, row.finished_at = FAILED, _now()
            row.error = f"Could not start a worker process: {e}"
            return
        row.status, row.started_at, row.worker_pid, row.phase = RUNNING, _now(), process.pid, "starting"
        self._processes[row.run_id] = process
        threading.Thread(target=self._watch, args=(row.run_id, process), daemon=True,
                         name=f"backtest-watch-{row.run_id}").start()

    def _watch(self, run_id: str, process: subprocess.Popen) -> None:
        code = process.wait()
        try:
            self._finish(run_id, code)
        finally:
            with self._lock:
                self._processes.pop(run_id, None)
                self._done.notify_all()
            self._dispatch()

    def _watch_orphan(self, run_id: str, pid: int) -> None:
        """Wait for a worker this process did not start (no exit code), then finish its run."""
        try:
            psutil.Process(pid).wait()
        except psutil.NoSuchProcess:
            pass
        with self._db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            folder = Path(row.run_folder) if row is not None else None
        has_results = folder is not None and (folder / RESULTS / "summary.json").exists()
        self._finish(run_id, 0 if has_results else 1)
        self._dispatch()

    def _finish(self, run_id: str, code: int) -> None:
        with self._db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            if row is None or row.status in FINAL_STATES:
                return
            folder = Path(row.run_folder)
            row.finished_at = _now()
            row.phase = None
            if code == 0 and (folder / RESULTS / "summary.json").exists():
                summary = json.loads((folder / RESULTS / "summary.json").read_text())
                stats = summary["statistics"]
                row.status, row.progress = COMPLETED, 1.0
                row.total_return = stats.get("total_return")
                row.sharpe = stats.get("sharpe")
                row.max_drawdown = stats.get("max_drawdown")
                row.num_trades = stats.get("num_trades")
                row.final_equity = stats.get("final_equity")
            else:
                row.status = FAILED
                row.error = self._failure_reason(folder, code)

    @staticmethod
    def _failure_reason(folder: Path, code: int) -> str:
        error_file = folder / ERROR_FILE
        if error_file.exists():
            try:
                return json.loads(error_file.read_text())["error"]
            except (OSError, ValueError, KeyError):
                pass
        if code < 0:
            return (f"The worker process was killed ({_signal_name(code)}) before it finished. "
                    "If memory ran out, shorten the date range; otherwise run it again.")
        return f"The worker process exited with code {code} without results; see {folder / WORKER_LOG}."

    # -- control ------------------------------------------------------------------------------
    def cancel(self, run_id: str, actor: str = "local") -> RunInfo:
        """Stop a queued or running backtest; it ends Cancelled with no results."""
        with self._lock:
            process = self._processes.get(run_id)
            with self._db.session() as session:
                row = session.get(BacktestRunRow, run_id)
                if row is None:
                    raise BacktestError(f"No backtest run {run_id!r}.")
                before = row.status
                if before in FINAL_STATES:
                    raise BacktestError(f"Run {run_id} is already {before}; nothing to cancel.")
                row.status, row.finished_at, row.phase = CANCELLED, _now(), None
                row.error = f"Cancelled by {actor}."
                session.add(AuditEntry(ts=_now(), actor=actor, action="backtest.cancel", target=run_id,
                                       from_state=before, to_state=CANCELLED, outcome="ok"))
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
        return self.get(run_id)

    def reconcile(self) -> None:
        """After a server start: runs left Running by a dead worker end Failed; queued ones start."""
        with self._db.session() as session:
            rows = session.scalars(select(BacktestRunRow).where(BacktestRunRow.status == RUNNING)).all()
            for row in rows:
                if row.run_id in self._processes:
                    continue
                if _worker_alive(row.worker_pid, row.run_folder):
                    # A worker that outlived its server (workers run in their own session):
                    # adopt it, and finish its row when it exits.
                    threading.Thread(target=self._watch_orphan, args=(row.run_id, row.worker_pid),
                                     daemon=True, name=f"backtest-adopt-{row.run_id}").start()
                    continue
                folder = Path(row.run_folder)
                if (folder / RESULTS / "summary.json").exists():
                    self._finish_row_from_folder(row, folder)
                else:
                    row.status, row.finished_at, row.phase = FAILED, _now(), None
                    row.error = ("Interrupted: the server stopped while this run was in progress. "
                                 "Run it again.")
        self._dispatch()

    def _finish_row_from_folder(self, row: BacktestRunRow, folder: Path) -> None:
        stats = json.loads((folder / RESULTS / "summary.json").read_text())["statistics"]
        row.status, row.finished_at, row.phase, row.progress = COMPLETED, _now(), None, 1.0
        row.total_return, row.sharpe = stats.get("total_return"), stats.get("sharpe")
        row.max_drawdown, row.num_trades = stats.get("max_drawdown"), stats.get("num_trades")
        row.final_equity = stats.get("final_equity")

    # -- queries ------------------------------------------------------------------------------
    def _info(self, row: BacktestRunRow) -> RunInfo:
        phase, progress = row.phase, row.progress
        if row.status == RUNNING:
            live = read_progress(Path(row.run_folder) / PROGRESS_FILE)
            if live:
                phase, progress = live["phase"], live["fraction"]
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
        )

    def get(self, run_id: str) -> RunInfo:
        with self._db.session() as session:
            row = session.get(BacktestRunRow, run_id)
            if row is None:
                raise BacktestError(f"No backtest run {run_id!r}. List runs with "
                                    "'nautilus-workbench backtest list'.")
            return self._info(row)

    def list_runs(self, limit: int = 500) -> list[RunInfo]:
        with self._db.session() as session:
            rows = session.scalars(
                select(BacktestRunRow).order_by(BacktestRunRow.created_at.desc()).limit(limit)
            ).all()
            return [self._info(r) for r in rows]

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

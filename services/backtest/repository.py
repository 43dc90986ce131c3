"""The backtest runs and sweeps in the database: rows in, RunInfo/SweepInfo out.

Every process reads runs through this; only the scheduler changes a run's state after it was
queued (services.backtest.scheduler), and the service records what users ask for
(services.backtest.service).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, or_, select, update

from services.backtest.eta import Estimate, estimate
from services.backtest.layout import PROGRESS_FILE
from services.backtest.records import (
    ACTIVE_STATES,
    FINAL_STATES,
    PAUSED,
    QUEUED,
    RUNNING,
    RunInfo,
    SweepInfo,
    SweepSummary,
    aware,
    read_progress,
)
from services.db import BacktestRunRow, Database, SweepRow, WalkForwardRow
from services.errors import RunNotFound

_BATCH = 500  # run ids per IN (...) query


class RunRepository:
    """Reads and writes ``backtest_runs`` and ``sweeps``."""

    def __init__(self, database: Database) -> None:
        self.db = database

    # -- reading ----------------------------------------------------------------------------
    def info(self, row: BacktestRunRow, usage=None) -> RunInfo:
        """The run as readers see it; an active run's phase, progress, simulated time, ETA,
        CPU and memory come from its worker's progress file (or ``usage``, what its
        scheduler measured)."""
        phase, progress = row.phase, row.progress
        sim_time = events = eta = None
        cpu, memory = row.cpu_seconds, row.memory_bytes
        if row.status in ACTIVE_STATES:
            live = read_progress(Path(row.run_folder) / PROGRESS_FILE) or {}
            if live:
                phase, progress = live["phase"], live["fraction"]
                events = live.get("events")
                if live.get("sim_time_ns"):
                    sim_time = datetime.fromtimestamp(live["sim_time_ns"] / 1e9, UTC)
                cpu, memory = live.get("cpu_seconds"), live.get("memory_bytes")
                eta = _eta(row, live)
            if usage is not None:
                cpu, memory = usage.cpu_seconds, usage.memory_bytes
            if row.status == PAUSED:
                phase = "paused"
        spec = row.spec or {}
        return RunInfo(
            run_id=row.run_id, status=row.status, strategy=row.strategy,
            instrument_id=row.instrument_id, bar_type=row.bar_type,
            start=aware(row.start), end=aware(row.end), label=spec.get("label", ""),
            parameters=spec.get("parameters", {}), created_at=aware(row.created_at),
            started_at=aware(row.started_at), finished_at=aware(row.finished_at),
            phase=phase, progress=progress, error=row.error, total_return=row.total_return,
            sharpe=row.sharpe, max_drawdown=row.max_drawdown, num_trades=row.num_trades,
            final_equity=row.final_equity, currency=row.currency, run_folder=row.run_folder,
            sweep_id=row.sweep_id, runtime=row.runtime or "local", sim_time=sim_time,
            events=events, eta=eta, cpu_seconds=cpu, memory_bytes=memory,
            actor=row.actor,
        )

    def get(self, run_id: str) -> RunInfo:
        with self.db.session() as session:
            return self.info(self.row(session, run_id))

    @staticmethod
    def row(session, run_id: str) -> BacktestRunRow:
        row = session.get(BacktestRunRow, run_id)
        if row is None:
            raise RunNotFound(f"No backtest run {run_id!r}. List runs with "
                              "'nautilus-workbench backtest list'.")
        return row

    def list_runs(self, limit: int = 500, sweep_id: str | None = None,
                  active_first: bool = False, offset: int = 0,
                  status: str | None = None) -> list[RunInfo]:
        """Newest runs first (all of a sweep's runs with ``sweep_id``, only those in
        ``status`` with it); with ``active_first`` the running, paused and queued runs come
        before the others."""
        query = select(BacktestRunRow)
        if sweep_id is not None:
            query = query.where(BacktestRunRow.sweep_id == sweep_id)
        if status is not None:
            query = query.where(BacktestRunRow.status == status)
        with self.db.session() as session:
            rows = session.scalars(_newest(query, active_first).offset(offset).limit(limit)).all()
            return [self.info(r) for r in rows]

    def recent_statuses(self, limit: int) -> list[tuple[str, str]]:
        """(run id, status) of the runs ``list_runs(limit, active_first=True)`` lists, in its
        order: two columns, so a reader can re-read only the runs that changed."""
        query = select(BacktestRunRow.run_id, BacktestRunRow.status)
        with self.db.session() as session:
            return [tuple(r) for r in session.execute(_newest(query, True).limit(limit)).all()]

    def count(self, statuses: Iterable[str], runtime: str | None = None,
              run_ids: Iterable[str] | None = None) -> int:
        """How many runs (of ``runtime``, among ``run_ids``) are in one of ``statuses``."""
        query = select(func.count()).select_from(BacktestRunRow).where(
            BacktestRunRow.status.in_(list(statuses)))
        if runtime is not None:
            query = query.where(BacktestRunRow.runtime == runtime)
        if run_ids is not None:
            query = query.where(BacktestRunRow.run_id.in_(list(run_ids)))
        with self.db.session() as session:
            return session.scalar(query) or 0

    def sweep_statuses(self, sweep_id: str) -> dict[str, str]:
        """Run id -> status of every run of a sweep (two columns: cheap for 10,000 runs)."""
        with self.db.session() as session:
            return dict(session.execute(select(BacktestRunRow.run_id, BacktestRunRow.status)
                                        .where(BacktestRunRow.sweep_id == sweep_id)).all())

    def runs(self, run_ids: Iterable[str]) -> list[RunInfo]:
        """The runs ``run_ids`` (in no particular order), read in batches."""
        ids, result = list(run_ids), []
        with self.db.session() as session:
            for start in range(0, len(ids), _BATCH):
                rows = session.scalars(select(BacktestRunRow).where(
                    BacktestRunRow.run_id.in_(ids[start:start + _BATCH]))).all()
                result.extend(self.info(r) for r in rows)
        return result

    def statuses(self, run_ids: Iterable[str]) -> dict[str, str]:
        with self.db.session() as session:
            return dict(session.execute(select(BacktestRunRow.run_id, BacktestRunRow.status)
                                        .where(BacktestRunRow.run_id.in_(list(run_ids)))).all())

    def oldest_queued(self, runtime: str, limit: int,
                      only: Iterable[str] | None = None) -> list[str]:
        """The oldest queued runs of ``runtime`` (among ``only``), leaving out the runs of
        paused walk-forward analyses."""
        paused = select(WalkForwardRow.walk_forward_id).where(
            WalkForwardRow.paused_at.is_not(None))
        query = (select(BacktestRunRow.run_id)
                 .where(BacktestRunRow.status == QUEUED, BacktestRunRow.runtime == runtime,
                        or_(BacktestRunRow.walk_forward_id.is_(None),
                            BacktestRunRow.walk_forward_id.not_in(paused)))
                 .order_by(BacktestRunRow.created_at, BacktestRunRow.run_id).limit(limit))
        if only is not None:
            query = query.where(BacktestRunRow.run_id.in_(list(only)))
        with self.db.session() as session:
            return list(session.scalars(query))

    def claim(self, run_id: str) -> bool:
        """Queued -> Running, atomically; False if the run is not Queued any more."""
        with self.db.session() as session:
            return bool(session.execute(
                update(BacktestRunRow)
                .where(BacktestRunRow.run_id == run_id, BacktestRunRow.status == QUEUED)
                .values(status=RUNNING, started_at=datetime.now(UTC), phase="starting")
            ).rowcount)

    # -- sweeps -----------------------------------------------------------------------------
    def _sweep_info(self, session, row: SweepRow) -> SweepInfo:
        runs = session.scalars(select(BacktestRunRow).where(BacktestRunRow.sweep_id == row.sweep_id)
                               .order_by(BacktestRunRow.created_at, BacktestRunRow.run_id)).all()
        return SweepInfo(
            sweep_id=row.sweep_id, strategy=row.strategy, bar_type=row.bar_type,
            runtime=row.runtime, spec=row.spec, created_at=aware(row.created_at),
            stopped_at=aware(row.stopped_at), runs=[self.info(r) for r in runs],
            actor=row.actor)

    def sweep(self, sweep_id: str) -> SweepInfo:
        with self.db.session() as session:
            row = session.get(SweepRow, sweep_id)
            if row is None:
                raise RunNotFound(f"No sweep {sweep_id!r}. List sweeps with "
                                  "'nautilus-workbench backtest sweeps'.")
            return self._sweep_info(session, row)

    def sweep_summaries(self, limit: int = 50, sweep_ids: Iterable[str] | None = None
                        ) -> list[SweepSummary]:
        """The newest sweeps (or ``sweep_ids``) with their runs counted by status in SQL (a
        10,000-run sweep costs one grouped query, not 10,000 rows)."""
        with self.db.session() as session:
            query = select(SweepRow).order_by(SweepRow.created_at.desc()).limit(limit)
            if sweep_ids is not None:
                query = query.where(SweepRow.sweep_id.in_(list(sweep_ids)))
            sweeps = session.scalars(query).all()
            ids = [s.sweep_id for s in sweeps]
            counts: dict[str, dict[str, int]] = {i: {} for i in ids}
            for sweep_id, status, n in session.execute(
                    select(BacktestRunRow.sweep_id, BacktestRunRow.status, func.count())
                    .where(BacktestRunRow.sweep_id.in_(ids))
                    .group_by(BacktestRunRow.sweep_id, BacktestRunRow.status)):
                counts[sweep_id][status] = n
            running: dict[str, float] = {i: 0.0 for i in ids}
            for row in session.scalars(select(BacktestRunRow).where(
                    BacktestRunRow.sweep_id.in_(ids),
                    BacktestRunRow.status.in_(ACTIVE_STATES))):
                running[row.sweep_id] += self.info(row).progress or 0.0
            summaries = []
            for s in sweeps:
                by_status = counts[s.sweep_id]
                total = sum(by_status.values())
                final = sum(n for status, n in by_status.items() if status in FINAL_STATES)
                summaries.append(SweepSummary(
                    s.sweep_id, s.strategy, s.bar_type, s.runtime, aware(s.created_at),
                    aware(s.stopped_at), s.actor, tuple(sorted(by_status.items())),
                    (final + running[s.sweep_id]) / total if total else 1.0, s.spec))
            return summaries

    def sweep_summary(self, sweep_id: str) -> SweepSummary:
        """One sweep's summary (see sweep_summaries), or RunNotFound."""
        found = self.sweep_summaries(limit=1, sweep_ids=[sweep_id])
        if not found:
            raise RunNotFound(f"No sweep {sweep_id!r}. List sweeps with "
                              "'nautilus-workbench backtest sweeps'.")
        return found[0]

    def list_sweeps(self, limit: int = 100) -> list[SweepInfo]:
        with self.db.session() as session:
            rows = session.scalars(
                select(SweepRow).order_by(SweepRow.created_at.desc()).limit(limit)).all()
            return [self._sweep_info(session, r) for r in rows]


def _eta(row: BacktestRunRow, live: dict) -> Estimate | None:
    """Time left, from the worker's recent throughput (services/backtest/eta.py)."""
    if row.status != RUNNING or live.get("phase") != "running":
        return None
    return estimate([tuple(s) for s in live.get("samples") or []])


def _newest(query, active_first: bool):
    """``query`` newest runs first; with ``active_first`` running, paused and queued ones
    before the others."""
    if active_first:
        query = query.order_by(BacktestRunRow.status.not_in((RUNNING, PAUSED, QUEUED)))
    return query.order_by(BacktestRunRow.created_at.desc())

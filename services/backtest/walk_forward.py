"""Walk-forward analysis: optimise on a train window, run the choice on the window after it,
move on, and see whether the optimisation's promise holds out of sample.

A walk-forward is folds over a date range. Fold k trains on ``[train_start, train_end)`` (a
sweep of the parameter grid: rolling windows of ``train_days``, or anchored at the range's start
and growing) and tests on ``[train_end, train_end + test_days)``; the next fold starts
``step_days`` later. Everything is validated and every fold's train sweep is queued in one
transaction at submission. When a train sweep is done, :meth:`WalkForwardService.advance`
chooses its best parameters by the analysis's metric and queues the fold's test run. That step
runs inside the installation's scheduler (``Scheduler(steps=...)``), never in the submitting
process: a walk-forward goes on when its submitter exits, and after a restart the next scheduler
continues from the database.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update

from services.audit import AuditLog
from services.backtest.config_builder import resolve_time_range
from services.backtest.metric_labels import LOWER_IS_BETTER
from services.backtest.records import (
    ACTIVE_STATES,
    COMPLETED,
    FINAL_STATES,
    PAUSED,
    QUEUED,
    RUNNING,
    RunInfo,
    aware,
    is_number,
    now,
)
from services.backtest.spec import BacktestSpec, VenueSettings
from services.backtest.statistics import daily_returns, periods_per_year
from services.backtest.sweep import MAX_RUNS, SweepSpec
from services.backtest.sweep_statistics import SweepStatistics
from services.catalog import CatalogService
from services.db import BacktestRunRow, Database, WalkForwardFoldRow, WalkForwardRow
from services.errors import BacktestError, RunNotFound, ValidationError, WorkbenchError
from services.identity.authorizer import Authorizer
from services.identity.principal import Principal
from services.research import (
    MinimumTrackRecord,
    ProbabilisticSharpe,
    minimum_track_record,
    probabilistic_sharpe,
)
from services.research.walk_forward import (
    ChoiceStability,
    WalkForwardEfficiency,
    annualised_return,
    choice_stability,
    stitch_equity,
    walk_forward_efficiency,
)

log = logging.getLogger(__name__)

MAX_FOLDS = 200
PAUSE_WAIT_S = 5.0  # how long a pause waits for runs that were starting their workers
_DAY = pd.Timedelta(days=1)
SCHEDULER = Principal.system("scheduler")


@dataclass(frozen=True)
class WalkForwardSpec:
    """A walk-forward analysis as the user describes it."""

    strategy: str
    bar_type: str
    grid: dict[str, list[Any]]
    train_days: float
    test_days: float
    start: str | None = None  # ISO 8601; None: the start of the data
    end: str | None = None  # ISO 8601; None: the end of the data
    step_days: float | None = None  # None: test_days (back-to-back test windows)
    anchored: bool = False  # every train window starts at ``start`` and grows by the step
    metric: str = "sharpe"  # the train sweep's best run by this metric is chosen
    random_draws: int | None = None  # per fold, the same draws from the grid (seeded)
    seed: int = 0
    constraints: tuple[str, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)
    venue: VenueSettings = field(default_factory=VenueSettings)
    label: str = ""

    def sweep(self) -> SweepSpec:
        """The sweep every train window runs (dates set per fold)."""
        return SweepSpec(strategy=self.strategy, bar_type=self.bar_type, grid=self.grid,
                         random_draws=self.random_draws, seed=self.seed,
                         constraints=self.constraints, fixed=self.fixed, venue=self.venue,
                         label=self.label)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(self.sweep().to_dict())  # the grid's and fixed values as JSON values
        for name in ("start", "end"):
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WalkForwardSpec:
        data = dict(data)
        venue = VenueSettings(**(data.pop("venue", None) or {}))
        data["constraints"] = tuple(data.get("constraints") or ())
        known = set(cls.__dataclass_fields__)
        return cls(venue=venue, **{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Fold:
    """The windows of one fold (UTC, end excluded)."""

    index: int  # from 1
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def _days(value, name: str, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value <= 0:
        problems.append(f"{name}: must be a positive number of days, was {value!r}")
        return None
    return float(value)


def plan_folds(start: pd.Timestamp, end: pd.Timestamp, train_days: float, test_days: float,
               step_days: float | None = None, anchored: bool = False) -> list[Fold]:
    """Return the folds that fit in ``[start, end)``.

    Rolling: fold k trains on ``[start + k*step, start + k*step + train)``; anchored: on
    ``[start, start + train + k*step)``. Either way it tests on the ``test_days`` that follow
    its train window, and the last fold is the last whose test window ends by ``end``.

    Raises
    ------
    ValidationError
        For lengths that are not positive, a step shorter than the test window (the test
        windows would overlap), or a range too short for one fold (saying how long it is).
    """
    problems: list[str] = []
    train = _days(train_days, "train", problems)
    test = _days(test_days, "test", problems)
    step = test if step_days is None else _days(step_days, "step", problems)
    if test is not None and step is not None and step < test:
        problems.append(f"step: {step:g} days is shorter than the test window ({test:g} days), "
                        "so test windows would overlap and the out-of-sample curve could not "
                        "be stitched; use a step of at least the test length")
    if problems:
        raise ValidationError("Invalid walk-forward folds", problems)
    train_span, test_span, step_span = (pd.Timedelta(days=d) for d in (train, test, step))
    span_days = (end - start) / _DAY
    if start + train_span + test_span > end:
        raise ValidationError(
            f"The folds do not fit the range: one fold needs {train:g} train + {test:g} test = "
            f"{train + test:g} days but {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} spans "
            f"{span_days:.1f} days; shorten --train/--test or widen the range.")
    folds = []
    k = 0
    while True:
        offset = step_span * k
        train_start = start if anchored else start + offset
        train_end = start + train_span + offset
        test_end = train_end + test_span
        if test_end > end:
            break
        folds.append(Fold(k + 1, train_start, train_end, train_end, test_end))
        k += 1
        if len(folds) > MAX_FOLDS:
            raise ValidationError(
                f"The walk-forward has more than {MAX_FOLDS} folds over {span_days:.0f} days; "
                "use a longer --step or a shorter range.")
    return folds


def check_windows(folds: list[Fold], times: pd.DatetimeIndex, bar_type: str) -> None:
    """Raise ValidationError naming the first window of ``folds`` holding no bar of ``times``
    (bar close times: a window holds the bars that close after its start, up to its end)."""
    stamps = times.as_unit("ns").asi8
    for fold in folds:
        for what, first, last in (("train", fold.train_start, fold.train_end),
                                  ("test", fold.test_start, fold.test_end)):
            lo, hi = np.searchsorted(stamps, [first.value, last.value], side="right")
            if hi <= lo:
                raise ValidationError(
                    f"Fold {fold.index}'s {what} window {first:%Y-%m-%d %H:%M} to "
                    f"{last:%Y-%m-%d %H:%M} holds no bars of {bar_type} (the data has a gap "
                    "there); move --start or change --train/--test/--step so that every "
                    "window has data.")


# -- what readers see -------------------------------------------------------------------------
@dataclass(frozen=True)
class FoldInfo:
    """One fold as readers see it."""

    fold: int
    train_start: datetime
    train_end: datetime
    test_start: datetime
    test_end: datetime
    sweep_id: str
    trials: int  # runs of the train sweep
    chosen_run_id: str | None
    parameters: dict | None  # chosen on the train window
    in_sample: float | None  # the metric of the chosen run on the train window
    test_run_id: str | None
    out_of_sample: float | None  # the metric of the test run
    error: str | None
    status: str  # Training, Testing, Done, Failed (error), Cancelled

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class WalkForwardInfo:
    """A walk-forward analysis and where it stands (counted in SQL, without its runs)."""

    walk_forward_id: str
    status: str
    strategy: str
    bar_type: str
    runtime: str
    metric: str
    spec: dict
    actor: str
    created_at: datetime
    paused_at: datetime | None
    stopped_at: datetime | None
    finished_at: datetime | None
    folds: tuple[FoldInfo, ...]
    counts: tuple[tuple[str, int], ...]  # runs by status (train and test)
    progress: float  # share of the expected runs (train runs and one test run per fold) done

    def count(self, *statuses: str) -> int:
        return sum(n for status, n in self.counts if status in statuses)

    @property
    def runs(self) -> int:
        return sum(n for _, n in self.counts)

    @property
    def is_final(self) -> bool:
        return self.status in ("Completed", "Finished with failures", "Stopped")


@dataclass(frozen=True)
class FoldResult:
    """A fold's figures: its metric and annualised returns in and out of sample."""

    info: FoldInfo
    in_sample_return: float | None  # total return of the chosen run on the train window
    out_of_sample_return: float | None  # of the test run
    in_sample_annualised: float | None
    out_of_sample_annualised: float | None
    efficiency: float | None  # out_of_sample_annualised / in_sample_annualised
    statistics: SweepStatistics | None  # of the train sweep (trials, DSR, PBO)


@dataclass(frozen=True)
class OutOfSample:
    """The stitched out-of-sample curve's figures."""

    days: int  # daily returns
    total_return: float | None
    annualised_return: float | None
    sharpe: float | None
    max_drawdown: float | None
    psr: ProbabilisticSharpe | None
    min_track_record: MinimumTrackRecord | None
    trials: int  # train runs the choices were made from
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"days": self.days, "total_return": self.total_return,
                "annualised_return": self.annualised_return, "sharpe": self.sharpe,
                "max_drawdown": self.max_drawdown,
                "psr": self.psr.to_dict() if self.psr else None,
                "min_track_record": (self.min_track_record.to_dict() if self.min_track_record
                                     else None),
                "trials": self.trials, "notes": list(self.notes)}


@dataclass(frozen=True)
class WalkForwardResult:
    """Everything a walk-forward shows: folds, efficiency, out-of-sample curve, stability."""

    info: WalkForwardInfo
    folds: tuple[FoldResult, ...]
    efficiency: WalkForwardEfficiency
    equity: pd.Series  # stitched out-of-sample equity (from the starting balance)
    out_of_sample: OutOfSample
    stability: ChoiceStability
    currency: str | None

    def table(self) -> pd.DataFrame:
        """The folds table: windows, chosen parameters, in- and out-of-sample figures."""
        metric = self.info.metric
        rows = [{
            "fold": f.info.fold, "train_start": f.info.train_start, "train_end": f.info.train_end,
            "test_start": f.info.test_start, "test_end": f.info.test_end,
            "parameters": " ".join(f"{k}={v}" for k, v in (f.info.parameters or {}).items()),
            f"in_sample_{metric}": f.info.in_sample, f"out_of_sample_{metric}": f.info.out_of_sample,
            "in_sample_return": f.in_sample_return, "out_of_sample_return": f.out_of_sample_return,
            "efficiency": f.efficiency, "trials": f.info.trials,
            "deflated_sharpe": (f.statistics.deflated_sharpe.value
                                if f.statistics and f.statistics.deflated_sharpe else None),
            "pbo": f.statistics.pbo.value if f.statistics and f.statistics.pbo else None,
            "status": f.info.status, "note": f.info.error or "",
        } for f in self.folds]
        return pd.DataFrame(rows)


def _status(row: WalkForwardRow, folds: list[FoldInfo], counts: dict[str, int]) -> str:
    unfinished = sum(n for s, n in counts.items() if s not in FINAL_STATES)
    if row.stopped_at is not None:
        return "Stopping" if unfinished else "Stopped"
    if row.finished_at is not None:
        done = all(f.status == "Done" for f in folds)
        return "Completed" if done else "Finished with failures"
    if row.paused_at is not None:
        return "Paused"
    started = sum(n for s, n in counts.items() if s != QUEUED)
    return RUNNING if started or any(f.test_run_id for f in folds) else QUEUED


def _fold_status(fold: WalkForwardFoldRow, test_status: str | None) -> str:
    if fold.error:
        return "Failed"
    if fold.test_run_id is None:
        return "Training"
    if test_status == COMPLETED:
        return "Done"
    if test_status in FINAL_STATES:
        return test_status
    return "Testing"


class WalkForwardService:
    """Submits walk-forward analyses, advances them from the scheduler, reads their results."""

    def __init__(self, backtests, database: Database,
                 catalog: CatalogService | Callable[[], CatalogService],
                 authorizer: Authorizer) -> None:
        self._backtests = backtests
        self._db = database
        # A function is called when data is first needed: listing analyses (the live state,
        # the CLI) must not open the catalog.
        self._catalog_source = catalog
        self._auth = authorizer

    @property
    def _catalog(self) -> CatalogService:
        if callable(self._catalog_source):
            self._catalog_source = self._catalog_source()
        return self._catalog_source

    # -- submission ---------------------------------------------------------------------------
    def submit(self, spec: WalkForwardSpec, *, principal: Principal | None = None,
               runtime: str = "local") -> str:
        """Validate the folds, every train run and each fold's test window, then queue every
        fold's train sweep in one transaction (or nothing)."""
        actor = self._auth.require(principal, "sweep.submit",
                                   f"walk-forward of {spec.strategy} on {spec.bar_type}")
        backtests = self._backtests
        backtests.validate_metric(spec.metric)
        backtests.check_runtime(runtime)
        series = self._catalog.backtestable_series(spec.bar_type)
        whole = BacktestSpec(strategy=spec.strategy, bar_type=spec.bar_type, start=spec.start,
                             end=spec.end)
        first, last = resolve_time_range(whole, series)  # refuses a range outside the data
        given_start, given_end = whole.time_range()
        # Folds start where the user said (or on the data's first day), not a bar's time.
        start = given_start if given_start is not None else first.floor("D")
        end = given_end if given_end is not None else last
        folds = plan_folds(start, end, spec.train_days, spec.test_days, spec.step_days,
                           spec.anchored)
        bars = self._catalog.bars(spec.bar_type, start, end, columns=["close"])
        check_windows(folds, bars.index, spec.bar_type)
        walk_forward_id = "wf-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + \
            uuid.uuid4().hex[:6]
        sweep = spec.sweep()
        planned = []
        for fold in folds:
            plan = backtests.plan_sweep(
                replace(sweep, start=fold.train_start.isoformat(),
                        end=fold.train_end.isoformat()), actor.name, runtime, walk_forward_id)
            planned.append(plan)
            total = sum(len(p.runs) for p in planned)
            if total > MAX_RUNS:
                raise ValidationError(
                    f"The walk-forward has {len(folds)} folds x {len(plan.runs):,} combinations "
                    f"= {len(folds) * len(plan.runs):,} train runs; the limit is {MAX_RUNS:,}. "
                    "Use fewer folds (a longer --step) or fewer combinations (--random N).")
        # The test windows must run too: the grid's first point stands for every choice.
        first = {k: v for k, v in planned[0].runs[0]["spec"]["parameters"].items()}
        for fold in folds:
            backtests.plan_run(self._test_spec(spec, fold.test_start, fold.test_end, fold.index,
                                               first), actor.name, runtime, walk_forward_id)
        created = now()
        with self._db.session() as session:
            session.add(WalkForwardRow(
                walk_forward_id=walk_forward_id, strategy=spec.strategy, bar_type=spec.bar_type,
                spec={**spec.to_dict(), "runtime": runtime}, runtime=runtime, actor=actor.name,
                created_at=created))
            session.flush()
            for fold, plan in zip(folds, planned, strict=True):
                session.add(WalkForwardFoldRow(
                    walk_forward_id=walk_forward_id, fold=fold.index,
                    train_start=fold.train_start.to_pydatetime(),
                    train_end=fold.train_end.to_pydatetime(),
                    test_start=fold.test_start.to_pydatetime(),
                    test_end=fold.test_end.to_pydatetime(), sweep_id=plan.sweep_id))
                backtests.insert_sweep(session, plan)
            session.add(AuditLog.row(
                actor, "sweep.submit", walk_forward_id, "ok",
                f"walk-forward of {spec.strategy} on {spec.bar_type}: {len(folds)} folds x "
                f"{len(planned[0].runs)} combinations ({runtime})", to_state=QUEUED))
        backtests.wake()
        return walk_forward_id

    @staticmethod
    def _test_spec(spec: WalkForwardSpec, start, end, fold: int, parameters: dict
                   ) -> BacktestSpec:
        return BacktestSpec(
            strategy=spec.strategy, bar_type=spec.bar_type, parameters=dict(parameters),
            start=pd.Timestamp(start).isoformat(), end=pd.Timestamp(end).isoformat(),
            venue=spec.venue, label=f"{spec.label + ' ' if spec.label else ''}fold {fold} test")

    # -- the scheduler's step -----------------------------------------------------------------
    def advance(self, only: set[str] | None = None) -> list[str]:
        """Move every open walk-forward on: choose the parameters of each fold whose train
        sweep is done and queue its test run, record finished test runs, finish analyses whose
        folds are all done. ``only``: just the analyses with a run among these ids (a scheduler
        for its own runs). Returns the ids of the runs queued."""
        query = select(WalkForwardRow.walk_forward_id).where(
            WalkForwardRow.finished_at.is_(None), WalkForwardRow.stopped_at.is_(None),
            WalkForwardRow.paused_at.is_(None))
        if only is not None:
            if not only:
                return []
            query = query.where(WalkForwardRow.walk_forward_id.in_(
                select(BacktestRunRow.walk_forward_id).where(BacktestRunRow.run_id.in_(only))
                .distinct()))
        with self._db.session() as session:
            open_ids = list(session.scalars(query))
        queued: list[str] = []
        for walk_forward_id in open_ids:
            try:
                queued.extend(self._advance(walk_forward_id))
            except WorkbenchError as e:  # e.g. the catalog changed under it: say so, go on
                log.warning("walk-forward %s: %s", walk_forward_id, e)
        return queued

    def _advance(self, walk_forward_id: str) -> list[str]:
        repository = self._backtests.repository
        with self._db.session() as session:
            row = session.get(WalkForwardRow, walk_forward_id)
            spec = WalkForwardSpec.from_dict(row.spec)
            runtime, owner = row.runtime, row.actor
            folds = session.scalars(select(WalkForwardFoldRow).where(
                WalkForwardFoldRow.walk_forward_id == walk_forward_id)
                .order_by(WalkForwardFoldRow.fold)).all()
            unfinished = dict(session.execute(
                select(BacktestRunRow.sweep_id, func.count())
                .where(BacktestRunRow.walk_forward_id == walk_forward_id,
                       BacktestRunRow.status.not_in(FINAL_STATES))
                .group_by(BacktestRunRow.sweep_id)).all())
            tests = {f.test_run_id for f in folds if f.test_run_id}
            test_runs = {r.run_id: repository.info(r) for r in session.scalars(
                select(BacktestRunRow).where(BacktestRunRow.run_id.in_(tests)))} if tests else {}
            pending = [(f.fold, f.sweep_id, f.test_start, f.test_end) for f in folds
                       if f.test_run_id is None and f.finished_at is None
                       and unfinished.get(f.sweep_id, 0) == 0]
            recorded = [(f.fold, test_runs[f.test_run_id]) for f in folds
                        if f.test_run_id and f.finished_at is None
                        and test_runs[f.test_run_id].is_final]
        queued = []
        for fold, sweep_id, test_start, test_end in pending:
            run_id = self._test_fold(walk_forward_id, spec, runtime, owner, fold, sweep_id,
                                     test_start, test_end)
            if run_id:
                queued.append(run_id)
        for fold, run in recorded:
            self._record_test(walk_forward_id, spec.metric, fold, run)
        self._finish_if_done(walk_forward_id)
        if pending or recorded:
            self._backtests.notify()
        return queued

    def _choose(self, runs: list[RunInfo], metric: str) -> tuple[RunInfo, float] | str:
        """The best completed run by ``metric`` (the first of equals in grid order), or why
        there is none."""
        completed = [r for r in runs if r.status == COMPLETED]
        if not completed:
            failed = {s: sum(r.status == s for r in runs) for s in FINAL_STATES if s != COMPLETED}
            how = ", ".join(f"{n} {s.lower()}" for s, n in failed.items() if n)
            return f"none of its {len(runs)} train runs completed ({how})"
        scored = [(r, self._backtests.run_statistics(r).get(metric)) for r in completed]
        scored = [(r, float(v)) for r, v in scored if is_number(v)]
        if not scored:
            return (f"none of its {len(completed)} completed train runs has a {metric} (they "
                    "made no trades, or the metric is undefined for them)")
        pick = min if metric in LOWER_IS_BETTER else max
        return pick(scored, key=lambda pair: pair[1])

    def _test_fold(self, walk_forward_id: str, spec: WalkForwardSpec, runtime: str, owner: str,
                   fold: int, sweep_id: str, test_start, test_end) -> str | None:
        runs = self._backtests.repository.list_runs(limit=MAX_RUNS, sweep_id=sweep_id)
        runs.sort(key=lambda r: r.run_id)  # grid order: ties go to the first point
        choice = self._choose(runs, spec.metric)
        with self._db.session() as session:
            if isinstance(choice, str):
                session.execute(update(WalkForwardFoldRow).where(
                    WalkForwardFoldRow.walk_forward_id == walk_forward_id,
                    WalkForwardFoldRow.fold == fold, WalkForwardFoldRow.finished_at.is_(None))
                    .values(error=f"Fold {fold}: {choice}: no parameters to choose, so it has "
                                  "no test run.", finished_at=now()))
                return None
            best, value = choice
            try:
                row = self._backtests.plan_run(
                    self._test_spec(spec, aware(test_start), aware(test_end), fold,
                                    best.parameters), owner, runtime, walk_forward_id)
            except WorkbenchError as e:  # the data or template changed since submission
                session.execute(update(WalkForwardFoldRow).where(
                    WalkForwardFoldRow.walk_forward_id == walk_forward_id,
                    WalkForwardFoldRow.fold == fold).values(
                    chosen_run_id=best.run_id, parameters=best.parameters, in_sample=value,
                    error=f"Fold {fold}: its test run cannot run: {' '.join(str(e).split())}",
                    finished_at=now()))
                return None
            # Conditional on no test run yet: a second scheduler pass never queues another.
            claimed = session.execute(update(WalkForwardFoldRow).where(
                WalkForwardFoldRow.walk_forward_id == walk_forward_id,
                WalkForwardFoldRow.fold == fold, WalkForwardFoldRow.test_run_id.is_(None))
                .values(chosen_run_id=best.run_id, parameters=best.parameters, in_sample=value,
                        test_run_id=row["run_id"])).rowcount
            if not claimed:
                return None
            session.add(BacktestRunRow(**row))
            session.add(AuditLog.row(
                SCHEDULER, "walk_forward.test", walk_forward_id, "ok",
                f"fold {fold}: run {row['run_id']} with "
                + " ".join(f"{k}={v}" for k, v in best.parameters.items())
                + f" ({spec.metric} {value:.4g} on the train window, run {best.run_id})",
                to_state=QUEUED))
        return row["run_id"]

    def _record_test(self, walk_forward_id: str, metric: str, fold: int, run: RunInfo) -> None:
        values: dict = {"finished_at": now()}
        if run.status == COMPLETED:
            # None when the test run made no trades (no Sharpe ratio): the fold is still done.
            value = self._backtests.run_statistics(run).get(metric)
            values["out_of_sample"] = float(value) if is_number(value) else None
        else:
            reason = f": {run.error}" if run.error else ""
            values["error"] = (f"Fold {fold}: its test run {run.run_id} is "
                               f"{run.status.lower()}{reason}")
        with self._db.session() as session:
            session.execute(update(WalkForwardFoldRow).where(
                WalkForwardFoldRow.walk_forward_id == walk_forward_id,
                WalkForwardFoldRow.fold == fold).values(**values))

    def _finish_if_done(self, walk_forward_id: str) -> None:
        with self._db.session() as session:
            folds = session.scalars(select(WalkForwardFoldRow).where(
                WalkForwardFoldRow.walk_forward_id == walk_forward_id)).all()
            if all(f.finished_at is not None for f in folds):
                session.execute(update(WalkForwardRow).where(
                    WalkForwardRow.walk_forward_id == walk_forward_id,
                    WalkForwardRow.finished_at.is_(None)).values(finished_at=now()))

    # -- control ------------------------------------------------------------------------------
    def _authorise(self, principal: Principal | None, walk_forward_id: str) -> Principal:
        with self._db.session() as session:
            row = session.get(WalkForwardRow, walk_forward_id)
            if row is None:
                raise RunNotFound(f"No walk-forward analysis {walk_forward_id!r}. List them "
                                  "with 'nautilus-workbench backtest walk-forwards'.")
            owner = row.actor
        return self._auth.require(principal, "sweep.stop", walk_forward_id, owner=owner)

    def _runs(self, walk_forward_id: str, *statuses: str) -> list[str]:
        with self._db.session() as session:
            return list(session.scalars(select(BacktestRunRow.run_id).where(
                BacktestRunRow.walk_forward_id == walk_forward_id,
                BacktestRunRow.status.in_(statuses))))

    def pause(self, walk_forward_id: str, *, principal: Principal | None = None
              ) -> WalkForwardInfo:
        """Hold the analysis: its queued runs and later folds wait, its running runs are
        suspended (they keep their memory and slots, use no CPU)."""
        actor = self._authorise(principal, walk_forward_id)
        with self._db.session() as session:
            row = session.get(WalkForwardRow, walk_forward_id)
            if row.finished_at is not None or row.stopped_at is not None:
                raise BacktestError(f"Walk-forward {walk_forward_id} is over; nothing to pause.")
            row.paused_at = row.paused_at or now()
            session.add(AuditLog.row(actor, "sweep.pause", walk_forward_id, "ok",
                                     to_state=PAUSED))
        self._suspend(walk_forward_id, actor)
        self._backtests.notify()
        return self.get(walk_forward_id)

    def _suspend(self, walk_forward_id: str, actor: Principal) -> None:
        """Pause the analysis's running runs; a run claimed just before the hold may still be
        starting its worker: wait a little for it."""
        deadline = time.monotonic() + PAUSE_WAIT_S
        while True:
            starting = []
            for run_id in self._runs(walk_forward_id, RUNNING):
                try:
                    self._backtests.pause(run_id, principal=actor)
                except BacktestError:
                    starting.append(run_id)  # its worker is not up yet, or it just ended
            if not starting or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def resume(self, walk_forward_id: str, *, principal: Principal | None = None
               ) -> WalkForwardInfo:
        """Let a paused analysis go on: suspended runs continue, queued runs may start."""
        actor = self._authorise(principal, walk_forward_id)
        with self._db.session() as session:
            row = session.get(WalkForwardRow, walk_forward_id)
            if row.paused_at is None:
                raise BacktestError(f"Walk-forward {walk_forward_id} is not paused.")
            row.paused_at = None
            session.add(AuditLog.row(actor, "sweep.resume", walk_forward_id, "ok",
                                     PAUSED, RUNNING))
        for run_id in self._runs(walk_forward_id, PAUSED):
            try:
                self._backtests.resume(run_id, principal=actor)
            except BacktestError:
                pass
        self._backtests.wake()
        self._backtests.notify()
        return self.get(walk_forward_id)

    def stop(self, walk_forward_id: str, *, principal: Principal | None = None
             ) -> WalkForwardInfo:
        """Cancel every unfinished run of the analysis; it queues no further test run."""
        actor = self._authorise(principal, walk_forward_id)
        with self._db.session() as session:
            row = session.get(WalkForwardRow, walk_forward_id)
            row.stopped_at = row.stopped_at or now()
            row.paused_at = None
            session.add(AuditLog.row(actor, "sweep.stop", walk_forward_id, "ok",
                                     to_state="Stopped"))
        with self._db.session() as session:
            sweeps = list(session.scalars(select(WalkForwardFoldRow.sweep_id).where(
                WalkForwardFoldRow.walk_forward_id == walk_forward_id)))
        for sweep_id in sweeps:
            self._backtests.stop_sweep(sweep_id, principal=actor)
        for run_id in self._runs(walk_forward_id, QUEUED, *ACTIVE_STATES):  # test runs
            try:
                self._backtests.cancel(run_id, principal=actor)
            except BacktestError:
                pass  # it finished meanwhile
        return self.get(walk_forward_id)

    # -- reading ------------------------------------------------------------------------------
    def run_ids(self, walk_forward_id: str) -> list[str]:
        """Every run of the analysis queued so far (train runs, test runs)."""
        with self._db.session() as session:
            return list(session.scalars(select(BacktestRunRow.run_id).where(
                BacktestRunRow.walk_forward_id == walk_forward_id)))

    def wait(self, walk_forward_id: str, timeout: float | None = None, poll: float = 0.5,
             on_progress=None) -> WalkForwardInfo:
        """Block until the analysis is over (or ``timeout`` seconds pass); ``on_progress(info)``
        is called after every look."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            info = self.get(walk_forward_id)
            if on_progress is not None:
                on_progress(info)
            if info.is_final or (deadline is not None and time.monotonic() >= deadline):
                return info
            self._backtests.wait_for_change(poll)

    def get(self, walk_forward_id: str) -> WalkForwardInfo:
        infos = self._infos([walk_forward_id])
        if not infos:
            raise RunNotFound(f"No walk-forward analysis {walk_forward_id!r}. List them with "
                              "'nautilus-workbench backtest walk-forwards'.")
        return infos[0]

    def list(self, limit: int = 50) -> list[WalkForwardInfo]:
        """The newest analyses first."""
        with self._db.session() as session:
            ids = list(session.scalars(select(WalkForwardRow.walk_forward_id)
                                       .order_by(WalkForwardRow.created_at.desc()).limit(limit)))
        return self._infos(ids)

    def _infos(self, ids: list[str]) -> list[WalkForwardInfo]:
        if not ids:
            return []
        repository = self._backtests.repository
        with self._db.session() as session:
            rows = {r.walk_forward_id: r for r in session.scalars(
                select(WalkForwardRow).where(WalkForwardRow.walk_forward_id.in_(ids)))}
            folds: dict[str, list[WalkForwardFoldRow]] = {i: [] for i in rows}
            for fold in session.scalars(select(WalkForwardFoldRow).where(
                    WalkForwardFoldRow.walk_forward_id.in_(ids))
                    .order_by(WalkForwardFoldRow.fold)):
                folds[fold.walk_forward_id].append(fold)
            counts: dict[str, dict[str, int]] = {i: {} for i in rows}
            trials: dict[str, int] = {}
            for wf, sweep, status, n in session.execute(
                    select(BacktestRunRow.walk_forward_id, BacktestRunRow.sweep_id,
                           BacktestRunRow.status, func.count())
                    .where(BacktestRunRow.walk_forward_id.in_(ids))
                    .group_by(BacktestRunRow.walk_forward_id, BacktestRunRow.sweep_id,
                              BacktestRunRow.status)):
                counts[wf][status] = counts[wf].get(status, 0) + n
                if sweep is not None:
                    trials[sweep] = trials.get(sweep, 0) + n
            tests = [f.test_run_id for fs in folds.values() for f in fs if f.test_run_id]
            test_status = dict(session.execute(
                select(BacktestRunRow.run_id, BacktestRunRow.status)
                .where(BacktestRunRow.run_id.in_(tests))).all()) if tests else {}
            running: dict[str, float] = {i: 0.0 for i in rows}
            for run in session.scalars(select(BacktestRunRow).where(
                    BacktestRunRow.walk_forward_id.in_(ids),
                    BacktestRunRow.status.in_(ACTIVE_STATES))):
                running[run.walk_forward_id] += repository.info(run).progress or 0.0
            result = []
            for walk_forward_id in ids:
                row = rows.get(walk_forward_id)
                if row is None:
                    continue
                infos = [FoldInfo(
                    fold=f.fold, train_start=aware(f.train_start), train_end=aware(f.train_end),
                    test_start=aware(f.test_start), test_end=aware(f.test_end),
                    sweep_id=f.sweep_id, trials=trials.get(f.sweep_id, 0),
                    chosen_run_id=f.chosen_run_id, parameters=f.parameters,
                    in_sample=f.in_sample, test_run_id=f.test_run_id,
                    out_of_sample=f.out_of_sample, error=f.error, status=_fold_status(f, test_status.get(f.test_run_id)))
                    for f in folds[walk_forward_id]]
                by_status = counts[walk_forward_id]
                expected = sum(trials.get(f.sweep_id, 0) for f in infos) + len(infos)
                final = sum(n for s, n in by_status.items() if s in FINAL_STATES)
                # A fold that will have no test run counts as done.
                final += sum(1 for f in infos if f.error and f.test_run_id is None)
                progress = min((final + running[walk_forward_id]) / expected, 1.0) \
                    if expected else 1.0
                if row.finished_at is not None or (row.stopped_at is not None and not any(
                        s not in FINAL_STATES for s in by_status)):
                    progress = 1.0
                result.append(WalkForwardInfo(
                    walk_forward_id=walk_forward_id,
                    status=_status(row, infos, by_status), strategy=row.strategy,
                    bar_type=row.bar_type, runtime=row.runtime,
                    metric=row.spec.get("metric", "sharpe"), spec=row.spec, actor=row.actor,
                    created_at=aware(row.created_at), paused_at=aware(row.paused_at),
                    stopped_at=aware(row.stopped_at), finished_at=aware(row.finished_at),
                    folds=tuple(infos), counts=tuple(sorted(by_status.items())),
                    progress=progress))
            return result

    def result(self, walk_forward_id: str, with_statistics: bool = True) -> WalkForwardResult:
        """The folds' figures, the walk-forward efficiency, the stitched out-of-sample equity,
        its statistics and the stability of the choices (of the folds done so far).
        ``with_statistics``: also each train sweep's overfitting statistics."""
        info = self.get(walk_forward_id)
        backtests = self._backtests
        folds, curves, balance, currency = [], [], None, None
        for fold in info.folds:
            chosen = self._completed(fold.chosen_run_id)
            test = self._completed(fold.test_run_id)
            is_return = backtests.run_statistics(chosen).get("total_return") if chosen else None
            oos_return = backtests.run_statistics(test).get("total_return") if test else None
            train_days = (fold.train_end - fold.train_start) / _DAY
            test_days = (fold.test_end - fold.test_start) / _DAY
            is_annual = annualised_return(is_return, train_days)
            oos_annual = annualised_return(oos_return, test_days)
            if test is not None:
                curves.append(backtests.store.equity(test))
                balance = balance or backtests.run_statistics(test).get("starting_balance")
                currency = currency or test.currency
            statistics = None
            if with_statistics and fold.status != "Training":
                statistics = backtests.sweep_statistics(fold.sweep_id)
            folds.append(FoldResult(
                info=fold, in_sample_return=is_return, out_of_sample_return=oos_return,
                in_sample_annualised=is_annual, out_of_sample_annualised=oos_annual,
                efficiency=(oos_annual / is_annual if is_annual and oos_annual is not None
                            and is_annual > 0 else None), statistics=statistics))
        done = [f for f in folds if f.out_of_sample_return is not None]
        efficiency = walk_forward_efficiency([f.in_sample_annualised for f in done],
                                             [f.out_of_sample_annualised for f in done])
        equity = stitch_equity(curves, balance) if curves and balance else \
            pd.Series(dtype=float, name="equity")
        stability = choice_stability([f.info.parameters for f in folds if f.info.parameters],
                                     self._grid(info))
        trials = sum(f.trials for f in info.folds)
        return WalkForwardResult(info, tuple(folds), efficiency, equity,
                                 _out_of_sample(equity, balance, trials), stability, currency)

    def _grid(self, info: WalkForwardInfo) -> dict[str, list]:
        """The values tried per parameter that varies: those of the first fold's train runs."""
        names = list(info.spec.get("grid") or {})
        if not info.folds:
            return {name: [] for name in names}
        runs = self._backtests.repository.list_runs(limit=MAX_RUNS,
                                                     sweep_id=info.folds[0].sweep_id)
        tried = {name: sorted({r.parameters.get(name) for r in runs}, key=str) for name in names}
        return {name: values for name, values in tried.items() if len(values) > 1}

    def _completed(self, run_id: str | None) -> RunInfo | None:
        if run_id is None:
            return None
        run = self._backtests.get(run_id)
        return run if run.status == COMPLETED else None


def _out_of_sample(equity: pd.Series, balance: float | None, trials: int) -> OutOfSample:
    notes: list[str] = []
    if equity.empty or not balance:
        return OutOfSample(0, None, None, None, None, None, None, trials,
                           ("No test run has completed yet: there is no out-of-sample curve.",))
    returns = daily_returns(equity, balance)
    ppy = periods_per_year(equity)
    total = float(equity.iloc[-1] / balance - 1.0)
    days = (equity.index[-1] - equity.index[0]) / _DAY
    peak = np.maximum(np.maximum.accumulate(equity.to_numpy(float)), balance)
    drawdown = float((equity.to_numpy(float) / peak - 1.0).min())
    sharpe = psr = track = None
    try:
        psr = probabilistic_sharpe(returns, ppy)
        sharpe = psr.sharpe
        track = minimum_track_record(returns, ppy)
    except ValidationError as e:
        notes.append(f"Out of sample: {e.summary}")
    return OutOfSample(len(returns), total, annualised_return(total, max(days, 1.0)), sharpe,
                       min(drawdown, 0.0), psr, track, trials, tuple(notes))

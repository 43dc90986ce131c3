"""What a backtest run and a sweep are, as every reader sees them; their states and files.

Light on purpose (no pandas, no NautilusTrader): the CLI's quick commands import it.
"""

from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.backtest.eta import Estimate

QUEUED, RUNNING, PAUSED = "Queued", "Running", "Paused"
COMPLETED, FAILED, CANCELLED = "Completed", "Failed", "Cancelled"
ACTIVE_STATES = (RUNNING, PAUSED)  # a worker exists
FINAL_STATES = (COMPLETED, FAILED, CANCELLED)

# Entries of statistics.json that describe the run rather than measure it.
NOT_A_METRIC = {"metrics_version", "start", "end", "starting_balance", "periods_per_year", "bars",
                "max_drawdown_peak", "max_drawdown_trough", "max_drawdown_recovery"}


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything is stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def read_progress(path: Path) -> dict | None:
    """The worker's progress file (services.backtest.progress writes it), or None."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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
    eta: Estimate | None = None  # time left, from the recent throughput (with a range)
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
        end = self.finished_at or now()
        return (aware(end) - aware(self.started_at)).total_seconds()


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


@dataclass(frozen=True)
class SweepSummary:
    """A sweep's headline, counted in the database without loading its runs."""

    sweep_id: str
    strategy: str
    bar_type: str
    runtime: str
    created_at: datetime
    stopped_at: datetime | None
    actor: str | None
    counts: tuple[tuple[str, int], ...]  # (status, runs) pairs
    progress: float
    spec: dict | None = None  # what was varied (the SweepSpec as stored)

    def count(self, *statuses: str) -> int:
        return sum(n for status, n in self.counts if status in statuses)

    @property
    def runs(self) -> int:
        return self.count(QUEUED, RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED)

    @property
    def status(self) -> str:
        if self.count(*FINAL_STATES) < self.runs:
            return "Stopping" if self.stopped_at else RUNNING if self.count(*ACTIVE_STATES) else QUEUED
        if self.stopped_at:
            return "Stopped"
        return COMPLETED if self.count(COMPLETED) == self.runs else "Finished with failures"

"""Tables of the workbench database. Schema changes go through Alembic migrations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


# 64-bit ids where rows pile up (SQLite's rowid is 64-bit already; it needs INTEGER to alias it).
BigId = BigInteger().with_variant(Integer, "sqlite")


class BacktestRunRow(Base):
    """One backtest run: what was asked, where it stands, and its headline results."""

    __tablename__ = "backtest_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    strategy: Mapped[str] = mapped_column(String(128))
    instrument_id: Mapped[str] = mapped_column(String(128))
    bar_type: Mapped[str] = mapped_column(String(256))
    start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    spec: Mapped[dict] = mapped_column(JSON)
    run_folder: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128), default="local")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    phase: Mapped[str | None] = mapped_column(String(64))
    progress: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    total_return: Mapped[float | None] = mapped_column(Float)
    sharpe: Mapped[float | None] = mapped_column(Float)
    max_drawdown: Mapped[float | None] = mapped_column(Float)
    num_trades: Mapped[int | None] = mapped_column(Integer)
    final_equity: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(16))
    sweep_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Set on every run of a walk-forward analysis (its train sweeps' runs and its test runs).
    walk_forward_id: Mapped[str | None] = mapped_column(String(64), index=True)
    runtime: Mapped[str] = mapped_column(String(16), default="local")
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Time spent paused before paused_at (or in total once resumed), for an honest ETA.
    paused_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    # Peak resident memory seen: 64-bit, a run can pass 2 GiB.
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)


class SweepRow(Base):
    """A parameter sweep: what was varied, on which runtime; its runs carry its sweep_id."""

    __tablename__ = "sweeps"

    sweep_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(128))
    bar_type: Mapped[str] = mapped_column(String(256))
    spec: Mapped[dict] = mapped_column(JSON)
    runtime: Mapped[str] = mapped_column(String(16))
    num_runs: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(128), default="local")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Every user action that changes state: who, when, what, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class EngineSessionRow(Base):
    """One paper/sandbox/live engine session: one container, from start to its final state.

    ``config`` holds the engine configuration with secrets as references ("${NAME}") only.
    """

    __tablename__ = "engine_sessions"

    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    template: Mapped[str] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    container_id: Mapped[str | None] = mapped_column(String(80))
    container_name: Mapped[str] = mapped_column(String(128))
    image: Mapped[str] = mapped_column(String(256))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    final_state: Mapped[str | None] = mapped_column(String(16))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    status: Mapped[dict | None] = mapped_column(JSON)  # the bootstrap's latest snapshot
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EngineMetricRow(Base):
    """One resource sample of an engine container (metric names nautilus.engine.*)."""

    __tablename__ = "engine_metrics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(32), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)


class UserRow(Base):
    """A person who signs in; ``roles`` is a comma-separated list from services.identity.roles."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    roles: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(128))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiTokenRow(Base):
    """A personal API token; only the SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserSessionRow(Base):
    """A signed-in browser; only the SHA-256 of the cookie's session secret is stored."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    address: Mapped[str | None] = mapped_column(String(64))


class SchedulerLeaseRow(Base):
    """Who runs the installation's backtest scheduler: one live holder at a time, renewed by
    heartbeats; a lease whose heartbeat is older than its TTL may be taken over."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    command: Mapped[str] = mapped_column(String(255))
    runtimes: Mapped[list] = mapped_column(JSON)
    scope: Mapped[str] = mapped_column(String(16))  # "all" runs, or "own" runs only
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertRuleRow(Base):
    """A changed alert rule (rules nobody changed keep their built-in settings)."""

    __tablename__ = "alert_rules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    threshold: Mapped[float | None] = mapped_column(Float)
    cooldown_s: Mapped[int] = mapped_column(Integer)
    channels: Mapped[list] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(128))


class AlertRow(Base):
    """One alert: raised by a rule for a key (rule + engine + subject); repeats within the
    rule's cool-down count as ``occurrences`` of the same row."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(256), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[str | None] = mapped_column(String(32))
    engine: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    deliveries: Mapped[dict] = mapped_column(JSON)  # channel -> "sent" | "failed: ..."


class MetricRow(Base):
    """A metric sample recorded through the API (``POST /api/v1/metrics``)."""

    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(128))


class WalkForwardRow(Base):
    """A walk-forward analysis: folds of a train sweep then one out-of-sample run each. Its
    runs carry its walk_forward_id; the scheduler's step submits each fold's test run."""

    __tablename__ = "walk_forwards"

    walk_forward_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(128))
    bar_type: Mapped[str] = mapped_column(String(256))
    spec: Mapped[dict] = mapped_column(JSON)
    runtime: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # While set, the scheduler starts none of its queued runs and queues no test run.
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WalkForwardFoldRow(Base):
    """One fold of a walk-forward: its windows, its train sweep, the parameters chosen and the
    in-sample and out-of-sample values of the metric."""

    __tablename__ = "walk_forward_folds"

    walk_forward_id: Mapped[str] = mapped_column(
        ForeignKey("walk_forwards.walk_forward_id", ondelete="CASCADE"), primary_key=True)
    fold: Mapped[int] = mapped_column(Integer, primary_key=True)
    train_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    train_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    test_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    test_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sweep_id: Mapped[str] = mapped_column(String(64))
    chosen_run_id: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict | None] = mapped_column(JSON)
    in_sample: Mapped[float | None] = mapped_column(Float)
    test_run_id: Mapped[str | None] = mapped_column(String(64))
    out_of_sample: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    # When the fold was settled: its test run's outcome recorded, or the error why it has none.
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

"""Persistence: SQLAlchemy 2.x models, engine creation and Alembic migrations."""

from services.db.database import Database
from services.db.models import (
    ApiTokenRow,
    AuditEntry,
    BacktestRunRow,
    Base,
    EngineMetricRow,
    EngineSessionRow,
    SchedulerLeaseRow,
    SweepRow,
    UserRow,
    UserSessionRow,
    WalkForwardFoldRow,
    WalkForwardRow,
)

__all__ = ["ApiTokenRow", "AuditEntry", "BacktestRunRow", "Base", "Database", "EngineMetricRow",
           "EngineSessionRow", "SchedulerLeaseRow", "SweepRow", "UserRow", "UserSessionRow",
           "WalkForwardFoldRow", "WalkForwardRow"]

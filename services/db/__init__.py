"""Persistence: SQLAlchemy 2.x models, engine creation and Alembic migrations."""

from services.db.database import Database
from services.db.models import (
    AlertRow,
    AlertRuleRow,
    ApiTokenRow,
    AuditEntry,
    BacktestRunRow,
    Base,
    EngineMetricRow,
    EngineSessionRow,
    MetricRow,
    SchedulerLeaseRow,
    SweepRow,
    UserRow,
    UserSessionRow,
    WalkForwardFoldRow,
    WalkForwardRow,
)

__all__ = ["AlertRow", "AlertRuleRow", "ApiTokenRow", "AuditEntry", "BacktestRunRow", "Base",
           "Database", "EngineMetricRow", "EngineSessionRow", "MetricRow", "SchedulerLeaseRow",
           "SweepRow", "UserRow", "UserSessionRow", "WalkForwardFoldRow", "WalkForwardRow"]

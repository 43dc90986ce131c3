"""Persistence: SQLAlchemy 2.x models, engine creation and Alembic migrations."""

from services.db.database import Database
from services.db.models import (
    AuditEntry,
    BacktestRunRow,
    Base,
    EngineMetricRow,
    EngineSessionRow,
    SweepRow,
)

__all__ = ["AuditEntry", "BacktestRunRow", "Base", "Database", "EngineMetricRow",
           "EngineSessionRow", "SweepRow"]

"""Persistence: SQLAlchemy 2.x models, engine creation and Alembic migrations."""

from services.db.database import Database
from services.db.models import (
    AlertRow,
    AlertRuleRow,
    ApiTokenRow,
    AuditEntry,
    BacktestRunRow,
    Base,
    DeploymentRow,
    EngineMetricRow,
    EngineSessionRow,
    MetricRow,
    PromotionDecisionRow,
    PromotionRow,
    SchedulerLeaseRow,
    StrategyVersionRow,
    SweepRow,
    UserRow,
    UserSessionRow,
    VersionRunRow,
    WalkForwardFoldRow,
    WalkForwardRow,
)

__all__ = ["AlertRow", "AlertRuleRow", "ApiTokenRow", "AuditEntry", "BacktestRunRow", "Base",
           "Database", "DeploymentRow", "EngineMetricRow", "EngineSessionRow", "MetricRow",
           "PromotionDecisionRow", "PromotionRow", "SchedulerLeaseRow", "StrategyVersionRow",
           "SweepRow", "UserRow", "UserSessionRow", "VersionRunRow", "WalkForwardFoldRow",
           "WalkForwardRow"]

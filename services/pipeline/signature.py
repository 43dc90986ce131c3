"""One cheap query that changes whenever anything in the pipeline does: what the process's
live state compares once a second, so pages follow changes made in other processes (the CLI,
another server) without reading the pipeline's tables in every tab."""

from __future__ import annotations

from sqlalchemy import func, select

from services.db import (
    BacktestRunRow,
    Database,
    DeploymentRow,
    PromotionDecisionRow,
    PromotionRow,
    StrategyVersionRow,
    VersionRunRow,
)


def pipeline_signature(database: Database) -> tuple:
    """Counts and latest changes of the pipeline's tables, as one tuple."""
    query = select(
        select(func.count()).select_from(StrategyVersionRow).scalar_subquery(),
        select(func.count()).select_from(VersionRunRow).scalar_subquery(),
        # A linked backtest that completes passes a gate.
        select(func.count()).select_from(VersionRunRow).join(
            BacktestRunRow, BacktestRunRow.run_id == VersionRunRow.run_id)
        .where(BacktestRunRow.status == "Completed").scalar_subquery(),
        select(func.coalesce(func.sum(PromotionRow.revision), 0) + func.count())
        .select_from(PromotionRow).scalar_subquery(),
        select(func.count()).select_from(PromotionDecisionRow).scalar_subquery(),
        select(func.count()).select_from(DeploymentRow).scalar_subquery(),
        select(func.count()).select_from(DeploymentRow)
        .where(DeploymentRow.ended_at.is_not(None)).scalar_subquery(),
        select(func.max(DeploymentRow.drift_at)).scalar_subquery(),
    )
    with database.session() as session:
        row = session.execute(query).one()
    return tuple(str(v) if v is not None else "" for v in row)

"""Backtest runs and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("instrument_id", sa.String(128), nullable=False),
        sa.Column("bar_type", sa.String(256), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True)),
        sa.Column("end", sa.DateTime(timezone=True)),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("run_folder", sa.Text, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("worker_pid", sa.Integer),
        sa.Column("phase", sa.String(64)),
        sa.Column("progress", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("total_return", sa.Float),
        sa.Column("sharpe", sa.Float),
        sa.Column("max_drawdown", sa.Float),
        sa.Column("num_trades", sa.Integer),
        sa.Column("final_equity", sa.Float),
        sa.Column("currency", sa.String(16)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("from_state", sa.String(32)),
        sa.Column("to_state", sa.String(32)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("backtest_runs")

"""Parameter sweeps; runtime, sweep, pause and resource columns on backtest runs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("sweep_id", sa.String(64), primary_key=True),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("bar_type", sa.String(256), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("num_runs", sa.Integer, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
    )
    with op.batch_alter_table("backtest_runs") as batch:
        batch.add_column(sa.Column("sweep_id", sa.String(64)))
        batch.add_column(sa.Column("runtime", sa.String(16), nullable=False,
                                   server_default="local"))
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("paused_seconds", sa.Float, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("cpu_seconds", sa.Float))
        batch.add_column(sa.Column("memory_bytes", sa.Integer))
        batch.create_index("ix_backtest_runs_sweep_id", ["sweep_id"])


def downgrade() -> None:
    with op.batch_alter_table("backtest_runs") as batch:
        batch.drop_index("ix_backtest_runs_sweep_id")
        for column in ("memory_bytes", "cpu_seconds", "paused_seconds", "paused_at", "runtime",
                       "sweep_id"):
            batch.drop_column(column)
    op.drop_table("sweeps")

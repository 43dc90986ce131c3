"""Walk-forward analyses and their folds; runs know their walk-forward analysis.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "walk_forwards",
        sa.Column("walk_forward_id", sa.String(64), primary_key=True),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("bar_type", sa.String(256), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("runtime", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True)),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "walk_forward_folds",
        sa.Column("walk_forward_id", sa.String(64),
                  sa.ForeignKey("walk_forwards.walk_forward_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("fold", sa.Integer, primary_key=True),
        sa.Column("train_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("train_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sweep_id", sa.String(64), nullable=False),
        sa.Column("chosen_run_id", sa.String(64)),
        sa.Column("parameters", sa.JSON),
        sa.Column("in_sample", sa.Float),
        sa.Column("test_run_id", sa.String(64)),
        sa.Column("out_of_sample", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    with op.batch_alter_table("backtest_runs") as batch:
        batch.add_column(sa.Column("walk_forward_id", sa.String(64)))
        batch.create_index("ix_backtest_runs_walk_forward_id", ["walk_forward_id"])


def downgrade() -> None:
    with op.batch_alter_table("backtest_runs") as batch:
        batch.drop_index("ix_backtest_runs_walk_forward_id")
        batch.drop_column("walk_forward_id")
    op.drop_table("walk_forward_folds")
    op.drop_table("walk_forwards")

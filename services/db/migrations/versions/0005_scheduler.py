"""One scheduler per installation (its lease); 64-bit columns where values pass 2^31.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("command", sa.String(255), nullable=False),
        sa.Column("runtimes", sa.JSON, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("backtest_runs") as batch:
        batch.alter_column("memory_bytes", type_=sa.BigInteger, existing_type=sa.Integer)
    if op.get_bind().dialect.name != "sqlite":  # SQLite's rowid is 64-bit already
        for table in ("engine_metrics", "audit_log"):
            op.alter_column(table, "id", type_=sa.BigInteger, existing_type=sa.Integer,
                            existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for table in ("engine_metrics", "audit_log"):
            op.alter_column(table, "id", type_=sa.Integer, existing_type=sa.BigInteger,
                            existing_nullable=False)
    with op.batch_alter_table("backtest_runs") as batch:
        batch.alter_column("memory_bytes", type_=sa.Integer, existing_type=sa.BigInteger)
    op.drop_table("scheduler_leases")

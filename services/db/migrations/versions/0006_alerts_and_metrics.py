"""Alerts, alert rules and metrics recorded through the API.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("threshold", sa.Float),
        sa.Column("cooldown_s", sa.Integer, nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("key", sa.String(256), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("session_id", sa.String(32)),
        sa.Column("engine", sa.String(64)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
        sa.Column("deliveries", sa.JSON, nullable=False),
    )
    op.create_index("ix_alerts_first_at", "alerts", ["first_at"])
    op.create_index("ix_alerts_key", "alerts", ["key"])
    op.create_table(
        "metrics",  # 64-bit ids where the database has them (SQLite's rowid is 64-bit)
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
    )
    op.create_index("ix_metrics_name_ts", "metrics", ["name", "ts"])


def downgrade() -> None:
    op.drop_index("ix_metrics_name_ts", "metrics")
    op.drop_table("metrics")
    op.drop_index("ix_alerts_key", "alerts")
    op.drop_index("ix_alerts_first_at", "alerts")
    op.drop_table("alerts")
    op.drop_table("alert_rules")

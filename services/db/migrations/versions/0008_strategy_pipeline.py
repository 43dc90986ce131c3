"""Strategy versions, their evidence, promotion requests with decisions, deployments.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ACTIVE = sa.text("state = 'Active'")


def upgrade() -> None:
    op.create_table(
        "strategy_versions",
        sa.Column("version_id", sa.String(64), primary_key=True),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("bar_type", sa.String(256), nullable=False),
        sa.Column("instrument_id", sa.String(128), nullable=False),
        sa.Column("content", sa.JSON, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("nautilus_version", sa.String(32), nullable=False),
        sa.Column("source_run_id", sa.String(64)),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_strategy_versions_strategy", "strategy_versions", ["strategy"])
    op.create_table(
        "strategy_version_runs",
        sa.Column("version_id", sa.String(64),
                  sa.ForeignKey("strategy_versions.version_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("relation", sa.String(16), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "promotions",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("version_id", sa.String(64), sa.ForeignKey("strategy_versions.version_id"),
                  nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("risk_limits", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("revision", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_promotions_version_id", "promotions", ["version_id"])
    op.create_index("ix_promotions_status", "promotions", ["status"])
    op.create_table(
        "promotion_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32),
                  sa.ForeignKey("promotions.request_id", ondelete="CASCADE"), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("roles", sa.String(256), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("request_id", "actor", name="uq_decision_per_person"),
    )
    op.create_index("ix_promotion_decisions_request_id", "promotion_decisions", ["request_id"])
    op.create_table(
        "deployments",
        sa.Column("deployment_id", sa.String(32), primary_key=True),
        sa.Column("version_id", sa.String(64), sa.ForeignKey("strategy_versions.version_id"),
                  nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("bar_type", sa.String(256), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("request_id", sa.String(32), sa.ForeignKey("promotions.request_id"),
                  nullable=False),
        sa.Column("engine_session_id", sa.String(32), nullable=False),
        sa.Column("engine_name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("replaces", sa.String(32)),
        sa.Column("capital_fraction", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("end_reason", sa.Text),
        sa.Column("risk_limits", sa.JSON, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("drift", sa.JSON),
        sa.Column("drift_run_id", sa.String(64)),
        sa.Column("drift_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_deployments_version_id", "deployments", ["version_id"])
    op.create_index("ix_deployments_stage", "deployments", ["stage"])
    op.create_index("ix_deployments_state", "deployments", ["state"])
    op.create_index("ix_deployments_engine_session_id", "deployments", ["engine_session_id"])
    op.create_index("uq_active_deployment", "deployments", ["strategy", "bar_type", "stage"],
                    unique=True, sqlite_where=ACTIVE, postgresql_where=ACTIVE)


def downgrade() -> None:
    op.drop_table("deployments")
    op.drop_table("promotion_decisions")
    op.drop_table("promotions")
    op.drop_table("strategy_version_runs")
    op.drop_index("ix_strategy_versions_strategy", "strategy_versions")
    op.drop_table("strategy_versions")

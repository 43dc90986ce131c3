"""PLACEHOLDER for issue 12's 0006 (alerts and metrics), which is not on main yet.

Drop this file when merging: issue-12-live-ops brings the real revision 0006, and the strategy
pipeline's 0007 follows it. It changes nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

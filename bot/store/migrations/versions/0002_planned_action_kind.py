"""An index for finding a recurring job's pending action on every step.

Revision ID: 0002_planned_action_kind
Revises: 0001
"""

from alembic import op

revision = "0002_planned_action_kind"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Index planned actions by action and status."""
    op.create_index("ix_planned_action_kind", "plannedaction", ["action", "status"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_planned_action_kind", table_name="plannedaction")

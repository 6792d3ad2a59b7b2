"""Agencies added from the cockpit for one case, outside the configuration.

Revision ID: 0004_cockpit_one_off_agencies
Revises: 0003_planned_action_arguments
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_cockpit_one_off_agencies"
down_revision = "0003_planned_action_arguments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the one-off agency table."""
    op.create_table(
        "oneoffagency",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("partnership", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("escalation_email", sa.String(length=320), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.UniqueConstraint("partnership", "key"),
    )


def downgrade() -> None:
    """Drop it again."""
    op.drop_table("oneoffagency")

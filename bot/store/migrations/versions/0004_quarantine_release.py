"""Quarantined mail released as vouched for by the business manager, or discarded with a reason.

Revision ID: 0004_quarantine_release
Revises: 0003_planned_action_arguments
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_quarantine_release"
down_revision = "0003_planned_action_arguments"
branch_labels = None
depends_on = None

# The columns added to inboundmessage, in order.
COLUMNS = (
    ("vouched_by", sa.String(length=200)),
    ("vouched_as", sa.String(length=16)),
    ("vouched_reason", sa.String(length=500)),
    ("vouched_at", sa.DateTime(timezone=True)),
    ("discarded_by", sa.String(length=200)),
    ("discarded_reason", sa.String(length=500)),
    ("discarded_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Add who vouched for or discarded a quarantined message, as what, why and when."""
    with op.batch_alter_table("inboundmessage") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("inboundmessage") as batch:
        for name, _kind in reversed(COLUMNS):
            batch.drop_column(name)

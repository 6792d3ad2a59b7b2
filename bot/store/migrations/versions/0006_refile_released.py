"""Released mail whose mailbox copy is still to move from Quarantine: the folder it goes to.

Revision ID: 0006_refile_released
Revises: 0005_hot_path_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_refile_released"
down_revision = "0005_hot_path_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the folder a released message's copy is still to move to, and its index."""
    with op.batch_alter_table("inboundmessage") as batch:
        batch.add_column(sa.Column("refile_to", sa.String(length=500), nullable=True))
    # Only the marked rows are indexed, so the step's look for them reads no others.
    marked = sa.text("refile_to IS NOT NULL")
    op.create_index("ix_inbound_refile", "inboundmessage", ["mailbox", "refile_to"],
                    sqlite_where=marked, postgresql_where=marked)


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_inbound_refile", table_name="inboundmessage")
    with op.batch_alter_table("inboundmessage") as batch:
        batch.drop_column("refile_to")

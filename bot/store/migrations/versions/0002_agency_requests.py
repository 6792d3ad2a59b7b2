"""Agency requests remember the latest reply and any contact problem.

Revision ID: 0002_agency_requests
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_agency_requests"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the reply and contact-problem columns."""
    with op.batch_alter_table("agencyrequest") as batch:
        batch.add_column(sa.Column("reply_kind", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("contact_problem", sa.String(length=32), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("agencyrequest") as batch:
        batch.drop_column("contact_problem")
        batch.drop_column("replied_at")
        batch.drop_column("reply_kind")

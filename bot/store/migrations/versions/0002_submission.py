"""The submission: a hold, when it was sent and whether late; outbox rows with a cut-off.

Revision ID: 0002_submission
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_submission"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the submission columns to case and the cut-off to the outbox."""
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("submission_hold_until", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("submitted_late", sa.Boolean(), nullable=True))
    with op.batch_alter_table("outboxmessage") as batch:
        batch.add_column(sa.Column("send_by", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("outboxmessage") as batch:
        batch.drop_column("send_by")
    with op.batch_alter_table("case") as batch:
        batch.drop_column("submitted_late")
        batch.drop_column("submitted_at")
        batch.drop_column("submission_hold_until")

"""The partners' recommendation on a local or national review, for the covering email.

Revision ID: 0002_review_recommendation
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_review_recommendation"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the recommendation and its rationale to case."""
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("review_recommendation", sa.String(length=16),
                                   nullable=True))
        batch.add_column(sa.Column("review_rationale", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("case") as batch:
        batch.drop_column("review_rationale")
        batch.drop_column("review_recommendation")

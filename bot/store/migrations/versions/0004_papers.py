"""The case papers: the referral's particulars of the child and family, and returns read.

Revision ID: 0004_papers
Revises: 0003_planned_action_arguments
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_papers"
down_revision = "0003_planned_action_arguments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the particulars and the return readings."""
    op.create_table(
        "caseparticulars",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("partnership", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=False,
                  unique=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "returnreading",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("partnership", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("case.id"), nullable=False),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("document.id"), nullable=False,
                  unique=True),
        sa.Column("agency_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("involvement", sa.Boolean(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_returnreading_case_id", "returnreading", ["case_id"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_returnreading_case_id", table_name="returnreading")
    op.drop_table("returnreading")
    op.drop_table("caseparticulars")

"""Ballots remember their chat message; votes say who cast them; chat deliveries are receipted.

Revision ID: 0002_ballots
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_ballots"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the ballot and vote columns and the delivery receipt table."""
    with op.batch_alter_table("ballot") as batch:
        batch.add_column(sa.Column("chat_ts", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("chat_revision", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("vote") as batch:
        batch.add_column(sa.Column("member_name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("member_role", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("recorded_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("evidence", sa.Text(), nullable=True))
    op.create_table(
        "deliveryreceipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partnership", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("ballot_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballot.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_deliveryreceipt_ballot_id", "deliveryreceipt", ["ballot_id"])


def downgrade() -> None:
    """Remove them again."""
    op.drop_index("ix_deliveryreceipt_ballot_id", table_name="deliveryreceipt")
    op.drop_table("deliveryreceipt")
    with op.batch_alter_table("vote") as batch:
        batch.drop_column("evidence")
        batch.drop_column("recorded_by")
        batch.drop_column("member_role")
        batch.drop_column("member_name")
    with op.batch_alter_table("ballot") as batch:
        batch.drop_column("closed_at")
        batch.drop_column("opened_at")
        batch.drop_column("chat_revision")
        batch.drop_column("chat_ts")

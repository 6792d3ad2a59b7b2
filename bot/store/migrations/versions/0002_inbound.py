"""Inbound mail: the agencies a referral names, the panel's acknowledgement, the sender.

Revision ID: 0002_inbound
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_inbound"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the case's named agencies and panel acknowledgement, and the inbound sender."""
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("named_agencies", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("panel_acknowledged_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("inboundmessage") as batch:
        batch.add_column(sa.Column("sender", sa.String(length=320), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("inboundmessage") as batch:
        batch.drop_column("sender")
    with op.batch_alter_table("case") as batch:
        batch.drop_column("panel_acknowledged_at")
        batch.drop_column("named_agencies")

"""A per-installation secret, kept in the database, that keys the Message-IDs the bot makes.

The secret itself is made at first start (bot/kernel/installation.py), not here, so that
migrating a copy of a database never gives two installations the same key.

Revision ID: 0004_mail_trust
Revises: 0003_planned_action_arguments
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004_mail_trust"
down_revision = "0003_planned_action_arguments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the installationsecret table."""
    op.create_table(
        "installationsecret",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    """Drop the installationsecret table."""
    op.drop_table("installationsecret")

"""A case's life after submission: the Panel's response, closing, follow-ups, dates and purges.

Revision ID: 0004_case_lifecycle
Revises: 0003_planned_action_arguments
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_case_lifecycle"
down_revision = "0003_planned_action_arguments"
branch_labels = None
depends_on = None

# The unnamed unique constraint of 0001 as each database names it: SQLite through the batch
# naming convention, PostgreSQL by its own rule.
BATCH_NAMES = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OLD_UNIQUE = {"sqlite": "uq_agencyrequest_case_id_agency_key",
              "postgresql": "agencyrequest_case_id_agency_key_key"}
NEW_UNIQUE = "uq_agencyrequest_case_kind"


def upgrade() -> None:
    """Add the case's closing and purge columns, hand-set due dates and request kinds."""
    with op.batch_alter_table("case") as batch:
        batch.add_column(sa.Column("panel_response", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("panel_responded_at", sa.DateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("close_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("purge_rule", sa.String(length=200), nullable=True))
    with op.batch_alter_table("milestone") as batch:
        batch.add_column(sa.Column("due_set_by_hand", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("agencyrequest", naming_convention=BATCH_NAMES) as batch:
        batch.add_column(sa.Column("kind", sa.String(length=32), nullable=False,
                                   server_default="information"))
        batch.drop_constraint(OLD_UNIQUE.get(dialect, OLD_UNIQUE["postgresql"]), type_="unique")
        batch.create_unique_constraint(NEW_UNIQUE, ["case_id", "agency_key", "kind"])


def downgrade() -> None:
    """Drop them again (follow-up requests go with the kind)."""
    op.execute("DELETE FROM agencyrequest WHERE kind <> 'information'")
    with op.batch_alter_table("agencyrequest", naming_convention=BATCH_NAMES) as batch:
        batch.drop_constraint(NEW_UNIQUE, type_="unique")
        batch.create_unique_constraint("uq_agencyrequest_case_id_agency_key",
                                       ["case_id", "agency_key"])
        batch.drop_column("kind")
    with op.batch_alter_table("milestone") as batch:
        batch.drop_column("due_set_by_hand")
    with op.batch_alter_table("case") as batch:
        for column in ("purge_rule", "purged_at", "close_reason", "panel_responded_at",
                       "panel_response"):
            batch.drop_column(column)

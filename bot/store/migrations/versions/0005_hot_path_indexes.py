"""Hot paths: sent mail by Message-ID and by when, agency requests by agency, audit checkpoint.

The audit head keeps the newest entry a check found intact, so the start-up check reads only
the entries after it.

Revision ID: 0005_hot_path_indexes
Revises: the five 0004 revisions, which this merges
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_hot_path_indexes"
down_revision = (
    "0004_case_lifecycle",
    "0004_cockpit_one_off_agencies",
    "0004_mail_trust",
    "0004_papers",
    "0004_quarantine_release",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the indexes and the audit checkpoint."""
    op.create_index("ix_outbox_message_id", "outboxmessage", ["message_id"])
    op.create_index("ix_agencyrequest_agency_open", "agencyrequest", ["agency_key", "status"])
    op.create_index("ix_outbox_sent", "outboxmessage", ["status", "sent_at"])
    op.add_column("audithead", sa.Column("verified_id", sa.Integer(), nullable=False,
                                         server_default="0"))
    op.add_column("audithead", sa.Column("verified_hash", sa.String(length=64), nullable=False,
                                         server_default="0" * 64))


def downgrade() -> None:
    """Drop the checkpoint and the indexes."""
    with op.batch_alter_table("audithead") as table:
        table.drop_column("verified_hash")
        table.drop_column("verified_id")
    op.drop_index("ix_outbox_sent", table_name="outboxmessage")
    op.drop_index("ix_agencyrequest_agency_open", table_name="agencyrequest")
    op.drop_index("ix_outbox_message_id", table_name="outboxmessage")

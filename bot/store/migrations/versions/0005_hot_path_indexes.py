"""Indexes for the hot paths: sent mail by Message-ID and by when, agency requests by agency.

Revision ID: 0005_hot_path_indexes
Revises: the five 0004 revisions, which this merges
"""

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
    """Index sent mail by Message-ID and agency requests by agency and status."""
    op.create_index("ix_outbox_message_id", "outboxmessage", ["message_id"])
    op.create_index("ix_agencyrequest_agency_open", "agencyrequest", ["agency_key", "status"])
    op.create_index("ix_outbox_sent", "outboxmessage", ["status", "sent_at"])


def downgrade() -> None:
    """Drop the indexes."""
    op.drop_index("ix_outbox_sent", table_name="outboxmessage")
    op.drop_index("ix_agencyrequest_agency_open", table_name="agencyrequest")
    op.drop_index("ix_outbox_message_id", table_name="outboxmessage")

"""The database tables: cases, milestones, planned actions, messages in and out, votes, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

from bot.store.statuses import (
    AgencyRequestKind,
    AgencyRequestStatus,
    BallotStatus,
    InboundStatus,
    MilestoneStatus,
    OutboxStatus,
    PlannedActionStatus,
)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that refuses naive values and reads back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store the instant in UTC; a naive datetime is a bug and is refused."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Read the instant back as an aware UTC datetime (SQLite drops the offset)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def instant(nullable: bool = False, index: bool = False) -> Any:
    """Declare a timezone-aware column."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Case(SQLModel, table=True):
    """One Rapid Review: its reference, process, clock and where it has got to."""

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(index=True, max_length=64)
    reference: str = Field(unique=True, max_length=32)
    preset: str = Field(max_length=64)
    status: str = Field(max_length=32, index=True)
    clock_start: datetime = instant()
    day0: date
    opened_at: datetime = instant()
    closed_at: datetime | None = instant(nullable=True)
    referrer_email: str | None = Field(default=None, max_length=320)
    decision: str | None = Field(default=None, max_length=32)
    decision_rationale: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The child's identity lives only in these columns so that it can be minimised and purged.
    child_name: str | None = Field(default=None, max_length=200)
    child_initials: str | None = Field(default=None, max_length=8)
    child_dob: date | None = None
    # The agencies the referral names, as a JSON list of configured agency keys.
    named_agencies: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # When the National Panel acknowledged the report, from its reply.
    panel_acknowledged_at: datetime | None = instant(nullable=True)

    # The submission to the National Panel: held until, sent at, and whether after the cut-off.
    submission_hold_until: datetime | None = instant(nullable=True)
    submitted_at: datetime | None = instant(nullable=True)
    submitted_late: bool | None = None
    # The partners' recommendation the report makes: a local review, a national one, or none.
    review_recommendation: str | None = Field(default=None, max_length=16)
    review_rationale: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The National Panel's response as the business manager recorded it, and when.
    panel_response: str | None = Field(default=None, max_length=32)
    panel_responded_at: datetime | None = instant(nullable=True)
    # Why the case was closed, in the business manager's words or the bot's.
    close_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # When the child's identity, mail and documents were purged, and under which rule.
    purged_at: datetime | None = instant(nullable=True)
    purge_rule: str | None = Field(default=None, max_length=200)

class Milestone(SQLModel, table=True):
    """A dated step of one case."""

    __table_args__ = (
        UniqueConstraint("case_id", "key"),
        Index("ix_milestone_open_due", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int = Field(foreign_key="case.id", index=True)
    key: str = Field(max_length=64)
    label: str = Field(max_length=200)
    due_at: datetime = instant()
    day: int | None = None
    statutory: bool = False
    status: str = Field(default=MilestoneStatus.PENDING, max_length=16)
    done_at: datetime | None = instant(nullable=True)
    # Whether a person set the due instant (a publication date): re-planning keeps it.
    due_set_by_hand: bool = False


class PlannedAction(SQLModel, table=True):
    """Something the engine must do at an instant: a reminder, a deadline check, an escalation.

    The sweep claims due rows under a row lock, runs the named action and marks the row done
    in the same transaction, so an action happens once however many processes sweep.
    """

    __table_args__ = (
        Index("ix_planned_action_due", "status", "due_at"),
        # Recurring jobs (the digest) look up their pending row by action on every step.
        Index("ix_planned_action_kind", "action", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    key: str = Field(unique=True, max_length=200)
    action: str = Field(max_length=64)
    # The action's arguments, as its registered model dumps them to JSON.
    arguments: dict[str, Any] = Field(default_factory=dict,
                                      sa_column=Column(JSON, nullable=False))
    due_at: datetime = instant()
    status: str = Field(default=PlannedActionStatus.PENDING, max_length=16)
    done_at: datetime | None = instant(nullable=True)


class AgencyRequest(SQLModel, table=True):
    """One agency's information request on one case."""

    __table_args__ = (
        UniqueConstraint("case_id", "agency_key", "kind", name="uq_agencyrequest_case_kind"),
        # An agency's reply is matched to its open requests by agency and status.
        Index("ix_agencyrequest_agency_open", "agency_key", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int = Field(foreign_key="case.id", index=True)
    agency_key: str = Field(max_length=64)
    # What the agency is asked for: its information, or a follow-up such as a lesson log.
    kind: str = Field(default=AgencyRequestKind.INFORMATION, max_length=32)
    status: str = Field(default=AgencyRequestStatus.OPEN, max_length=16)
    asked_at: datetime | None = instant(nullable=True)
    due_at: datetime | None = instant(nullable=True)
    closed_at: datetime | None = instant(nullable=True)
    # The agency's latest reply (return, no_involvement, extension_request, question).
    reply_kind: str | None = Field(default=None, max_length=32)
    replied_at: datetime | None = instant(nullable=True)
    # Set when a contact bounced or is away: chasing goes to the alternate or senior officer.
    contact_problem: str | None = Field(default=None, max_length=32)


class PartnerMember(SQLModel, table=True):
    """A lead or deputy who may vote for a statutory partner organisation."""

    __table_args__ = (UniqueConstraint("partnership", "partner_key", "email"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    partner_key: str = Field(max_length=32)
    role: str = Field(max_length=16)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    slack_user_id: str | None = Field(default=None, max_length=32)


class Ballot(SQLModel, table=True):
    """A partner decision or a sign-off of one report version."""

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=16)
    status: str = Field(default=BallotStatus.OPEN, max_length=16)
    needed: int
    closes_at: datetime = instant()
    report_sha256: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, max_length=32)
    # The chat message that shows the ballot (Slack's ts), once the first post has gone.
    chat_ts: str | None = Field(default=None, max_length=64)
    # The newest revision of the ballot message shown in chat, so a stale update is skipped.
    chat_revision: int = 0
    opened_at: datetime | None = instant(nullable=True)
    closed_at: datetime | None = instant(nullable=True)


class Vote(SQLModel, table=True):
    """A partner organisation's vote on a ballot; a later vote by the same partner replaces it."""

    __table_args__ = (UniqueConstraint("ballot_id", "partner_key"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    ballot_id: int = Field(foreign_key="ballot.id", index=True)
    partner_key: str = Field(max_length=32)
    member_email: str = Field(max_length=320)
    choice: str = Field(max_length=32)
    rationale: str = Field(default="", sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=16)
    cast_at: datetime = instant()
    # Who cast the vote for the partner (a lead or a deputy), and who recorded it if not them.
    member_name: str | None = Field(default=None, max_length=200)
    member_role: str | None = Field(default=None, max_length=16)
    recorded_by: str | None = Field(default=None, max_length=200)
    evidence: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Document(SQLModel, table=True):
    """A stored file: a referral form, an agency return, a report version."""

    __table_args__ = (UniqueConstraint("case_id", "sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int = Field(foreign_key="case.id", index=True)
    kind: str = Field(max_length=32)
    filename: str = Field(max_length=300)
    sha256: str = Field(max_length=64)
    size: int
    path: str = Field(max_length=1000)
    stored_at: datetime = instant()


class CaseParticulars(SQLModel, table=True):
    """What the referral says of the child and family, for the papers the case produces.

    Like the case's child columns, this row is the child's identity: it is read only to fill
    papers that go by email, never into chat or logs, and can be purged with the case.
    """

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int = Field(foreign_key="case.id", unique=True)
    # The fields read from the referral (address, family members...) as JSON.
    details: dict[str, Any] = Field(default_factory=dict,
                                    sa_column=Column(JSON, nullable=False))
    recorded_at: datetime = instant()


class ReturnReading(SQLModel, table=True):
    """What the bot read from one agency return: how many rows, what it could not read."""

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int = Field(foreign_key="case.id", index=True)
    document_id: int = Field(foreign_key="document.id", unique=True)
    agency_key: str = Field(max_length=64)
    # read, partly_read or unreadable.
    status: str = Field(max_length=16)
    involvement: bool | None = None
    rows: int = 0
    problems: str = Field(default="", sa_column=Column(Text, nullable=False))
    read_at: datetime = instant()


class InboundMessage(SQLModel, table=True):
    """A message seen in the mailbox, kept until it has been dealt with."""

    __table_args__ = (
        UniqueConstraint("mailbox", "server_id"),
        UniqueConstraint("partnership", "message_id"),
        Index("ix_inbound_status", "status"),
        # The engine's step looks for released messages whose mailbox copy is still to move:
        # only the marked rows are indexed, so the look reads no others.
        Index("ix_inbound_refile", "mailbox", "refile_to",
              sqlite_where=text("refile_to IS NOT NULL"),
              postgresql_where=text("refile_to IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    mailbox: str = Field(max_length=320)
    server_id: str = Field(max_length=500)
    message_id: str | None = Field(default=None, max_length=998)
    received_at: datetime = instant()
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default=InboundStatus.NEW, max_length=16)
    kind: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    case_id: int | None = Field(default=None, foreign_key="case.id")
    handled_at: datetime | None = instant(nullable=True)
    # The sender's address as the pipeline read it (never the subject or the body).
    sender: str | None = Field(default=None, max_length=320)
    # Who released it from quarantine, as what (VouchedAs), why and when: the pipeline then
    # takes it as vouched for by them.
    vouched_by: str | None = Field(default=None, max_length=200)
    vouched_as: str | None = Field(default=None, max_length=16)
    vouched_reason: str | None = Field(default=None, max_length=500)
    vouched_at: datetime | None = instant(nullable=True)
    # Who set it aside for good, why and when (its bytes are kept).
    discarded_by: str | None = Field(default=None, max_length=200)
    discarded_reason: str | None = Field(default=None, max_length=500)
    discarded_at: datetime | None = instant(nullable=True)
    # The folder its mailbox copy is still to move to (Processed, once it is released from
    # Quarantine); the engine's step moves it and clears this (bot/engine/refile.py).
    refile_to: str | None = Field(default=None, max_length=500)


class OutboxMessage(SQLModel, table=True):
    """A message to send, written in the same transaction as the change that caused it."""

    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # Replies, bounces and auto-replies are matched to what we sent by its Message-ID.
        Index("ix_outbox_message_id", "message_id"),
        # The digest reads what was sent since its last run.
        Index("ix_outbox_sent", "status", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    case_id: int | None = Field(default=None, foreign_key="case.id", index=True)
    idempotency_key: str = Field(unique=True, max_length=200)
    channel: str = Field(max_length=16)
    purpose: str = Field(max_length=64)
    recipients: str = Field(sa_column=Column(Text, nullable=False))
    message_id: str = Field(max_length=200)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    created_at: datetime = instant()
    next_attempt_at: datetime = instant()
    claimed_at: datetime | None = instant(nullable=True)
    sent_at: datetime | None = instant(nullable=True)
    last_error: str | None = Field(default=None, max_length=500)

    # A message that must not go after this instant (the submission's cut-off) is held.
    send_by: datetime | None = instant(nullable=True)

class AuditEntry(SQLModel, table=True):
    """One line of the append-only audit trail, chained to the one before by its hash."""

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64, index=True)
    at: datetime = instant()
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    case_id: int | None = Field(default=None, index=True)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The newest audit hash of a partnership; locking this row serialises appends."""

    partnership: str = Field(primary_key=True, max_length=64)
    last_id: int = 0
    last_hash: str = Field(max_length=64)
    # The newest entry a check found intact, and its hash: the start-up check begins there.
    verified_id: int = 0
    verified_hash: str = Field(default="0" * 64, max_length=64)


class CursorState(SQLModel, table=True):
    """Small durable state an adapter keeps between runs (a delta link, say)."""

    key: str = Field(primary_key=True, max_length=200)
    value: str = Field(sa_column=Column(Text, nullable=False))


class DeliveryReceipt(SQLModel, table=True):
    """A chat delivery already acted on (a vote, a click, a signed request), so a repeat is not."""

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    key: str = Field(unique=True, max_length=200)
    ballot_id: int | None = Field(default=None, foreign_key="ballot.id", index=True)
    received_at: datetime = instant()


class OneOffAgency(SQLModel, table=True):
    """An agency asked on one case that is not in the configuration, added from the cockpit."""

    __table_args__ = (UniqueConstraint("partnership", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    partnership: str = Field(max_length=64)
    key: str = Field(max_length=64)
    name: str = Field(max_length=300)
    contact_email: str = Field(max_length=320)
    escalation_email: str | None = Field(default=None, max_length=320)
    added_at: datetime = instant()
    added_by: str = Field(max_length=200)


class InstallationSecret(SQLModel, table=True):
    """A secret made once per installation (the key of our Message-IDs); never shown or logged."""

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=128)

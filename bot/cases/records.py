"""One case's whole record, read from the tables: its plan, agencies, ballots, reports, mail."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from email import message_from_bytes, policy

from sqlmodel import Session, col, select

from bot.config import Config
from bot.store.models import (
    AgencyRequest,
    AuditEntry,
    Ballot,
    Case,
    Document,
    InboundMessage,
    Milestone,
    OutboxMessage,
    Vote,
)
from bot.store.statuses import OutboxChannel


@dataclass(frozen=True)
class PlanStep:
    """One milestone of the case: when it is due, whether and when it was done, and by whom."""

    key: str
    label: str
    day: int | None
    due_at: datetime
    status: str
    statutory: bool
    done_at: datetime | None
    done_by: str | None
    due_set_by_hand: bool


@dataclass(frozen=True)
class AgencyReturn:
    """One request to an agency and where it stands."""

    agency: str
    asked_for: str
    status: str
    asked_at: datetime | None
    due_at: datetime | None
    closed_at: datetime | None
    last_reply: str | None


@dataclass(frozen=True)
class VoteCast:
    """A partner's vote on a ballot."""

    partner: str
    member: str
    choice: str
    source: str
    cast_at: datetime
    rationale: str
    recorded_by: str | None


@dataclass(frozen=True)
class BallotRecord:
    """A decision or sign-off ballot with its votes."""

    kind: str
    status: str
    outcome: str | None
    opened_at: datetime | None
    closes_at: datetime
    closed_at: datetime | None
    report_sha256: str | None
    votes: tuple[VoteCast, ...]


@dataclass(frozen=True)
class StoredDocument:
    """A file kept on the case (a referral form, a return, a report version)."""

    document_id: int
    kind: str
    filename: str
    sha256: str
    size: int
    stored_at: datetime
    path: str


@dataclass(frozen=True)
class MessageRecord:
    """A message the case received or sent (or queued), with who and what."""

    direction: str
    message_id: str | None
    at: datetime
    correspondent: str
    purpose: str
    status: str
    subject: str


@dataclass(frozen=True)
class CaseRecord:
    """Everything the bot holds on one case, for people and for the records."""

    reference: str
    preset: str
    status: str
    clock_start: datetime
    day0: date
    opened_at: datetime
    decision: str | None
    submitted_at: datetime | None
    panel_response: str | None
    panel_responded_at: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    purged_at: datetime | None
    purge_rule: str | None
    plan: tuple[PlanStep, ...]
    agencies: tuple[AgencyReturn, ...]
    ballots: tuple[BallotRecord, ...]
    reports: tuple[StoredDocument, ...]
    documents: tuple[StoredDocument, ...]
    messages: tuple[MessageRecord, ...]


def case_record(session: Session, config: Config, case: Case) -> CaseRecord:
    """Read the whole record of a case."""
    names = {agency.key: agency.name for agency in config.settings.agencies}
    partners = {key: partner.name for key, partner in config.settings.partners.by_key().items()}
    documents = tuple(_document(d) for d in session.exec(
        select(Document).where(Document.case_id == case.id).order_by(col(Document.id))))
    return CaseRecord(
        reference=case.reference, preset=case.preset, status=case.status,
        clock_start=case.clock_start, day0=case.day0, opened_at=case.opened_at,
        decision=case.decision, submitted_at=case.submitted_at,
        panel_response=case.panel_response, panel_responded_at=case.panel_responded_at,
        closed_at=case.closed_at, close_reason=case.close_reason, purged_at=case.purged_at,
        purge_rule=case.purge_rule,
        plan=_plan(session, case),
        agencies=tuple(AgencyReturn(
            names.get(r.agency_key, r.agency_key), r.kind, r.status, r.asked_at, r.due_at,
            r.closed_at, r.reply_kind) for r in session.exec(
                select(AgencyRequest).where(AgencyRequest.case_id == case.id)
                .order_by(col(AgencyRequest.kind), col(AgencyRequest.agency_key)))),
        ballots=tuple(_ballot(session, ballot, partners) for ballot in session.exec(
            select(Ballot).where(Ballot.case_id == case.id).order_by(col(Ballot.id)))),
        reports=tuple(d for d in documents if d.kind == "report"),
        documents=documents,
        messages=tuple(sorted(_messages(session, case), key=lambda m: m.at)),
    )


def case_audit(session: Session, case: Case) -> list[AuditEntry]:
    """Return the audit entries about a case, oldest first."""
    return list(session.exec(select(AuditEntry).where(AuditEntry.case_id == case.id)
                             .order_by(col(AuditEntry.id))))


def _plan(session: Session, case: Case) -> tuple[PlanStep, ...]:
    done_by: dict[str, str] = {}
    for entry in case_audit(session, case):
        if entry.action == "milestone_done":
            done_by.setdefault(str(json.loads(entry.detail).get("milestone")), entry.actor)
    milestones = session.exec(select(Milestone).where(Milestone.case_id == case.id)
                              .order_by(col(Milestone.due_at), col(Milestone.id)))
    return tuple(PlanStep(m.key, m.label, m.day, m.due_at, m.status, m.statutory, m.done_at,
                          done_by.get(m.key), m.due_set_by_hand) for m in milestones)


def _ballot(session: Session, ballot: Ballot, partners: dict[str, str]) -> BallotRecord:
    votes = session.exec(select(Vote).where(Vote.ballot_id == ballot.id)
                         .order_by(col(Vote.cast_at)))
    return BallotRecord(
        ballot.kind, ballot.status, ballot.outcome, ballot.opened_at, ballot.closes_at,
        ballot.closed_at, ballot.report_sha256,
        tuple(VoteCast(partners.get(v.partner_key, v.partner_key),
                       v.member_name or v.member_email, v.choice, v.source, v.cast_at,
                       v.rationale, v.recorded_by) for v in votes))


def _document(document: Document) -> StoredDocument:
    return StoredDocument(document.id or 0, document.kind, document.filename, document.sha256,
                          document.size, document.stored_at, document.path)


def _messages(session: Session, case: Case) -> list[MessageRecord]:
    found = [MessageRecord("in", row.message_id, row.received_at, row.sender or "-",
                           row.kind or "-", row.status, subject_of(row.raw))
             for row in inbound_of(session, case)]
    found += [MessageRecord("out", row.message_id, row.sent_at or row.created_at,
                            row.recipients or row.channel, row.purpose, row.status,
                            subject_of(row.payload) if row.channel == OutboxChannel.MAIL
                            else "(chat)")
              for row in outbox_of(session, case)]
    return found


def inbound_of(session: Session, case: Case) -> list[InboundMessage]:
    """Return the messages the case received, in the order they arrived."""
    return list(session.exec(select(InboundMessage).where(InboundMessage.case_id == case.id)
                             .order_by(col(InboundMessage.id))))


def outbox_of(session: Session, case: Case) -> list[OutboxMessage]:
    """Return the messages the case sent or queued, in the order they were queued."""
    return list(session.exec(select(OutboxMessage).where(OutboxMessage.case_id == case.id)
                             .order_by(col(OutboxMessage.id))))


def subject_of(raw: bytes) -> str:
    """Read a message's subject; a purged or unreadable one has none."""
    if not raw:
        return "(purged)"
    try:
        message = message_from_bytes(raw, policy=policy.default)
        return " ".join(str(message.get("Subject", "")).split()) or "(no subject)"
    except (ValueError, TypeError, IndexError):
        return "(unreadable)"

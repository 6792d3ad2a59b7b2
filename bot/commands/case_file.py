"""One case's whole file for the cockpit: plan, agencies, ballots, report, messages, audit."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import col, select

from bot.agencies.directory import agency_for_sender, agency_names
from bot.ballots.members import PARTNER_LABELS
from bot.ballots.views import OPTIONS
from bot.commands.base import READERS, CommandError, Context, case_named, require
from bot.commands.board import NOT_ALLOWED
from bot.digest.attention import words
from bot.digest.daily import day_label, submission_day
from bot.mail.mime import attachments
from bot.store.models import (
    AgencyRequest,
    AuditEntry,
    Ballot,
    Case,
    Document,
    InboundMessage,
    Milestone,
    OutboxMessage,
    PlannedAction,
    Vote,
)
from bot.store.statuses import OutboxStatus, PlannedActionStatus

# What the chasing of an agency request is called on the case page.
CHASING_PURPOSES = {"agency_reminder": "reminder", "agency_final_reminder": "final reminder",
                    "agency_escalation": "escalation"}


@dataclass(frozen=True)
class AgencyEntry:
    """One agency's request on the case, its chasing so far and to come, and its documents."""

    request: AgencyRequest
    name: str
    reminders_sent: tuple[tuple[str, datetime], ...]
    chasing_planned: tuple[tuple[str, datetime], ...]
    documents: tuple[Document, ...]


@dataclass(frozen=True)
class VoteEntry:
    """One organisation's vote on a ballot, in words."""

    partner: str
    vote: Vote
    choice: str


@dataclass(frozen=True)
class BallotEntry:
    """A ballot with its votes and the partners still to vote."""

    ballot: Ballot
    title: str
    votes: tuple[VoteEntry, ...]
    waiting: tuple[str, ...]
    outcome: str | None


@dataclass(frozen=True)
class ReportVersion:
    """A report version: its number, file, and whether the partners approved it."""

    number: int
    document: Document
    approved: bool


@dataclass(frozen=True)
class CaseFile:
    """Everything the case page shows."""

    case: Case
    day_label: str
    milestones: tuple[Milestone, ...]
    agencies: tuple[AgencyEntry, ...]
    ballots: tuple[BallotEntry, ...]
    reports: tuple[ReportVersion, ...]
    other_documents: tuple[Document, ...]
    submission: OutboxMessage | None
    messages_in: tuple[InboundMessage, ...]
    messages_out: tuple[OutboxMessage, ...]
    audit: tuple[tuple[AuditEntry, dict[str, object]], ...]


def case_file(context: Context, reference: str) -> CaseFile:
    """Gather one case's file for people who may read cases."""
    require(context, READERS, "case", NOT_ALLOWED)
    case = case_named(context, reference)
    session, config = context.session, context.config
    milestones = tuple(session.exec(select(Milestone).where(Milestone.case_id == case.id)
                                    .order_by(col(Milestone.due_at), col(Milestone.id))))
    documents = list(session.exec(select(Document).where(Document.case_id == case.id)
                                  .order_by(col(Document.id))))
    outbox = list(session.exec(select(OutboxMessage).where(OutboxMessage.case_id == case.id)
                               .order_by(col(OutboxMessage.id))))
    ballots = list(session.exec(select(Ballot).where(Ballot.case_id == case.id)
                                .order_by(col(Ballot.id))))
    approved = {b.report_sha256 for b in ballots if b.outcome == "approve"}
    reports = [d for d in documents if d.kind == "report"]
    submissions = [m for m in outbox if m.purpose == "submission"
                   and m.status != OutboxStatus.SUPERSEDED]
    today = config.calendar.local_date(context.now)
    return CaseFile(
        case=case,
        day_label=day_label(config.calendar, case, list(milestones), today,
                            submission_day(config)),
        milestones=milestones,
        agencies=_agencies(context, case, documents, outbox),
        ballots=_ballots(context, ballots),
        reports=tuple(ReportVersion(number, document, document.sha256 in approved)
                      for number, document in enumerate(reports, start=1)),
        other_documents=tuple(d for d in documents if d.kind not in {"report", "agency_return"}),
        submission=submissions[-1] if submissions else None,
        messages_in=tuple(session.exec(select(InboundMessage).where(
            InboundMessage.case_id == case.id).order_by(col(InboundMessage.id)))),
        messages_out=tuple(outbox),
        audit=tuple((entry, json.loads(entry.detail)) for entry in session.exec(
            select(AuditEntry).where(AuditEntry.case_id == case.id)
            .order_by(col(AuditEntry.id)))),
    )


def case_document(context: Context, reference: str, document_id: int) -> tuple[str, Path]:
    """Return a stored document of the case (its name and where it is) to download."""
    require(context, READERS, "document", NOT_ALLOWED)
    case = case_named(context, reference)
    document = context.session.get(Document, document_id)
    if document is None or document.case_id != case.id or not Path(document.path).is_file():
        raise CommandError(f"{case.reference} has no document {document_id}")
    return document.filename, Path(document.path)


def _agencies(context: Context, case: Case, documents: list[Document],
              outbox: list[OutboxMessage]) -> tuple[AgencyEntry, ...]:
    session = context.session
    names = agency_names(session, context.config)
    requests = session.exec(select(AgencyRequest).where(AgencyRequest.case_id == case.id)
                            .order_by(col(AgencyRequest.id)))
    sent: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for message in outbox:
        if message.purpose in CHASING_PURPOSES and message.sent_at is not None:
            agency = message.idempotency_key.split(":")[2]
            sent[agency].append((CHASING_PURPOSES[message.purpose], message.sent_at))
    planned: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for action in session.exec(select(PlannedAction).where(
            PlannedAction.case_id == case.id, PlannedAction.status == PlannedActionStatus.PENDING,
            col(PlannedAction.action).in_(list(CHASING_PURPOSES)))
            .order_by(col(PlannedAction.due_at))):
        planned[str(action.arguments.get("agency"))].append(
            (CHASING_PURPOSES[action.action], action.due_at))
    returns = _returns_by_agency(context, case, documents)
    return tuple(AgencyEntry(request, names.get(request.agency_key, request.agency_key),
                             tuple(sent[request.agency_key]),
                             tuple(planned[request.agency_key]),
                             tuple(returns[request.agency_key]))
                 for request in requests)


def _returns_by_agency(context: Context, case: Case, documents: list[Document]
                       ) -> dict[str, list[Document]]:
    # A stored return names no agency: the reply it came in, matched by the file's hash, does.
    stored = {d.sha256: d for d in documents if d.kind == "agency_return"}
    found: dict[str, list[Document]] = defaultdict(list)
    replies = context.session.exec(select(InboundMessage).where(
        InboundMessage.case_id == case.id, col(InboundMessage.kind).startswith("agency_")))
    for reply in replies:
        agency = agency_for_sender(context.session, context.config, reply.sender or "")
        message = message_from_bytes(reply.raw, policy=policy.default)
        if agency is None or not isinstance(message, EmailMessage):
            continue
        for attachment in attachments(message):
            document = stored.get(hashlib.sha256(attachment.content).hexdigest())
            if document is not None and document not in found[agency.key]:
                found[agency.key].append(document)
    return found


def _ballots(context: Context, ballots: list[Ballot]) -> tuple[BallotEntry, ...]:
    votes: dict[int, list[Vote]] = defaultdict(list)
    for vote in context.session.exec(select(Vote).where(
            col(Vote.ballot_id).in_([b.id for b in ballots])).order_by(col(Vote.id))):
        votes[vote.ballot_id].append(vote)
    entries = []
    for ballot in ballots:
        labels = {option.value: option.label for option in OPTIONS[ballot.kind]}
        cast = votes[ballot.id or 0]
        title = ("Partner decision" if ballot.kind == "decision"
                 else f"Sign-off of version {(ballot.report_sha256 or '')[:12]}")
        entries.append(BallotEntry(
            ballot, title,
            tuple(VoteEntry(PARTNER_LABELS[v.partner_key], v, labels.get(v.choice, v.choice))
                  for v in cast),
            tuple(label for key, label in PARTNER_LABELS.items()
                  if key not in {v.partner_key for v in cast}),
            words(ballot.outcome) if ballot.outcome else None))
    return tuple(entries)

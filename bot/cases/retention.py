"""Retention: purge what identifies the child from cases closed longer than the partnership keeps.

A purged case keeps its reference, dates, statuses, plan and audit trail (a tombstone); the
child's identity, the raw mail in and out, free-text rationales and the stored files go. The
audit trail is never edited: a `case_purged` entry says what went, when and under which rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from bot.cases.records import inbound_of, outbox_of
from bot.config import Config
from bot.kernel import audit
from bot.process.timeline import add_months
from bot.store.models import Ballot, Case, Document, Vote
from bot.store.statuses import CaseStatus, OutboxStatus

# Outbox rows that might still be tried; a purged case's are set aside instead.
UNSENT = {OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.HELD, OutboxStatus.DEAD}


@dataclass(frozen=True)
class PurgedCase:
    """What was removed from one case."""

    reference: str
    closed_at: datetime
    messages_in: int
    messages_out: int
    documents: int


def retention_rule(config: Config) -> str | None:
    """Name the rule purges follow, e.g. 'records.retain_closed_cases_for = "6 years"'."""
    period = config.settings.records.retain_closed_cases_for
    return None if period is None else f'records.retain_closed_cases_for = "{period}"'


def purge_before(period: str, now: datetime) -> datetime:
    """Return the instant before which a case must have closed to be purged now."""
    match = re.fullmatch(r"(\d+) (day|week|month|year)s?", period.strip())
    if match is None:
        raise ValueError(f"retain_closed_cases_for: {period!r} is not like \"6 years\"")
    count, unit = int(match.group(1)), match.group(2)
    if unit in {"day", "week"}:
        return now - timedelta(days=count * (7 if unit == "week" else 1))
    months = count * (12 if unit == "year" else 1)
    day = add_months(now.date(), -months) if months else now.date()
    return datetime.combine(day, now.timetz())


def purge_closed_cases(
    session: Session, config: Config, now: datetime, actor: str
) -> list[PurgedCase]:
    """Purge every case closed before the retention period; nothing when none is set."""
    period = config.settings.records.retain_closed_cases_for
    rule = retention_rule(config)
    if period is None or rule is None:
        raise ValueError("[records] retain_closed_cases_for is not set, so every case is kept;"
                         " set it to purge")
    cutoff = purge_before(period, now)
    cases = session.exec(select(Case).where(
        Case.status == CaseStatus.CLOSED, col(Case.closed_at) <= cutoff,
        col(Case.purged_at).is_(None)).order_by(col(Case.id))).all()
    return [_purge(session, case, now, actor, rule) for case in cases]


def _purge(session: Session, case: Case, now: datetime, actor: str, rule: str) -> PurgedCase:
    inbound, outbox = inbound_of(session, case), outbox_of(session, case)
    for message in inbound:
        message.raw = b""
        session.add(message)
    for row in outbox:
        row.payload = b""
        if row.status in UNSENT:
            row.status = OutboxStatus.SUPERSEDED
        session.add(row)
    documents = session.exec(select(Document).where(Document.case_id == case.id)).all()
    for document in documents:
        Path(document.path).unlink(missing_ok=True)
        document.path = ""
        session.add(document)
    ballots = session.exec(select(Ballot.id).where(Ballot.case_id == case.id)).all()
    for vote in session.exec(select(Vote).where(col(Vote.ballot_id).in_(ballots))):
        vote.rationale, vote.evidence = "", None
        session.add(vote)
    case.child_name = case.child_initials = case.child_dob = None
    case.decision_rationale = case.review_rationale = None
    case.purged_at, case.purge_rule = now, rule
    session.add(case)
    assert case.closed_at is not None
    purged = PurgedCase(case.reference, case.closed_at, len(inbound), len(outbox),
                        len(documents))
    audit.record(session, case.partnership, actor, audit.TOMBSTONE_ACTION, now, case.id,
                 reference=case.reference, rule=rule, closed_at=case.closed_at,
                 removed=["child identity", "rationales", "mail", "documents"],
                 messages_in=purged.messages_in, messages_out=purged.messages_out,
                 documents=purged.documents)
    return purged

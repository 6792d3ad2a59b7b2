"""Mail that needs the business manager: quarantined, undelivered and sent late."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.digest.lines import LateLine, Quarantine, QuarantinedLine, UnsentLine
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import WorkingCalendar, short_time
from bot.store.models import Case, InboundMessage, Milestone, OutboxMessage
from bot.store.statuses import InboundStatus, OutboxStatus

# How many quarantined messages the digest lists one by one; the rest are counted.
QUARANTINE_LISTED = 10
# The outbox purposes that discharge a milestone: a row of one sent after that milestone's
# due instant was sent late. Add a purpose here when a new message discharges a milestone.
PURPOSE_MILESTONES = {
    "referral_ack": "acknowledge",
    "referral_copy": "acknowledge",
    "decision_feedback": "decision_feedback",
    "agency_request": "agency_requests",
    "submission": SUBMISSION_KEY,
}



def short_date(day: date) -> str:
    """Show a date compactly: "Mon 11 Jan 2027"."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def quarantine_summary(
    session: Session, calendar: WorkingCalendar, partnership: str | None = None
) -> Quarantine:
    """Summarise the Quarantine folder: how many, and the newest few with their reasons."""
    rows = session.exec(
        select(InboundMessage).where(InboundMessage.status == InboundStatus.QUARANTINED,
                                     *_of(InboundMessage.partnership, partnership))
        .order_by(col(InboundMessage.received_at), col(InboundMessage.id))
    ).all()
    reasons = Counter(row.reason or "no reason recorded" for row in rows)
    return Quarantine(
        count=len(rows),
        oldest=short_time(rows[0].received_at, calendar) if rows else None,
        reasons=sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
        listed=[QuarantinedLine(short_time(row.received_at, calendar), row.sender or "unknown",
                                row.reason or "no reason recorded")
                for row in rows[:QUARANTINE_LISTED]],
    )


def unsent_lines(
    session: Session, calendar: WorkingCalendar, partnership: str | None = None
) -> list[UnsentLine]:
    """List the messages that could not be delivered (dead letters), newest first."""
    rows = session.exec(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD,
                                    *_of(OutboxMessage.partnership, partnership))
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    ).all()
    references = case_references(session, {row.case_id for row in rows if row.case_id})
    return [
        UnsentLine(
            reference=references.get(row.case_id or 0, "-"), purpose=words(row.purpose),
            recipients=row.recipients, attempts=row.attempts,
            queued=short_time(row.created_at, calendar), error=(row.last_error or "")[:160],
        )
        for row in rows
    ]


def late_sends(
    session: Session, calendar: WorkingCalendar, now: datetime, since: datetime,
    partnership: str | None = None,
) -> list[LateLine]:
    """List the statutory emails that went after their milestone's deadline."""
    rows = session.exec(
        select(OutboxMessage).where(
            *_of(OutboxMessage.partnership, partnership),
            OutboxMessage.status == OutboxStatus.SENT, col(OutboxMessage.sent_at) > since,
            col(OutboxMessage.sent_at) <= now,
            col(OutboxMessage.purpose).in_(sorted(PURPOSE_MILESTONES)),
            col(OutboxMessage.case_id).is_not(None),
        ).order_by(col(OutboxMessage.sent_at), col(OutboxMessage.id))
    ).all()
    references = case_references(session, {row.case_id for row in rows if row.case_id})
    late = []
    for row in rows:
        milestone = session.exec(select(Milestone).where(
            Milestone.case_id == row.case_id,
            Milestone.key == PURPOSE_MILESTONES[row.purpose],
        )).first()
        if milestone is None or row.sent_at is None or row.sent_at <= milestone.due_at:
            continue
        late.append(LateLine(
            reference=references.get(row.case_id or 0, "-"), purpose=words(row.purpose),
            milestone=milestone.label, due=short_time(milestone.due_at, calendar),
            sent=short_time(row.sent_at, calendar),
        ))
    return late


def case_references(session: Session, case_ids: set[int]) -> dict[int, str]:
    """Map case ids to their references, in one query."""
    if not case_ids:
        return {}
    rows = session.exec(select(Case.id, Case.reference).where(col(Case.id).in_(case_ids)))
    return {case_id: reference for case_id, reference in rows if case_id is not None}


def words(key: str) -> str:
    """Turn a key such as partner_decision into words."""
    # Turn a stored key such as "awaiting_decision" into "Awaiting decision".
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]


def _of(column: Any, partnership: str | None) -> list[Any]:
    # The rows of one partnership, or of every one when none is named.
    return [] if partnership is None else [column == partnership]

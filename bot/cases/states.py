"""The case state machine: every allowed transition, in one place."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.kernel import audit
from bot.store.models import Case
from bot.store.statuses import CaseStatus

# Each status and the statuses a case may move to from it; looked up by the stored string.
TRANSITIONS: dict[str, frozenset[CaseStatus]] = {
    # The acknowledgement is the "acknowledge" milestone, not a status: opening a case puts
    # it to the partners at once, in the same transaction.
    CaseStatus.RECEIVED: frozenset({CaseStatus.AWAITING_DECISION}),
    CaseStatus.AWAITING_DECISION: frozenset({
        CaseStatus.RAPID_REVIEW, CaseStatus.NO_FURTHER_ACTION, CaseStatus.LEARNING_REVIEW,
        CaseStatus.ESCALATED,
    }),
    CaseStatus.ESCALATED: frozenset({
        CaseStatus.AWAITING_DECISION, CaseStatus.RAPID_REVIEW, CaseStatus.NO_FURTHER_ACTION,
        CaseStatus.LEARNING_REVIEW,
    }),
    CaseStatus.RAPID_REVIEW: frozenset({CaseStatus.REQUESTS_SENT}),
    # A report version arriving shows the meeting was held, whether or not it was recorded.
    CaseStatus.REQUESTS_SENT: frozenset({
        CaseStatus.RETURNS_COLLECTED, CaseStatus.MEETING_HELD, CaseStatus.DRAFT_REPORT,
    }),
    CaseStatus.RETURNS_COLLECTED: frozenset({CaseStatus.MEETING_HELD, CaseStatus.DRAFT_REPORT}),
    CaseStatus.MEETING_HELD: frozenset({CaseStatus.DRAFT_REPORT}),
    CaseStatus.DRAFT_REPORT: frozenset({CaseStatus.SIGNED_OFF}),
    CaseStatus.SIGNED_OFF: frozenset({CaseStatus.DRAFT_REPORT, CaseStatus.SUBMITTED}),
    # Once the report is confirmed in Sent the case waits for the National Panel's response;
    # a local review commissioned meanwhile (or after it) keeps the case open until it ends.
    CaseStatus.SUBMITTED: frozenset({CaseStatus.AWAITING_PANEL_RESPONSE,
                                     CaseStatus.LOCAL_REVIEW}),
    CaseStatus.AWAITING_PANEL_RESPONSE: frozenset({CaseStatus.LOCAL_REVIEW}),
    CaseStatus.NO_FURTHER_ACTION: frozenset(),
    CaseStatus.LEARNING_REVIEW: frozenset({CaseStatus.LOCAL_REVIEW}),
    CaseStatus.LOCAL_REVIEW: frozenset(),
    CaseStatus.CLOSED: frozenset(),
}
# Every open case may be closed: by the Panel's response, or by the business manager with a
# reason (a referral opened by mistake, a case merged into another, a review published).
TRANSITIONS.update({status: allowed | {CaseStatus.CLOSED}
                    for status, allowed in TRANSITIONS.items() if status != CaseStatus.CLOSED})
OPEN_STATUSES = frozenset(TRANSITIONS) - {CaseStatus.CLOSED}


class IllegalTransition(Exception):
    """A case was asked to move somewhere its current status does not lead."""


def transition(
    session: Session, case: Case, to: CaseStatus, actor: str, now: datetime
) -> None:
    """Move a case to a new status and audit it; an illegal move raises and changes nothing."""
    if to not in TRANSITIONS:
        raise IllegalTransition(f"{to!r} is not a case status")
    if to not in TRANSITIONS[case.status]:
        raise IllegalTransition(f"case {case.reference} cannot go from {case.status} to {to}")
    previous = case.status
    case.status = to
    if to == CaseStatus.CLOSED:
        case.closed_at = now
    session.add(case)
    audit.record(session, case.partnership, actor, "case_status", now, case.id,
                 previous=previous, status=to)

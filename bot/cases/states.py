"""The case state machine: every allowed transition, in one place."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.kernel import audit
from bot.store.models import Case

# Each status and the statuses a case may move to from it.
TRANSITIONS: dict[str, frozenset[str]] = {
    # The acknowledgement is the "acknowledge" milestone, not a status: opening a case puts
    # it to the partners at once, in the same transaction.
    "received": frozenset({"awaiting_decision", "closed"}),
    "awaiting_decision": frozenset(
        {"rapid_review", "no_further_action", "learning_review", "escalated"}
    ),
    "escalated": frozenset(
        {"awaiting_decision", "rapid_review", "no_further_action", "learning_review"}
    ),
    "rapid_review": frozenset({"requests_sent"}),
    # A report version arriving shows the meeting was held, whether or not it was recorded.
    "requests_sent": frozenset({"returns_collected", "meeting_held", "draft_report"}),
    "returns_collected": frozenset({"meeting_held", "draft_report"}),
    "meeting_held": frozenset({"draft_report"}),
    "draft_report": frozenset({"signed_off"}),
    "signed_off": frozenset({"draft_report", "submitted"}),
    "submitted": frozenset({"closed"}),
    "no_further_action": frozenset({"closed"}),
    "learning_review": frozenset({"closed"}),
    "closed": frozenset(),
}
OPEN_STATUSES = frozenset(TRANSITIONS) - {"closed"}


class IllegalTransition(Exception):
    """A case was asked to move somewhere its current status does not lead."""


def transition(session: Session, case: Case, to: str, actor: str, now: datetime) -> None:
    """Move a case to a new status and audit it; an illegal move raises and changes nothing."""
    if to not in TRANSITIONS:
        raise IllegalTransition(f"{to!r} is not a case status")
    if to not in TRANSITIONS[case.status]:
        raise IllegalTransition(f"case {case.reference} cannot go from {case.status} to {to}")
    previous = case.status
    case.status = to
    if to == "closed":
        case.closed_at = now
    session.add(case)
    audit.record(session, case.partnership, actor, "case_status", now, case.id,
                 previous=previous, status=to)

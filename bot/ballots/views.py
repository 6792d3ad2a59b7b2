"""What chat shows of a ballot: its options, progress and outcome, never rationales or names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.ballots.members import PARTNER_LABELS
from bot.config import Config
from bot.kernel.chat import BallotOption, BallotView
from bot.kernel.outbox import enqueue_chat
from bot.process.working_days import short_time
from bot.store.models import Ballot, Case, DeliveryReceipt, Vote
from bot.store.statuses import BallotKind, BallotStatus

DECISION_OPTIONS = (
    BallotOption("rapid_review", "Rapid Review"),
    BallotOption("no_further_action", "No further action"),
    BallotOption("learning_review", "Local learning review"),
    BallotOption("more_information", "More information needed"),
)


SIGNOFF_OPTIONS = (
    BallotOption("approve", "Approve", needs_rationale=False),
    BallotOption("request_changes", "Request changes"),
)


OPTIONS: dict[str, tuple[BallotOption, ...]] = {
    BallotKind.DECISION: DECISION_OPTIONS, BallotKind.SIGNOFF: SIGNOFF_OPTIONS,
}


# A closed ballot's view is always newer than any view queued while it was open.
CLOSED_REVISION = 1_000_000


def ballot_view(session: Session, config: Config, case: Case, ballot: Ballot) -> BallotView:
    """Build what chat shows of a ballot: partners and choices, never rationales or names."""
    votes = {vote.partner_key: vote for vote in votes_on(session, ballot)}
    options = OPTIONS[ballot.kind]
    labels = {option.value: option.label for option in options}
    cast = [_describe_vote(ballot.kind, key, votes[key], labels) for key in PARTNER_LABELS
            if key in votes]
    waiting = [label for key, label in PARTNER_LABELS.items() if key not in votes]
    parts = [f"{len(votes)} of {len(PARTNER_LABELS)} partners"
             + (": " + ", ".join(cast) if cast else "")]
    if ballot.status == BallotStatus.OPEN:
        if waiting:
            parts.append("waiting for " + ", ".join(waiting))
        parts.append(f"{ballot.needed} needed")
        parts.append(f"closes {short_time(ballot.closes_at, config.calendar)}")
    outcome = ""
    if ballot.status != BallotStatus.OPEN:
        outcome = _outcome_text(ballot)
    if ballot.kind == BallotKind.DECISION:
        title = f"{case.reference}: partner decision"
        question = "Does this referral meet the criteria for a Rapid Review?"
    else:
        title = f"{case.reference}: report sign-off"
        question = (f"Do you approve report version {(ballot.report_sha256 or '')[:12]} for"
                    " submission to the National Panel?")
    return BallotView(
        ballot_id=ballot.id or 0, kind=ballot.kind, case_reference=case.reference, title=title,
        question=question, options=options, progress="; ".join(parts),
        open=ballot.status == BallotStatus.OPEN, outcome=outcome,
        report_sha256=ballot.report_sha256 or "",
    )



def votes_on(session: Session, ballot: Ballot) -> list[Vote]:
    """Return a ballot's votes in the order they were first cast."""
    return list(session.exec(
        select(Vote).where(Vote.ballot_id == ballot.id).order_by(col(Vote.id))
    ).all())


def _describe_vote(kind: str, partner_key: str, vote: Vote, labels: dict[str, str]) -> str:
    who = PARTNER_LABELS[partner_key] + (" (deputy)" if vote.member_role == "deputy" else "")
    if kind == BallotKind.SIGNOFF:
        verb = "approved" if vote.choice == "approve" else "requested changes"
        return f"{who} {verb}"
    return f"{who} chose {labels.get(vote.choice, vote.choice)}"


def _outcome_text(ballot: Ballot) -> str:
    texts = {
        "rapid_review": "Rapid Review", "no_further_action": "No further action",
        "learning_review": "Local learning review",
        "more_information": "More information needed", "approve": "Approved",
        "request_changes": "Changes requested", "no_quorum": "Closed without quorum",
        "superseded": "Closed: a newer report version is out for sign-off",
    }
    return texts.get(ballot.outcome or "", ballot.outcome or "Closed")


def _revision(session: Session, ballot: Ballot) -> int:
    counted = session.exec(
        select(func.count()).select_from(DeliveryReceipt)
        .where(DeliveryReceipt.ballot_id == ballot.id)
    ).one()
    return int(counted) + (CLOSED_REVISION if ballot.status != BallotStatus.OPEN else 0)


def queue_view(
    session: Session, config: Config, case: Case, ballot: Ballot, now: datetime
) -> None:
    """Queue the ballot's new view for chat, newer than any queued before."""
    revision = _revision(session, ballot)
    enqueue_chat(
        session, partnership=case.partnership,
        key=f"{case.reference}:ballot:{ballot.id}:view:{revision}",
        purpose=f"ballot_{ballot.kind}_update",
        payload={"operation": "update_ballot", "revision": revision,
                 "view": ballot_view(session, config, case, ballot).as_json()},
        now=now, recipient="channel", case_id=case.id,
    )

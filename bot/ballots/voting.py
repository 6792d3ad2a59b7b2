"""Voting: one vote per partner organisation, counted once per delivery, and quorum."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from bot.ballots.lifecycle import close_ballot
from bot.ballots.members import PARTNER_LABELS, Member, VoteRefused
from bot.ballots.views import OPTIONS, queue_view, votes_on
from bot.config import Config
from bot.kernel import audit
from bot.kernel.chat import BallotOption
from bot.kernel.outbox import enqueue_chat
from bot.kernel.receipts import receipt_seen, remember_receipt
from bot.store.models import Ballot, Case, Vote
from bot.store.statuses import BallotKind, BallotStatus


@dataclass(frozen=True)
class VoteResult:
    """What happened to a vote: counted, a duplicate delivery, or too late."""

    status: str
    ballot_id: int
    replaced: bool = False
    closed_with: str | None = None


def cast_vote(
    session: Session,
    config: Config,
    ballot_id: int,
    member: Member,
    choice: str,
    rationale: str,
    now: datetime,
    *,
    source: str,
    delivery_key: str,
    recorded_by: str | None = None,
    evidence: str | None = None,
) -> VoteResult:
    """Count a member's vote for their partner organisation; a repeat delivery counts once."""
    # Locking the ballot serialises votes on it, so quorum is judged on every vote.
    ballot = session.exec(
        select(Ballot).where(Ballot.id == ballot_id).with_for_update()
    ).first()
    if ballot is None:
        raise VoteRefused(f"no ballot {ballot_id}")
    case = session.get_one(Case, ballot.case_id)
    if receipt_seen(session, delivery_key):
        return VoteResult("duplicate", ballot_id)
    actor = f"{recorded_by} for {member.name}" if recorded_by else member.name
    if ballot.status != BallotStatus.OPEN:
        audit.record(session, case.partnership, actor, "vote_too_late", now, case.id,
                     ballot_id=ballot_id, partner=member.partner_key, source=source)
        return VoteResult("closed", ballot_id, closed_with=ballot.outcome)
    option = _option(ballot.kind, choice)
    rationale = rationale.strip()
    if option.needs_rationale and not rationale:
        raise VoteRefused(f"a rationale is needed for {option.label!r}")
    remember_receipt(session, case.partnership, delivery_key, now, ballot_id)
    vote = session.exec(select(Vote).where(
        Vote.ballot_id == ballot_id, Vote.partner_key == member.partner_key
    )).first()
    replaced = vote is not None
    if vote is None:
        vote = Vote(partnership=case.partnership, ballot_id=ballot_id,
                    partner_key=member.partner_key, member_email=member.email, choice=choice,
                    source=source, cast_at=now)
    vote.member_email, vote.member_name, vote.member_role = member.email, member.name, member.role
    vote.choice, vote.rationale, vote.source, vote.cast_at = choice, rationale, source, now
    vote.recorded_by, vote.evidence = recorded_by, evidence
    session.add(vote)
    session.flush()
    audit.record(session, case.partnership, actor, "vote_cast", now, case.id,
                 ballot_id=ballot_id, kind=ballot.kind, partner=member.partner_key,
                 role=member.role, choice=choice, source=source, replaced=replaced,
                 recorded_on_behalf=bool(recorded_by), evidence=evidence)
    outcome = _outcome(ballot, votes_on(session, ballot))
    if outcome is not None:
        close_ballot(session, config, case, ballot, outcome, now)
        return VoteResult("counted", ballot_id, replaced, outcome)
    queue_view(session, config, case, ballot, now)
    return VoteResult("counted", ballot_id, replaced)


def refuse_vote(
    session: Session,
    config: Config,
    user_id: str,
    now: datetime,
    *,
    reason: str,
    delivery_key: str,
    ballot_id: int | None = None,
    team_id: str | None = None,
    told: str | None = None,
) -> None:
    """Audit a click by someone who may not vote and tell them so (or told), politely, once."""
    partnership = config.settings.partnership.key
    if receipt_seen(session, delivery_key):
        return
    remember_receipt(session, partnership, delivery_key, now, None)
    case_id = session.get_one(Ballot, ballot_id).case_id if ballot_id else None
    audit.record(session, partnership, f"slack:{user_id}", "vote_refused", now, case_id,
                 ballot_id=ballot_id, team_id=team_id, reason=reason)
    enqueue_chat(
        session, partnership=partnership, key=f"refusal:{delivery_key}", purpose="vote_refused",
        payload={"operation": "ephemeral", "user_id": user_id, "text": told or (
            "Sorry, only the nominated leads and deputies of the three statutory partners can"
            " vote on this ballot, so your choice has not been counted. If you should be able"
            " to vote, please ask the partnership's business manager."
        )},
        now=now, recipient=user_id, case_id=case_id,
    )


def _option(kind: str, choice: str) -> BallotOption:
    for option in OPTIONS[kind]:
        if option.value == choice:
            return option
    choices = ", ".join(option.value for option in OPTIONS[kind])
    raise VoteRefused(f"{choice!r} is not a choice on a {kind} ballot (choose {choices})")


def _outcome(ballot: Ballot, votes: list[Vote]) -> str | None:
    tally = Counter(vote.choice for vote in votes)
    for option in OPTIONS[ballot.kind]:
        if tally[option.value] >= ballot.needed:
            return option.value
    not_voted = len(PARTNER_LABELS) - len(votes)
    if all(tally[option.value] + not_voted < ballot.needed for option in OPTIONS[ballot.kind]):
        # Sign-off can no longer be approved: the partners who asked for changes decide it.
        if ballot.kind == BallotKind.SIGNOFF and tally["request_changes"]:
            return "request_changes"
        return "no_quorum"
    return None

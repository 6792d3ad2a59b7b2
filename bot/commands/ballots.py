"""Partner ballots: start a vote, cast one (by chat, email, phone or the web), reopen a ballot."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NoReturn

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.lifecycle import reopen_ballot as ask_again
from bot.ballots.members import Member, member_by_name
from bot.ballots.views import OPTIONS
from bot.ballots.voting import cast_vote as count_vote
from bot.ballots.voting import refuse_vote
from bot.commands.base import (
    MANAGERS,
    CommandError,
    Context,
    Interface,
    NotAllowed,
    Role,
    case_named,
    domain_errors,
    refuse,
    require,
)
from bot.kernel.receipts import receipt_seen, remember_receipt
from bot.store.models import Ballot, Case
from bot.store.statuses import BallotStatus

# What someone who may not vote is told, in chat or elsewhere.
MEMBERS_ONLY = ("Sorry, only the nominated leads and deputies of the three statutory partners can"
                " vote on this ballot, so your choice has not been counted.")
MANAGER_ONLY = "Sorry, only the partnership's business manager can do that with a ballot."
NO_SUCH_BALLOT = ("Sorry, that ballot could not be found, so your choice has not been counted;"
                  " please vote on the ballot's latest message in the channel.")


class VoteSource(StrEnum):
    """How a vote reached the bot."""

    SLACK = "slack"
    EMAIL = "email"
    # Given another way (by phone) and recorded by the business manager on the member's behalf.
    RECORDED = "recorded"
    WEB = "web"


@dataclass(frozen=True)
class OpenBallotOnCase:
    """The open ballot of a kind (decision or signoff) on a case."""

    case_reference: str
    kind: str


@dataclass(frozen=True)
class OnBehalf:
    """The member a vote is recorded for, and how they gave it."""

    partner_key: str
    # The member's name or email address.
    member: str
    evidence: str


@dataclass(frozen=True)
class BeginVote:
    """A member chose an option on a ballot; the rationale is asked for next."""

    ballot_id: int | None
    choice: str
    delivery_key: str
    # The chat workspace the choice came from, kept with a refusal.
    workspace: str | None = None


@dataclass(frozen=True)
class VoteStart:
    """What follows a choice: "ask" for the rationale, a "duplicate" click, or "closed"."""

    status: str
    ballot_id: int
    case_reference: str = ""
    choice: str = ""
    label: str = ""
    needs_rationale: bool = True


@dataclass(frozen=True)
class CastVote:
    """A vote on a ballot; the source says how it came, on_behalf whom it is recorded for."""

    ballot: int | OpenBallotOnCase
    choice: str
    rationale: str
    source: VoteSource
    # The delivery's own key (a repeat counts once); None derives one from the vote itself.
    delivery_key: str | None = None
    on_behalf: OnBehalf | None = None
    workspace: str | None = None


@dataclass(frozen=True)
class VoteCast:
    """What happened to a vote: "counted", a "duplicate" delivery, or "closed" (too late)."""

    status: str
    ballot_id: int
    partner_key: str
    member_name: str
    choice: str
    replaced: bool = False
    # The outcome the ballot closed with, when this vote closed it or it had closed.
    closed_with: str | None = None


@dataclass(frozen=True)
class ReopenBallot:
    """Ask the partners again on a case's ballot of a kind that closed unanswered."""

    case_reference: str
    kind: str


@dataclass(frozen=True)
class BallotReopened:
    """The new ballot and when it closes."""

    case_reference: str
    kind: str
    ballot_id: int
    closes_at: datetime


def begin_vote(context: Context, request: BeginVote) -> VoteStart:
    """Check a member may vote on the ballot and say what to ask them next."""
    session = context.session
    ballot = _stored_ballot(context, request.ballot_id)
    if context.actor.member is None:
        _refuse_voter(context, _refusal_reason(context), request.delivery_key,
                      ballot.id if ballot else None, request.workspace)
    # A member's click on a ballot that is not there (a stale or altered button) is refused.
    if ballot is None:
        _refuse_voter(context, "no ballot", request.delivery_key, None, request.workspace,
                      NO_SUCH_BALLOT)
    if receipt_seen(session, request.delivery_key):
        return VoteStart("duplicate", ballot.id or 0)
    remember_receipt(session, context.config.settings.partnership.key,
                             request.delivery_key, context.now, None)
    option = next((option for option in OPTIONS[ballot.kind]
                   if option.value == request.choice), None)
    if ballot.status != BallotStatus.OPEN or option is None:
        return VoteStart("closed", ballot.id or 0)
    case = session.get_one(Case, ballot.case_id)
    return VoteStart("ask", ballot.id or 0, case.reference, option.value, option.label,
                     option.needs_rationale)


def cast_vote(context: Context, request: CastVote) -> VoteCast:
    """Count a vote for the member's partner organisation; a repeated delivery counts once."""
    recorded_by, evidence = None, None
    if request.on_behalf is not None:
        require(context, MANAGERS, "vote", MANAGER_ONLY)
        if not request.on_behalf.evidence.strip():
            raise CommandError("say how the vote was given")
        ballot_id = _ballot_id(context, request.ballot)
        with domain_errors():
            voter = member_by_name(context.config, request.on_behalf.partner_key,
                                           request.on_behalf.member)
        recorded_by, evidence = context.actor.who, request.on_behalf.evidence
    elif context.actor.member is not None:
        voter = context.actor.member
        ballot_id = _ballot_id(context, request.ballot)
    else:
        named = request.ballot if isinstance(request.ballot, int) else None
        _refuse_voter(context, _refusal_reason(context), request.delivery_key or "", named,
                      request.workspace)
    delivery_key = request.delivery_key or _recorded_key(context, ballot_id, voter, request)
    with domain_errors():
        result = count_vote(
            context.session, context.config, ballot_id, voter, request.choice,
            request.rationale, context.now, source=request.source, delivery_key=delivery_key,
            recorded_by=recorded_by, evidence=evidence,
        )
    return VoteCast(result.status, result.ballot_id, voter.partner_key, voter.name,
                    request.choice, result.replaced, result.closed_with)


def reopen_ballot(context: Context, request: ReopenBallot) -> BallotReopened:
    """Open a new ballot after the last one closed without quorum or for more information."""
    require(context, MANAGERS, "reopen-ballot", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        opened = ask_again(context.session, context.config, case, request.kind,
                                       context.now, context.actor.who)
    return BallotReopened(case.reference, request.kind, opened.id or 0, opened.closes_at)


def _stored_ballot(context: Context, ballot_id: int | None) -> Ballot | None:
    # Row ids are positive 64-bit integers; a larger one would overflow the database's type.
    if ballot_id is None or not 0 < ballot_id < 2**63:
        return None
    return context.session.get(Ballot, ballot_id)


def _ballot_id(context: Context, ballot: int | OpenBallotOnCase) -> int:
    if isinstance(ballot, int):
        if _stored_ballot(context, ballot) is None:
            raise CommandError(NO_SUCH_BALLOT)
        return ballot
    case = case_named(context, ballot.case_reference)
    found = ballot_for_case(context.session, case, ballot.kind)
    if found is None or found.status != BallotStatus.OPEN:
        raise CommandError(
            f"{case.reference} has no open {ballot.kind} ballot; if the last one closed without"
            f" an answer, `rrbot reopen-ballot {case.reference} --ballot {ballot.kind}` opens one")
    return found.id or 0


def _recorded_key(context: Context, ballot_id: int, voter: Member,
                  request: CastVote) -> str:
    # A vote recorded twice with the same words at the same instant counts once.
    evidence = request.on_behalf.evidence if request.on_behalf else ""
    digest = hashlib.sha256("|".join([
        str(ballot_id), voter.partner_key, voter.email, request.choice, request.rationale,
        evidence, context.now.isoformat(),
    ]).encode("utf-8")).hexdigest()
    return f"{context.actor.via}:{digest}"


def _refusal_reason(context: Context) -> str:
    return "another workspace" if context.actor.role is Role.OUTSIDER else "not a partner member"


def _refuse_voter(context: Context, reason: str, delivery_key: str, ballot_id: int | None,
                  workspace: str | None, told: str = MEMBERS_ONLY) -> NoReturn:
    # In chat the refusal is audited as a refused vote and told to the person alone, once.
    if context.actor.via is Interface.CHAT and context.actor.chat_user is not None:
        refuse_vote(context.session, context.config, context.actor.chat_user,
                            context.now, reason=reason, delivery_key=delivery_key,
                            ballot_id=ballot_id, team_id=workspace, told=told)
        raise NotAllowed(told)
    refuse(context, "vote", told)

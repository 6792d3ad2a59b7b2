"""Votes by a personal link in the decision or sign-off email: read the page, cast the vote."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from bot.ballots.links import link_receipt, read_vote_token
from bot.ballots.members import PARTNER_LABELS, Member, member_by_email
from bot.ballots.views import OPTIONS
from bot.commands.ballots import CastVote, VoteCast, VoteSource, cast_vote
from bot.commands.base import Actor, CommandError, Context, Interface, Role
from bot.kernel.chat import BallotOption
from bot.kernel.receipts import receipt_seen
from bot.kernel.signing import LinkRefused
from bot.store.models import Ballot, Case, Document
from bot.store.statuses import BallotKind, BallotStatus


@dataclass(frozen=True)
class VotePage:
    """What a vote link's page shows: the case reference and version, never the child."""

    token: str
    case_reference: str
    kind: str
    question: str
    report_sha256: str
    has_report: bool
    options: tuple[BallotOption, ...]
    member_name: str
    partner: str
    closes_at: datetime
    # "open" to vote, "used" after this link voted, "closed" or "superseded" too late.
    state: str
    outcome: str | None


@dataclass(frozen=True)
class VoteByLink:
    """A choice, with its rationale, made on a vote link's page."""

    token: str
    choice: str
    rationale: str


def read_vote_link(context: Context, token: str) -> VotePage:
    """Check a vote link and describe its ballot; a forged or expired link is refused."""
    member, ballot, case, sha256 = _link(context, token)
    if ballot.status != BallotStatus.OPEN:
        state = "superseded" if ballot.outcome == "superseded" else "closed"
    elif (ballot.report_sha256 or "") != sha256:
        state = "superseded"
    elif receipt_seen(context.session, link_receipt(ballot.id or 0, member.email, sha256)):
        state = "used"
    else:
        state = "open"
    question = ("Does this referral meet the criteria for a Rapid Review?"
                if ballot.kind == BallotKind.DECISION else
                "Do you approve this version of the report for submission to the National Panel?")
    return VotePage(token, case.reference, ballot.kind, question, sha256,
                    _report(context, case, sha256) is not None, OPTIONS[ballot.kind],
                    member.name, PARTNER_LABELS[member.partner_key], ballot.closes_at, state,
                    ballot.outcome)


def vote_by_link(context: Context, request: VoteByLink) -> VoteCast:
    """Count a vote from a vote link exactly as a Slack or email vote; each link counts once."""
    page = read_vote_link(context, request.token)
    if page.state == "used":
        raise CommandError("this link has been used: your organisation's vote was counted")
    if page.state == "superseded":
        raise CommandError("a newer version of the report is out for sign-off: use the link"
                           " in the newest email")
    if page.state == "closed":
        raise CommandError("this ballot has closed, so the vote was not counted")
    member, ballot, _case, sha256 = _link(context, request.token)
    voter = Context(context.session, context.config,
                    Actor(f"{member.name} (vote link)", Role.PARTNER_MEMBER, Interface.WEB,
                          member=member), context.now)
    cast = cast_vote(voter, CastVote(ballot.id or 0, request.choice, request.rationale,
                                     VoteSource.WEB,
                                     delivery_key=link_receipt(ballot.id or 0, member.email,
                                                               sha256)))
    if cast.status == "duplicate":
        raise CommandError("this link has been used: your organisation's vote was counted")
    return cast


def vote_link_report(context: Context, token: str) -> tuple[str, Path]:
    """Return the report version a sign-off link is about, to download."""
    _member, _ballot, case, sha256 = _link(context, token)
    document = _report(context, case, sha256)
    if document is None:
        raise CommandError("the business unit has circulated this report separately")
    return document.filename, Path(document.path)


def _link(context: Context, token: str) -> tuple[Member, Ballot, Case, str]:
    try:
        address, ballot_id, sha256 = read_vote_token(context.session, token, context.now)
    except LinkRefused as exc:
        raise CommandError(str(exc)) from None
    member = member_by_email(context.config, address)
    ballot = context.session.get(Ballot, ballot_id)
    if member is None or ballot is None:
        raise CommandError("this link is for someone who can no longer vote; ask the business"
                           " manager")
    return member, ballot, context.session.get_one(Case, ballot.case_id), sha256


def _report(context: Context, case: Case, sha256: str) -> Document | None:
    if not sha256:
        return None
    document = context.session.exec(select(Document).where(
        Document.case_id == case.id, Document.sha256 == sha256)).first()
    return document if document is not None and Path(document.path).is_file() else None

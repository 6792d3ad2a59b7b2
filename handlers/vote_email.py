"""A partner member's emailed vote: a verified reply to the referral copy or a sign-off request."""

from __future__ import annotations

import re
from email.message import EmailMessage

from sqlmodel import col, select

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.views import OPTIONS
from bot.commands.ballots import CastVote, VoteSource, cast_vote
from bot.commands.base import CommandError, Context
from bot.commands.people import email_actor
from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.mime import header, message_ids
from bot.mail.notify import notify
from bot.mail.senders import verified_sender
from bot.store.models import Ballot, Case, InboundMessage, OutboxMessage
from bot.store.statuses import BallotKind, BallotStatus, InboundStatus, VouchedAs

name = "vote_email"
order = 60
# A message the business manager releases with --as vote comes here.
vouched_as = VouchedAs.VOTE

KIND = "vote_email"
# Which ballot a reply to each of the bot's emails votes on.
BALLOT_OF_PURPOSE = {"referral_copy": BallotKind.DECISION,
                     "signoff_request": BallotKind.SIGNOFF}
# Where the quoted original starts in a reply: everything after it is not the member's text.
QUOTE_START = re.compile(
    r"^\s*(>|On .+wrote:\s*$|-{2,}\s*Original Message\s*-{2,}|From:\s|_{10,})", re.IGNORECASE
)
# A tag runs to the next "<" or ">", so a run of "<" is read in linear time.
TAG = re.compile(r"<[^<>]*>")


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Count a reply to a referral copy or sign-off request as the member's vote."""
    ballot = _ballot_replied_to(context, message)
    if ballot is None:
        return None
    check = verified_sender(context.config, message)
    # A vote the business manager released stands on their word that the sender sent it.
    if not check.ok and not row.vouched_by:
        return Outcome(InboundStatus.QUARANTINED, KIND, f"vote not counted: {check.reason}",
                       ballot.case_id)
    voter = email_actor(context.config, check.address)
    # Only a partner's lead or deputy votes by email; anyone else's reply is not read as one.
    if voter.member is None:
        return Outcome(InboundStatus.QUARANTINED, KIND,
                       f"vote not counted: {check.address} is not a partner lead or deputy",
                       ballot.case_id)
    choice, rationale = parse_vote(_text(message), ballot.kind)
    if choice is None:
        problem = f"the first line names none of {_choices(ballot.kind, ' or ')}"
        _tell_how_to_vote(context, row, ballot, check.address, problem)
        return Outcome(InboundStatus.QUARANTINED, KIND,
                       f"a reply about the {ballot.kind} ballot whose {problem}",
                       ballot.case_id)
    request = CastVote(ballot.id or 0, choice, rationale, VoteSource.EMAIL,
                       f"email:{row.message_id or f'inbound-{row.id}'}")
    try:
        result = cast_vote(Context(context.session, context.config, voter, context.now), request)
    except CommandError as exc:
        _tell_how_to_vote(context, row, ballot, check.address, str(exc))
        return Outcome(InboundStatus.QUARANTINED, KIND, f"vote not counted: {exc}", ballot.case_id)
    if result.status == "closed":
        return Outcome(InboundStatus.QUARANTINED, KIND,
                       f"vote not counted: the {ballot.kind} ballot had already closed",
                       ballot.case_id)
    replaced = " (replacing its earlier vote)" if result.replaced else ""
    return Outcome(InboundStatus.PROCESSED, KIND, f"{result.partner_key} {choice}{replaced}",
                   ballot.case_id)


def parse_vote(text: str, kind: str = BallotKind.SIGNOFF) -> tuple[str | None, str]:
    """Find the choice on the first line the member wrote, and the rationale after it."""
    lines: list[str] = []
    for line in text.splitlines():
        if QUOTE_START.match(line):
            break
        lines.append(line)
    written = [line for line in lines if line.strip()]
    if not written:
        return None, ""
    found = _choice_line(kind).match(written[0])
    if found is None:
        return None, ""
    said = " ".join(found.group(1).replace("_", " ").split()).lower()
    choice = next(option.value for option in OPTIONS[kind]
                  if said in (option.label.lower(), option.value.replace("_", " ")))
    rationale = "\n".join([found.group(2), *written[1:]]).strip()
    return choice, rationale


def _choice_line(kind: str) -> re.Pattern[str]:
    # Each choice in the ballot's words ("No further action") or as its key (no_further_action),
    # the longest first, then the rationale on the rest of the line.
    spellings = {spelling for option in OPTIONS[kind]
                 for spelling in (option.label, option.value.replace("_", " "))}
    words = [r"[\s_]+".join(re.escape(word) for word in spelling.split())
             for spelling in sorted(spellings, key=len, reverse=True)]
    # The leading spaces and stars are one class, so a line of them is read in linear time.
    return re.compile(rf"^[\s*]*({'|'.join(words)})\b\**[\s:.,;\-]*(.*)$", re.IGNORECASE)


def _choices(kind: str, last: str) -> str:
    labels = [f'"{option.label}"' for option in OPTIONS[kind]]
    return ", ".join(labels[:-1]) + last + labels[-1]


def _tell_how_to_vote(context: InboundContext, row: InboundMessage, ballot: Ballot,
                      address: str, problem: str) -> None:
    # The member is told how to write the vote once per ballot, so the next one counts, and a
    # responder that answers everything (with no header saying so) gets one note, not a loop.
    case = context.session.get_one(Case, ballot.case_id)
    notify(context.session, context.config, "vote_unclear", to=[address],
           key=f"{case.reference}:ballot:{ballot.id}:vote_unclear:{address.lower()}",
           now=context.now, case_id=case.id,
           in_reply_to=row.message_id, auto_submitted="auto-replied", values=dict(
               case_reference=case.reference, kind=ballot.kind, problem=problem,
               choices=[option.label for option in OPTIONS[ballot.kind]],
               open=ballot.status == BallotStatus.OPEN, closes_at=ballot.closes_at))


def _ballot_replied_to(context: InboundContext, message: EmailMessage) -> Ballot | None:
    referenced = message_ids(f"{header(message, 'In-Reply-To')} {header(message, 'References')}")
    if not referenced:
        return None
    sent = context.session.exec(
        select(OutboxMessage).where(
            col(OutboxMessage.message_id).in_(referenced),
            col(OutboxMessage.purpose).in_(sorted(BALLOT_OF_PURPOSE)),
        ).order_by(col(OutboxMessage.id).desc())
    ).first()
    if sent is None:
        return None
    if sent.purpose == "referral_copy":
        # The referral copy asks for the decision: the case's newest decision ballot counts it.
        case = context.session.get(Case, sent.case_id) if sent.case_id else None
        return ballot_for_case(context.session, case, BallotKind.DECISION) if case else None
    # A sign-off request's key is "<case>:ballot:<id>:signoff_request:<address>".
    parts = sent.idempotency_key.split(":")
    if len(parts) < 3 or not parts[2].isdigit():
        return None
    return context.session.get(Ballot, int(parts[2]))


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, ValueError):
        return ""
    if not isinstance(content, str):
        return ""
    if body.get_content_subtype() == "html":
        content = TAG.sub("\n", content)
    return content

"""A partner member's emailed sign-off vote: a verified reply saying APPROVE or REQUEST CHANGES."""

from __future__ import annotations

import re
from email.message import EmailMessage

from sqlmodel import col, select

from bot.commands.ballots import CastVote, VoteSource, cast_vote
from bot.commands.base import CommandError, Context
from bot.commands.people import email_actor
from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.mime import header, message_ids
from bot.mail.senders import verified_sender
from bot.store.models import Ballot, InboundMessage, OutboxMessage
from bot.store.statuses import InboundStatus

name = "vote_email"
order = 60

KIND = "vote_email"
VOTE_LINE = re.compile(r"^[\s*]*(APPROVE|REQUEST\s+CHANGES)\b\**[\s:.,;\-]*(.*)$",
                       re.IGNORECASE)
# Where the quoted original starts in a reply: everything after it is not the member's text.
QUOTE_START = re.compile(
    r"^\s*(>|On .+wrote:\s*$|-{2,}\s*Original Message\s*-{2,}|From:\s|_{10,})", re.IGNORECASE
)
# A tag runs to the next "<" or ">", so a run of "<" is read in linear time.
TAG = re.compile(r"<[^<>]*>")


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Count a reply to a sign-off request as the member's vote; None if it is not one."""
    ballot = _ballot_replied_to(context, message)
    if ballot is None:
        return None
    check = verified_sender(context.config, message)
    if not check.ok:
        return Outcome(InboundStatus.QUARANTINED, KIND, f"vote not counted: {check.reason}",
                       ballot.case_id)
    voter = email_actor(context.config, check.address)
    # Only a partner's lead or deputy votes by email; anyone else's reply is not read as one.
    if voter.member is None:
        return Outcome(InboundStatus.QUARANTINED, KIND,
                       f"vote not counted: {check.address} is not a partner lead or deputy",
                       ballot.case_id)
    choice, rationale = parse_vote(_text(message))
    if choice is None:
        return Outcome(InboundStatus.QUARANTINED, KIND,
                       "a reply to a sign-off request with no APPROVE or REQUEST CHANGES line",
                       ballot.case_id)
    request = CastVote(ballot.id or 0, choice, rationale, VoteSource.EMAIL,
                       f"email:{row.message_id or f'inbound-{row.id}'}")
    try:
        result = cast_vote(Context(context.session, context.config, voter, context.now), request)
    except CommandError as exc:
        return Outcome(InboundStatus.QUARANTINED, KIND, f"vote not counted: {exc}", ballot.case_id)
    if result.status == "closed":
        return Outcome(InboundStatus.QUARANTINED, KIND,
                       "vote not counted: the sign-off ballot had already closed", ballot.case_id)
    return Outcome(InboundStatus.PROCESSED, KIND, f"{result.partner_key} {choice}",
                   ballot.case_id)


def parse_vote(text: str) -> tuple[str | None, str]:
    """Find the vote on the first line the member wrote, and the rationale after it."""
    lines: list[str] = []
    for line in text.splitlines():
        if QUOTE_START.match(line):
            break
        lines.append(line)
    written = [line for line in lines if line.strip()]
    if not written:
        return None, ""
    found = VOTE_LINE.match(written[0])
    if found is None:
        return None, ""
    choice = "approve" if found.group(1).upper() == "APPROVE" else "request_changes"
    rationale = "\n".join([found.group(2), *written[1:]]).strip()
    return choice, rationale


def _ballot_replied_to(context: InboundContext, message: EmailMessage) -> Ballot | None:
    referenced = message_ids(f"{header(message, 'In-Reply-To')} {header(message, 'References')}")
    if not referenced:
        return None
    request = context.session.exec(
        select(OutboxMessage).where(
            col(OutboxMessage.message_id).in_(referenced),
            OutboxMessage.purpose == "signoff_request",
        ).order_by(col(OutboxMessage.id).desc())
    ).first()
    if request is None:
        return None
    # The request's key is "<case>:ballot:<id>:signoff_request:<address>".
    parts = request.idempotency_key.split(":")
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

"""Bounces (DSNs from Exchange, Postfix, Gmail): which of our messages failed, and to whom."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage, Message

from sqlmodel import col, select

from bot.agencies.directory import agency_for_sender
from bot.agencies.requests import note_contact_problem
from bot.engine.pipeline import InboundContext, Outcome
from bot.kernel import audit
from bot.kernel.headers import is_keyed
from bot.kernel.installation import installation_secret
from bot.mail.automatic import is_bounce
from bot.mail.mime import address_in, body_text, message_ids
from bot.mail.notify import notify
from bot.mail.senders import verified_sender
from bot.store.models import Case, InboundMessage, OutboxMessage
from bot.store.statuses import InboundStatus

name = "bounce"
# Bounces are looked at before auto-replies: a DSN often also says Auto-Submitted.
order = 30

UNTRUSTED = ("an unauthenticated delivery report that quotes only unkeyed Message-IDs of ours; "
             "nothing was changed")


@dataclass(frozen=True)
class Bounce:
    """What a bounce says: the Message-IDs it refers to, who failed, who was only delayed."""

    referenced: list[str]
    failed: list[str]
    delayed: bool
    diagnostic: str


def read_bounce(message: EmailMessage) -> Bounce:
    """Read the failed recipients and the original message's ids out of a bounce."""
    referenced: list[str] = []
    failed: list[str] = []
    delayed, diagnostic = False, ""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            for block in _status_blocks(part):
                action = str(block.get("Action", "")).strip().lower()
                recipient = _recipient(block)
                if action == "failed" and recipient:
                    failed.append(recipient)
                    diagnostic = diagnostic or " ".join(
                        str(block.get("Diagnostic-Code", "")).split())
                elif action == "delayed":
                    delayed = True
        elif content_type in ("message/rfc822", "text/rfc822-headers"):
            referenced += _original_ids(part)
    if not referenced:
        # Some servers quote the original only as text; our ids are still in it.
        referenced = message_ids(body_text(message))
    return Bounce(list(dict.fromkeys(referenced)), list(dict.fromkeys(failed)), delayed,
                  diagnostic[:300])


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Note which of our messages bounced, tell the business manager, chase someone else."""
    if not is_bounce(message):
        return None
    bounce = read_bounce(message)
    session = context.session
    ours = session.exec(select(OutboxMessage).where(
        col(OutboxMessage.message_id).in_(bounce.referenced))).all() if bounce.referenced else []
    if not ours:
        return Outcome(InboundStatus.PROCESSED, "bounce",
                       "a bounce of a message the bot did not send")
    if not verified_sender(context.config, message).ok:
        # Anyone can write a DSN; one the boundary did not authenticate is believed only when
        # it quotes a keyed Message-ID, which only a receiver of that message can know.
        secret = installation_secret(session)
        ours = [row for row in ours if is_keyed(row.message_id, secret)]
        if not ours:
            return Outcome(InboundStatus.QUARANTINED, "bounce", UNTRUSTED)
    sent = ours[0]
    recipients = [address.strip().lower() for address in sent.recipients.split(",")]
    failed = [address for address in bounce.failed if address in recipients]
    if not failed and not bounce.failed and not bounce.delayed:
        # A bounce without a machine-readable report names the recipient in its text.
        text = body_text(message).lower()
        failed = [address for address in recipients if address in text] or (
            recipients if len(recipients) == 1 else [])
    if not failed:
        return Outcome(InboundStatus.PROCESSED, "bounce",
                       "delivery delayed or no recipient of ours failed", case_id=sent.case_id)
    for recipient in failed:
        _bounced(context, row, sent, recipient, bounce.diagnostic)
    return Outcome(InboundStatus.PROCESSED, "bounce",
                   f"{len(failed)} recipient(s) of {sent.purpose} failed", case_id=sent.case_id)


def _bounced(
    context: InboundContext, row: InboundMessage, sent: OutboxMessage, recipient: str,
    diagnostic: str,
) -> None:
    session, config = context.session, context.config
    settings = config.settings
    requests = note_contact_problem(session, config, recipient, "bounced", row.received_at)
    audit.record(session, sent.partnership, "bot", "bounced", context.now, sent.case_id,
                 outbox_id=sent.id, purpose=sent.purpose, inbound_id=row.id)
    manager = settings.business_manager
    # The business manager's own address bouncing, or an alert bouncing, is not re-alerted.
    if sent.purpose == "bounce_alert" or recipient == manager.email.lower():
        return
    case = session.get(Case, sent.case_id) if sent.case_id else None
    agency = agency_for_sender(session, config, recipient)
    stand_in = agency and (agency.alternate or agency.escalation)
    notify(session, config, "bounce_alert", to=[manager.email], key=f"bounce:{sent.id}:{recipient}",
           now=context.now, case_id=sent.case_id, values=dict(
               recipient_names=manager.name, case_reference=case.reference if case else "",
               recipient=recipient, diagnostic=diagnostic, what=sent.purpose.replace("_", " "),
               alternate=stand_in.email if (stand_in and requests) else ""))


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    return []


def _recipient(block: Message) -> str:
    value = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
    return address_in(value.partition(";")[2] or value)


def _original_ids(part: Message) -> list[str]:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    if isinstance(inner, Message):
        return message_ids(inner.get("Message-ID"))
    return message_ids(" ".join(re.findall(r"(?im)^message-id:\s*(\S+)", str(payload))))

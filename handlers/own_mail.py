"""Recognise our own mail coming back (a copy, a loop) so that it is never answered."""

from __future__ import annotations

from email.message import EmailMessage

from sqlmodel import select

from bot.engine.pipeline import InboundContext, Outcome
from bot.kernel.headers import is_keyed
from bot.kernel.installation import installation_secret
from bot.kernel.mailbox import OUTBOX_KEY_HEADER
from bot.mail.mime import address_domain, header
from bot.store.models import InboundMessage, OutboxMessage
from bot.store.statuses import InboundStatus

name = "own_mail"
order = 20


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Take mail carrying one of our Message-IDs, or the outbox key of a message we queued.

    A From of our own address alone is not enough, as anyone can write it: such mail goes on
    to the sender check, which quarantines it for the business manager to see.
    """
    domain = address_domain(context.config.settings.mailbox.address)
    message_id = header(message, "Message-ID").strip()
    # Only a keyed id is ours: an unkeyed <rr.DIGEST@domain> can be worked out by anyone.
    if message_id.lower().endswith(f"@{domain}>") and is_keyed(
            message_id, installation_secret(context.session)):
        return Outcome(InboundStatus.PROCESSED, "own_mail", "carries a Message-ID the bot made")
    key = header(message, OUTBOX_KEY_HEADER).strip()
    # A forwarder may give our message a new Message-ID but keeps our key header; the key
    # must be one we queued, so that a made-up header cannot hide mail.
    if key and context.session.exec(select(OutboxMessage.id).where(
            OutboxMessage.idempotency_key == key)).first() is not None:
        return Outcome(InboundStatus.PROCESSED, "own_mail",
                       f"carries our {OUTBOX_KEY_HEADER} header")
    return None

"""Recognise our own mail coming back (a copy, a loop) so that it is never answered."""

from __future__ import annotations

import re
from email.message import EmailMessage

from sqlmodel import select

from bot.engine.pipeline import InboundContext, Outcome
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
    ours = context.config.settings.mailbox.address.lower()
    pattern = rf"<rr\.[0-9a-f]{{32}}@{re.escape(address_domain(ours))}>"
    if re.fullmatch(pattern, header(message, "Message-ID").strip(), re.IGNORECASE):
        return Outcome(InboundStatus.PROCESSED, "own_mail", "carries a Message-ID the bot made")
    key = header(message, OUTBOX_KEY_HEADER).strip()
    # A forwarder may give our message a new Message-ID but keeps our key header; the key
    # must be one we queued, so that a made-up header cannot hide mail.
    if key and context.session.exec(select(OutboxMessage.id).where(
            OutboxMessage.idempotency_key == key)).first() is not None:
        return Outcome(InboundStatus.PROCESSED, "own_mail",
                       f"carries our {OUTBOX_KEY_HEADER} header")
    return None

"""Recognise our own mail coming back (a copy, a loop) so that it is never answered."""

from __future__ import annotations

import re
from email.message import EmailMessage

from bot.mailbox import OUTBOX_KEY_HEADER
from bot.mime import address_domain, header, sender_address
from bot.models import InboundMessage
from bot.pipeline import InboundContext, Outcome

name = "own_mail"
order = 20


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Take mail from our own address, with our outbox key or with one of our Message-IDs."""
    ours = context.config.settings.mailbox.address.lower()
    if sender_address(message) == ours:
        return Outcome("processed", "own_mail", "sent from the partnership mailbox itself")
    if OUTBOX_KEY_HEADER in message:
        return Outcome("processed", "own_mail", f"carries our {OUTBOX_KEY_HEADER} header")
    pattern = rf"<rr\.[0-9a-f]{{32}}@{re.escape(address_domain(ours))}>"
    if re.fullmatch(pattern, header(message, "Message-ID").strip(), re.IGNORECASE):
        return Outcome("processed", "own_mail", "carries a Message-ID the bot made")
    return None

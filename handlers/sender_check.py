"""Act only on authenticated mail from configured people; quarantine the rest with the reason."""

from __future__ import annotations

from email.message import EmailMessage

from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.senders import verified_sender
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus

name = "sender_check"
order = 50


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Quarantine a message whose sender is unknown or not authenticated by our boundary."""
    check = verified_sender(context.config, message)
    if check.ok:
        return None
    return Outcome(InboundStatus.QUARANTINED, "unverified_sender", check.reason)

"""Act only on authenticated mail from configured people; quarantine the rest with the reason."""

from __future__ import annotations

from email.message import EmailMessage

from bot.cases.intake import names_referral
from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.automatic import auto_reply_kind, is_bounce
from bot.mail.mime import attachments
from bot.mail.senders import verified_sender
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus

name = "sender_check"
# Before every handler that changes anything: bounces (30), auto-replies (40) and the rest.
order = 25


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Quarantine a message whose sender is unknown or not authenticated by our boundary.

    A delivery report or an automatic reply goes on to its own handler, which files it with
    the reason and changes nothing unless it quotes a keyed Message-ID of ours.
    """
    check = verified_sender(context.config, message)
    if check.ok:
        return None
    if is_bounce(message):
        return None
    # Automatic mail that names itself a referral is a referral: unauthenticated, it waits.
    if auto_reply_kind(message) is not None and not names_referral(
            message, attachments(message)):
        return None
    return Outcome(InboundStatus.QUARANTINED, "unverified_sender", check.reason)

"""Act only on authenticated mail from configured people; quarantine the rest with the reason."""

from __future__ import annotations

from email.message import EmailMessage

from bot.agencies.directory import agency_for_sender
from bot.cases.intake import names_referral
from bot.cases.quarantined_referrals import alert_if_referral
from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.automatic import auto_reply_kind, is_bounce
from bot.mail.mime import attachments
from bot.mail.senders import verified_sender
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus

name = "sender_check"
# Before every handler that changes anything: bounces (30), auto-replies (40) and the rest.
order = 25
# It sees every message, a released one too (bot/engine/pipeline.takes_vouched).
screens = True


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Quarantine a message whose sender is unknown or not authenticated by our boundary.

    A message the business manager released passes: they vouched for it. A delivery report or
    an automatic reply goes on to its own handler, which files it with the reason and changes
    nothing unless it quotes a keyed Message-ID of ours. A referral held here is told to the
    business manager at once, as its acknowledgement cannot wait for the digest.
    """
    if row.vouched_by:
        return None
    check = verified_sender(context.config, message,
                            lambda address: one_off_sender(context, address))
    if check.ok:
        return None
    if is_bounce(message):
        return None
    # Automatic mail that names itself a referral is a referral: unauthenticated, it waits.
    if auto_reply_kind(message) is not None and not names_referral(
            message, attachments(message)):
        return None
    alert_if_referral(context.session, context.config, row, message, check.reason, context.now)
    return Outcome(InboundStatus.QUARANTINED, "unverified_sender", check.reason)


def one_off_sender(context: InboundContext, address: str) -> str | None:
    """Describe a sender who is one of a one-off agency's people, or None."""
    found = agency_for_sender(context.session, context.config, address)
    return f"the agency {found.key}" if found is not None else None

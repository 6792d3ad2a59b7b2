"""Act only on authenticated mail from configured people; quarantine the rest with the reason."""

from __future__ import annotations

from email.message import EmailMessage

from bot.agencies.directory import agency_for_sender
from bot.cases.quarantined_referrals import alert_if_referral
from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.senders import verified_sender
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus

name = "sender_check"
order = 50
# It sees every message, a released one too (bot/engine/pipeline.takes_vouched).
screens = True


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Quarantine a message whose sender is unknown or not authenticated by our boundary.

    A message the business manager released passes: they vouched for it. A referral held here
    is told to the business manager at once, as its acknowledgement cannot wait for the digest.
    """
    if row.vouched_by:
        return None
    check = verified_sender(context.config, message,
                            lambda address: one_off_sender(context, address))
    if check.ok:
        return None
    alert_if_referral(context.session, context.config, row, message, check.reason, context.now)
    return Outcome(InboundStatus.QUARANTINED, "unverified_sender", check.reason)


def one_off_sender(context: InboundContext, address: str) -> str | None:
    """Describe a sender who is one of a one-off agency's people, or None."""
    found = agency_for_sender(context.session, context.config, address)
    return f"the agency {found.key}" if found is not None else None

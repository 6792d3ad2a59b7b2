"""A referral the bot may not act on (an unknown or unauthenticated referrer): tell the BM now."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from sqlmodel import Session

from bot.cases.intake import looks_like_referral
from bot.config import Config
from bot.mail.mime import attachments
from bot.mail.notify import notify
from bot.process.timeline import plan
from bot.store.models import InboundMessage

# The milestone that dates the referrer's acknowledgement (one working day in every preset).
ACKNOWLEDGE = "acknowledge"


def alert_if_referral(
    session: Session, config: Config, row: InboundMessage, message: EmailMessage, reason: str,
    now: datetime,
) -> bool:
    """Email the business manager at once about a quarantined referral; say whether it was one.

    The acknowledgement is due within a working day, so this cannot wait for the digest. The
    alert names the sender, the reason and the command that releases it, never the child.
    """
    files = attachments(message)
    if not looks_like_referral(message, files):
        return False
    settings = config.settings
    manager = settings.business_manager
    milestones = {milestone.key: milestone
                  for milestone in plan(config.preset, config.calendar, row.received_at).milestones}
    acknowledge = milestones.get(ACKNOWLEDGE)
    notify(session, config, "quarantined_referral", to=[manager.email],
           key=f"inbound:{row.id}:quarantined_referral", now=now, values=dict(
               recipient_name=manager.name, inbound_id=row.id,
               sender=row.sender or "an address that could not be read",
               received_at=row.received_at, reason=reason, attachment_count=len(files),
               acknowledge_by=acknowledge.due if acknowledge else None,
               quarantine_folder=settings.mailbox.quarantine_folder))
    return True

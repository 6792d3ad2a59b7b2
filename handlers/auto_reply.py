"""Auto-replies, out-of-office notices, helpdesk receipts and list mail: noted, never answered."""

from __future__ import annotations

from email.message import EmailMessage

from sqlmodel import col, select

from bot.agencies.directory import agency_for_sender
from bot.agencies.requests import note_contact_problem
from bot.cases.correspondence import case_references, replied_to
from bot.cases.intake import names_referral
from bot.engine.pipeline import InboundContext, Outcome
from bot.kernel.headers import is_keyed
from bot.kernel.installation import installation_secret
from bot.mail.automatic import auto_reply_kind
from bot.mail.mime import attachments, header, sender_address, subject
from bot.mail.senders import verified_sender
from bot.store.models import InboundMessage, OutboxMessage
from bot.store.statuses import InboundStatus

name = "auto_reply"
order = 40


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Take an automatic message as noise; an agency contact who is away is noted."""
    found = auto_reply_kind(message)
    if found is None:
        return None
    kind, reason = found
    verified = verified_sender(context.config, message).ok
    if verified and _authenticated_referral(context, message, kind):
        # An online referral form sends with list or bulk headers; from an authenticated
        # sender it is a referral whatever it carries (handlers/referral.py takes it).
        return None
    if kind == "out_of_office":
        return _note_absence(context, row, message, verified) or Outcome(
            InboundStatus.PROCESSED, kind, reason)
    if not verified:
        reason += "; from a sender the boundary did not authenticate"
    return Outcome(InboundStatus.PROCESSED, kind, reason)


def _authenticated_referral(context: InboundContext, message: EmailMessage, kind: str) -> bool:
    """Say whether automatic mail is a new referral: not a reply, names no case, says referral."""
    if kind == "out_of_office" or header(message, "Auto-Submitted").lower().startswith(
            "auto-replied"):
        return False
    if replied_to(message) or case_references(context.config, subject(message)):
        return False
    return names_referral(message, attachments(message))


def _note_absence(
    context: InboundContext, row: InboundMessage, message: EmailMessage, verified: bool
) -> Outcome | None:
    config = context.config
    sender = sender_address(message)
    agency = agency_for_sender(context.session, config, sender) if sender else None
    # Only a named contact being away moves chasing, and only when the mail is really theirs:
    # authenticated, or quoting a keyed Message-ID of a message we sent them.
    if sender is None or agency is None or sender not in {
            person.email.lower() for person in agency.contacts}:
        return None
    # A one-off agency's people are known from the database, not the configuration.
    verified = verified or verified_sender(config, message, lambda _address: agency.key).ok
    if not verified and not _quotes_keyed_id(context, message, sender):
        return Outcome(InboundStatus.QUARANTINED, "out_of_office",
                       f"an out-of-office reply from {sender} that the boundary did not "
                       "authenticate and that quotes no keyed Message-ID of ours; nothing "
                       "was changed")
    note_contact_problem(context.session, config, sender, "out_of_office", row.received_at)
    return None


def _quotes_keyed_id(context: InboundContext, message: EmailMessage, sender: str) -> bool:
    secret = installation_secret(context.session)
    keyed = [found for found in replied_to(message) if is_keyed(found, secret)]
    if not keyed:
        return False
    sent = context.session.exec(select(OutboxMessage).where(
        col(OutboxMessage.message_id).in_(keyed))).all()
    return any(sender in row.recipients.lower() for row in sent)

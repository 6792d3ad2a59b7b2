"""The National Panel's replies: recorded on the case, and sent on to the business manager."""

from __future__ import annotations

from email.message import EmailMessage

from sqlmodel import col, select

from bot.cases.correspondence import find_case
from bot.engine.pipeline import InboundContext, Outcome
from bot.kernel import audit
from bot.kernel.outbox import Attachment
from bot.mail.mime import sender_address
from bot.mail.notify import notify
from bot.store.models import Case, InboundMessage, Milestone
from bot.store.statuses import InboundStatus, MilestoneStatus

name = "panel_reply"
order = 60


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Record the panel's reply on the case it names; flag one that names no case."""
    config = context.config
    sender = sender_address(message)
    if sender != config.settings.national_panel.email.lower():
        return None
    match = find_case(context.session, config, message, None)
    if match is None:
        return Outcome(InboundStatus.QUARANTINED, "panel_reply",
                       "a message from the National Panel that names no case")
    case = match.case
    first = case.panel_acknowledged_at is None
    if first:
        case.panel_acknowledged_at = row.received_at
        context.session.add(case)
    audit.record(context.session, case.partnership, "national_panel", "panel_reply",
                 context.now, case.id, inbound_id=row.id, matched_by=match.how)
    _tell_business_manager(context, case, row, first)
    return Outcome(InboundStatus.PROCESSED, "panel_reply", case_id=case.id)


def _tell_business_manager(
    context: InboundContext, case: Case, row: InboundMessage, first: bool
) -> None:
    """Send the business manager the Panel's reply, so that filing it never hides it."""
    settings = context.config.settings
    manager = settings.business_manager
    # The Panel's response is awaited once the report has gone, or while the preset's
    # expected-reply step is open, until the business manager records it.
    reply_step = context.session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == "national_panel_reply",
        col(Milestone.status).in_([MilestoneStatus.PENDING, MilestoneStatus.OVERDUE]))).first()
    awaiting = case.panel_response is None and (
        case.submitted_at is not None or reply_step is not None)
    notify(context.session, context.config, "panel_reply_notice", to=[manager.email],
           key=f"{case.reference}:panel_reply:{row.id}", now=context.now, case_id=case.id,
           attachments=[Attachment("national-panel-reply.eml", row.raw)], values=dict(
               recipient_name=manager.name, case_reference=case.reference,
               received_at=row.received_at, first=first, awaiting_decision=awaiting))

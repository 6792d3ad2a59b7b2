"""The National Panel's replies: its acknowledgement is recorded on the case."""

from __future__ import annotations

from email.message import EmailMessage

from bot import audit
from bot.mime import sender_address
from bot.models import InboundMessage
from bot.pipeline import InboundContext, Outcome
from bot.threading import find_case

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
        return Outcome("quarantined", "panel_reply",
                       "a message from the National Panel that names no case")
    case = match.case
    if case.panel_acknowledged_at is None:
        case.panel_acknowledged_at = row.received_at
        context.session.add(case)
    audit.record(context.session, case.partnership, "national_panel", "panel_reply",
                 context.now, case.id, inbound_id=row.id, matched_by=match.how)
    return Outcome("processed", "panel_reply", case_id=case.id)

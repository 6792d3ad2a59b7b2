"""Quarantine what is too big or too deeply built to handle safely: size, nesting, parts."""

from __future__ import annotations

from email.message import EmailMessage

from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.mime import raw_problem, structure_problem
from bot.store.models import InboundMessage

name = "limits"
order = 10


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Quarantine a message over the size, nesting or part limits, or with unreadable headers."""
    problem = raw_problem(row.raw, context.config.settings.mailbox.max_message_bytes)
    problem = problem or structure_problem(message)
    if problem is not None:
        return Outcome("quarantined", "limits", problem)
    return None

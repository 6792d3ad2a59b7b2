"""Quarantine what is too big or too deeply built to handle safely: size, nesting, parts."""

from __future__ import annotations

from email.message import EmailMessage

from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.mime import structure_problem
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus

name = "limits"
order = 10
# It sees every message, a released one too (bot/engine/pipeline.takes_vouched).
screens = True


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Quarantine a message over the nesting or part limits, or with unreadable headers."""
    # The size was checked before the message was parsed (bot/engine/pipeline.py).
    problem = structure_problem(message)
    if problem is not None:
        return Outcome(InboundStatus.QUARANTINED, "limits", problem)
    return None

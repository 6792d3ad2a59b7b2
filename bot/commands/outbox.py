"""Undelivered messages: list them, send one again, or give it up with the reason."""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.base import MANAGERS, Context, domain_errors, require
from bot.kernel import dead_letters
from bot.store.models import OutboxMessage

MANAGER_ONLY = "Sorry, only the partnership's business manager can resend or give up messages."


@dataclass(frozen=True)
class Resend:
    """Send an undelivered message again."""

    outbox_id: int


@dataclass(frozen=True)
class GiveUp:
    """Stop trying an undelivered message, and why (e.g. sent by hand)."""

    outbox_id: int
    reason: str


def undelivered(context: Context) -> list[OutboxMessage]:
    """List the messages the bot gave up sending, oldest first."""
    require(context, MANAGERS, "undelivered", MANAGER_ONLY)
    return dead_letters.dead_letters(context.session, context.config.settings.partnership.key)


def resend(context: Context, request: Resend) -> OutboxMessage:
    """Queue an undelivered message again at once."""
    require(context, MANAGERS, "resend", MANAGER_ONLY)
    with domain_errors():
        return dead_letters.resend(context.session, context.config.settings.partnership.key,
                                   request.outbox_id, context.now, context.actor.who)


def give_up(context: Context, request: GiveUp) -> OutboxMessage:
    """Stop flagging an undelivered message; the reason goes in the audit trail."""
    require(context, MANAGERS, "give-up", MANAGER_ONLY)
    with domain_errors():
        return dead_letters.give_up(context.session, context.config.settings.partnership.key,
                                    request.outbox_id, request.reason, context.now,
                                    context.actor.who)

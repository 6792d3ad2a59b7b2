"""What every command shares: who acts and through what, the one-line errors, authorisation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NoReturn

from sqlmodel import Session

from bot.ballots.lifecycle import BallotRefused
from bot.ballots.members import Member, VoteRefused
from bot.cases.lifecycle import CaseNotFound, find_case
from bot.config import Config
from bot.kernel import audit
from bot.report.submission import SubmissionRefused
from bot.store.models import Case


class Role(StrEnum):
    """What a person may do with the bot."""

    # The partnership's business manager: runs the process, changes requests, submits.
    BUSINESS_MANAGER = "business_manager"
    # A configured lead or deputy of a statutory partner: votes for their organisation.
    PARTNER_MEMBER = "partner_member"
    # Anyone else in the partnership's own workspace: may read where cases stand.
    READER = "reader"
    # Whoever runs `rrbot` on the server itself: may do what the business manager may.
    OPERATOR = "operator"
    # Someone from another chat workspace: may do nothing.
    OUTSIDER = "outsider"


class Interface(StrEnum):
    """Where a person asked for a command: it names refusals in the audit trail."""

    CLI = "cli"
    CHAT = "chat"
    EMAIL = "email"
    WEB = "web"


# Who may change agency requests, the report's submission, ballots and milestones.
MANAGERS = frozenset({Role.BUSINESS_MANAGER, Role.OPERATOR})
# Who may read where cases stand.
READERS = frozenset(set(Role) - {Role.OUTSIDER})


@dataclass(frozen=True)
class Actor:
    """Who asks for a command, as the audit trail names them, and what they may do."""

    # The audit trail's name for them: "cli", "slack:U123", "business manager Sam Example".
    who: str
    role: Role
    via: Interface
    # The partner lead or deputy they are, when they are one.
    member: Member | None = None
    # Their chat user id, so that a refusal in chat is told to them alone.
    chat_user: str | None = None


@dataclass(frozen=True)
class Context:
    """What every command runs with: the caller's transaction, the config, who and when."""

    session: Session
    config: Config
    actor: Actor
    now: datetime


class CommandError(Exception):
    """A command that cannot be done; str() is one line for the person who asked."""


class NotAllowed(CommandError):
    """The person may not do this; the refusal is already audited in the caller's transaction."""


# The domain's refusals, each of which already says in one line what is wrong.
DOMAIN_ERRORS = (CaseNotFound, VoteRefused, BallotRefused, SubmissionRefused, ValueError, KeyError)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a refusal of the domain into a CommandError carrying its one-line message."""
    try:
        yield
    except DOMAIN_ERRORS as exc:
        raise CommandError(str(exc.args[0]) if exc.args else type(exc).__name__) from None


def require(context: Context, allowed: frozenset[Role], command: str, message: str) -> None:
    """Refuse, audited, anyone whose role is not allowed to run command."""
    if context.actor.role not in allowed:
        refuse(context, command, message)


def refuse(context: Context, command: str, message: str) -> NoReturn:
    """Audit a refused command as its interface's refusal (e.g. chat_command_refused), raise."""
    actor = context.actor
    audit.record(context.session, context.config.settings.partnership.key, actor.who,
                 f"{actor.via}_command_refused", context.now, command=command)
    raise NotAllowed(message)


def case_named(context: Context, reference: str) -> Case:
    """Return the case with that reference, or raise a CommandError saying there is none."""
    with domain_errors():
        return find_case(context.session, reference)

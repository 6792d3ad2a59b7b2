"""The inbound pipeline: each handler module in handlers/ gets a message in turn."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.kernel.mailbox import EMAIL_POLICY
from bot.mail.mime import field_problem, raw_problem, sender_address
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus

if TYPE_CHECKING:
    from bot.config import Config


@dataclass(frozen=True)
class Outcome:
    """What a handler decided: processed (with its kind) or quarantined (with the reason)."""

    status: InboundStatus
    kind: str
    reason: str = ""
    case_id: int | None = None


@dataclass(frozen=True)
class InboundContext:
    """What a handler may use: the open transaction, the instant and the configuration."""

    session: Session
    now: datetime
    config: Config


log = logging.getLogger(__name__)
# The longest reason an inbound row keeps.
REASON_LENGTH = 500

NO_HANDLER = Outcome(InboundStatus.QUARANTINED, "unrecognised",
                     "no handler recognised this message")


@lru_cache(maxsize=1)
def handler_modules() -> tuple[ModuleType, ...]:
    """Every module in handlers/ with a process() function, in their declared order."""
    package = importlib.import_module("handlers")
    modules = [
        importlib.import_module(f"handlers.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]
    handlers = [module for module in modules if hasattr(module, "process")]
    return tuple(sorted(handlers, key=lambda module: (getattr(module, "order", 100),
                                                      module.__name__)))


def takes_vouched(module: ModuleType, vouched_as: str) -> bool:
    """Say whether a handler sees a message the business manager released as vouched_as.

    Screens (limits, the sender check) see every message; of the others only the handler
    declaring `vouched_as` equal to the release's kind does, so that --as steers the message.
    """
    return bool(getattr(module, "screens", False)) or getattr(module, "vouched_as", None) == (
        vouched_as)


def parse(raw: bytes) -> EmailMessage:
    """Parse RFC 5322 bytes with the modern email policy."""
    message = BytesParser(policy=EMAIL_POLICY).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def handle(context: InboundContext, row: InboundMessage) -> Outcome:
    """Run the handlers in order until one returns an outcome; nothing is silently dropped.

    Each handler runs in a savepoint: one that raises has its changes undone and the message
    is quarantined with the reason, so one bad message never stops the step.
    """
    outcome = _run(context, row)
    return replace(outcome, reason=outcome.reason[:REASON_LENGTH])


def _run(context: InboundContext, row: InboundMessage) -> Outcome:
    problem = raw_problem(row.raw, context.config.settings.mailbox.max_message_bytes)
    if problem is not None:
        return Outcome(InboundStatus.QUARANTINED, "limits", problem)
    try:
        message = parse(row.raw)
        # Header lengths are read raw, before any header is parsed or any pattern runs.
        problem = field_problem(message)
        if problem is not None:
            return Outcome(InboundStatus.QUARANTINED, "limits", problem)
        row.sender = sender_address(message)
    except Exception as exc:  # noqa: BLE001 - any parse failure quarantines, never crashes.
        return Outcome(InboundStatus.QUARANTINED, "malformed",
                       f"the message could not be parsed: {exc}")
    for module in handler_modules():
        name = getattr(module, "name", module.__name__)
        if row.vouched_as and not takes_vouched(module, row.vouched_as):
            continue
        try:
            with context.session.begin_nested():
                outcome: Outcome | None = module.process(context, row, message)
        except Exception as exc:  # noqa: BLE001 - a failing handler quarantines the message.
            # Only the handler and the error's type are logged: its text may quote the mail.
            log.error("handler %s failed on inbound row %s: %s", name, row.id,
                      type(exc).__name__)
            return Outcome(InboundStatus.QUARANTINED, "handler_error",
                           f"the {name} handler failed: {type(exc).__name__}: {exc}")
        if outcome is not None:
            return outcome
    return NO_HANDLER

"""The inbound pipeline: each handler module in handlers/ gets a message in turn."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.models import InboundMessage

if TYPE_CHECKING:
    from bot.config import Config


@dataclass(frozen=True)
class Outcome:
    """What a handler decided: processed (with its kind) or quarantined (with the reason)."""

    status: str
    kind: str
    reason: str = ""
    case_id: int | None = None


@dataclass(frozen=True)
class InboundContext:
    """What a handler may use: the open transaction, the instant and the configuration."""

    session: Session
    now: datetime
    config: Config


NO_HANDLER = Outcome("quarantined", "unrecognised", "no handler recognised this message")


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


def parse(raw: bytes) -> EmailMessage:
    """Parse RFC 5322 bytes with the modern email policy."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def handle(context: InboundContext, row: InboundMessage) -> Outcome:
    """Run the handlers in order until one returns an outcome; nothing is silently dropped."""
    try:
        message = parse(row.raw)
    except Exception as exc:  # noqa: BLE001 - any parse failure quarantines, never crashes.
        return Outcome("quarantined", "malformed", f"the message could not be parsed: {exc}")
    for module in handler_modules():
        outcome: Outcome | None = module.process(context, row, message)
        if outcome is not None:
            return outcome
    return NO_HANDLER

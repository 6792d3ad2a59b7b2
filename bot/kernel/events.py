"""Domain events inside a transaction: a module in handlers/ or schedules/ subscribes by name.

Events keep the pieces of the process apart: intake publishes "case_opened" and knows nothing
of ballots; the ballot code publishes "case_decided" and knows nothing of agency requests.
Subscribers run in the publisher's transaction, so a change and its consequences commit
together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.kernel.actions import discover

if TYPE_CHECKING:
    from bot.config import Config
    from bot.store.models import Case

# The events the core publishes, and what each carries besides the case.
EVENTS = {
    "case_opened": "a new case exists (its milestones are dated)",
    "case_decided": "the partners decided; `decision` is rapid_review, no_further_action, ...",
    "report_signed_off": "a report version met the sign-off quorum; `report_sha256`",
    "clock_restarted": "Day 0 moved (Doncaster: to the National Panel notification)",
    "case_submitted": "the report to the National Panel is confirmed in Sent",
    "milestones_moved": "pending milestones were re-dated; `moved` lists their keys",
    "case_closed": "the case ended (closed); what was planned ahead for it is cancelled",
}


@dataclass(frozen=True)
class Event:
    """One published event with the transaction it happens in."""

    name: str
    session: Session
    config: Config
    case: Case
    now: datetime
    payload: dict[str, Any]


Subscriber = Callable[[Event], None]
_SUBSCRIBERS: dict[str, list[Subscriber]] = {}


def subscribe(name: str) -> Callable[[Subscriber], Subscriber]:
    """Register a function to run whenever the named event is published."""
    if name not in EVENTS:
        raise ValueError(f"unknown event {name!r}; known: {', '.join(EVENTS)}")

    def register(function: Subscriber) -> Subscriber:
        if function not in _SUBSCRIBERS.setdefault(name, []):
            _SUBSCRIBERS[name].append(function)
        return function

    return register


def publish(
    name: str, session: Session, config: Config, case: Case, now: datetime, **payload: Any
) -> None:
    """Run every subscriber of the event, in registration order, in the caller's transaction."""
    discover()
    for subscriber in _SUBSCRIBERS.get(name, []):
        subscriber(Event(name, session, config, case, now, payload))

"""Planned actions by name: jobs in schedules/ register them, the sweep runs them when due."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlmodel import Session

from bot.kernel.mailbox import Mailbox
from bot.store.models import PlannedAction

if TYPE_CHECKING:
    from bot.config import Config


@dataclass(frozen=True)
class ActionContext:
    """What an action may use: the open transaction, the instant and the configuration."""

    session: Session
    now: datetime
    config: Config
    # The mailbox, for the few actions that look in Sent; none in planning-only contexts.
    mailbox: Mailbox | None = None


ActionFunction = Callable[[ActionContext, PlannedAction], None]
_ACTIONS: dict[str, ActionFunction] = {}

# The packages whose modules register handlers and actions; bot/ names none of the modules.
PLUGIN_PACKAGES = ("handlers", "schedules")


def action(name: str) -> Callable[[ActionFunction], ActionFunction]:
    """Register a function as the planned action called name."""

    def register(function: ActionFunction) -> ActionFunction:
        _ACTIONS[name] = function
        return function

    return register


def find_action(name: str) -> ActionFunction:
    """Return the action registered under name, discovering plugins on first use."""
    discover()
    try:
        return _ACTIONS[name]
    except KeyError:
        raise LookupError(f"no planned action is registered as {name!r}") from None


@lru_cache(maxsize=1)
def discover() -> None:
    """Import every module of the plugin packages once, so their decorators register."""
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")


PeriodicFunction = Callable[[ActionContext], None]
_PERIODIC: dict[str, PeriodicFunction] = {}


def periodic(name: str) -> Callable[[PeriodicFunction], PeriodicFunction]:
    """Register a function the engine calls on every step to plan a recurring job's next run.

    The function must be cheap and idempotent: it only plans a PlannedAction when none is
    pending, and the planned action does the work when it falls due.
    """

    def register(function: PeriodicFunction) -> PeriodicFunction:
        _PERIODIC[name] = function
        return function

    return register


def periodic_jobs() -> list[tuple[str, PeriodicFunction]]:
    """Return every registered periodic planner by name, discovering plugins on first use."""
    discover()
    return sorted(_PERIODIC.items())

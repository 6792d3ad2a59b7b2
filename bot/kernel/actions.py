"""Planned actions by name: jobs in schedules/ register them, the sweep runs them when due."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, select

from bot.kernel.mailbox import Mailbox
from bot.store.models import PlannedAction
from bot.store.statuses import PlannedActionStatus

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


class ActionArguments(BaseModel):
    """What one kind of planned action needs to know, stored with it as JSON."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Arguments = TypeVar("Arguments", bound=ActionArguments)
ActionFunction = Callable[[ActionContext, PlannedAction, Arguments], None]


@dataclass(frozen=True)
class RegisteredAction(Generic[Arguments]):
    """A planned action's function and the model its stored arguments must fit."""

    name: str
    arguments: type[Arguments]
    function: ActionFunction[Arguments]

    def run(self, context: ActionContext, planned: PlannedAction) -> None:
        """Run the function on a due row, with the row's arguments read into the model."""
        self.function(context, planned, self.arguments.model_validate(planned.arguments))


_ACTIONS: dict[str, RegisteredAction[Any]] = {}

# The packages whose modules register handlers and actions; bot/ names none of the modules.
PLUGIN_PACKAGES = ("handlers", "schedules")


def action(
    name: str, arguments: type[Arguments]
) -> Callable[[ActionFunction[Arguments]], ActionFunction[Arguments]]:
    """Register a function as the planned action called name, taking arguments of that model."""

    def register(function: ActionFunction[Arguments]) -> ActionFunction[Arguments]:
        _ACTIONS[name] = RegisteredAction(name, arguments, function)
        return function

    return register


def find_action(name: str) -> RegisteredAction[Any]:
    """Return the action registered under name, discovering plugins on first use."""
    discover()
    try:
        return _ACTIONS[name]
    except KeyError:
        raise LookupError(f"no planned action is registered as {name!r}") from None


def plan_action(
    session: Session, *, partnership: str, case_id: int | None, key: str, action_name: str,
    arguments: ActionArguments, due_at: datetime,
) -> PlannedAction:
    """Plan an action once by its key; a pending one whose time changed is moved.

    The arguments must be of the model the action is registered with, or nothing is planned.
    """
    expected = find_action(action_name).arguments
    if type(arguments) is not expected:
        raise TypeError(f"planned action {action_name!r} takes {expected.__name__}, "
                        f"not {type(arguments).__name__}")
    existing = session.exec(select(PlannedAction).where(PlannedAction.key == key)).first()
    if existing is None:
        planned = PlannedAction(partnership=partnership, case_id=case_id, key=key,
                                action=action_name, arguments=arguments.model_dump(mode="json"),
                                due_at=due_at)
        session.add(planned)
        return planned
    if existing.status == PlannedActionStatus.PENDING and existing.due_at != due_at:
        existing.due_at = due_at
        session.add(existing)
    return existing


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

"""Planned actions by name: jobs in schedules/ register them, the sweep runs them when due."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Table
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session

from bot.kernel.mailbox import Mailbox
from bot.store.db import DIALECT_INSERTS
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
# Reads, in one go, what a slice of due actions of one kind will each look up.
PrepareFunction = Callable[[ActionContext, list[tuple[PlannedAction, Arguments]]], None]


@dataclass(frozen=True)
class RegisteredAction(Generic[Arguments]):
    """A planned action's function and the model its stored arguments must fit."""

    name: str
    arguments: type[Arguments]
    function: ActionFunction[Arguments]
    prepare: PrepareFunction[Arguments] | None = None

    def run(self, context: ActionContext, planned: PlannedAction) -> None:
        """Run the function on a due row, with the row's arguments read into the model."""
        self.function(context, planned, self.arguments.model_validate(planned.arguments))

    def prepare_slice(self, context: ActionContext, due: list[PlannedAction]) -> None:
        """Let the action read what this slice of its due rows needs, if it reads ahead."""
        if self.prepare is not None:
            self.prepare(context, [(planned, self.arguments.model_validate(planned.arguments))
                                   for planned in due])


_ACTIONS: dict[str, RegisteredAction[Any]] = {}

# The packages whose modules register handlers and actions; bot/ names none of the modules.
PLUGIN_PACKAGES = ("handlers", "schedules")


def action(
    name: str, arguments: type[Arguments], prepare: PrepareFunction[Arguments] | None = None
) -> Callable[[ActionFunction[Arguments]], ActionFunction[Arguments]]:
    """Register a function as the planned action called name, taking arguments of that model.

    prepare, if given, is called once for each slice of due rows of the action before any of
    them runs, to read in one query what each would otherwise look up alone.
    """

    def register(function: ActionFunction[Arguments]) -> ActionFunction[Arguments]:
        _ACTIONS[name] = RegisteredAction(name, arguments, function, prepare)
        return function

    return register


def find_action(name: str) -> RegisteredAction[Any]:
    """Return the action registered under name, discovering plugins on first use."""
    discover()
    try:
        return _ACTIONS[name]
    except KeyError:
        raise LookupError(f"no planned action is registered as {name!r}") from None


@dataclass(frozen=True)
class ActionPlan:
    """One action to plan: the partnership and case, its unique key, what runs, and when."""

    partnership: str
    case_id: int | None
    key: str
    action_name: str
    arguments: ActionArguments
    due_at: datetime


_TABLE: Table = PlannedAction.__table__  # type: ignore[attr-defined]


def _upsert(insert: Callable[[Table], Any]) -> Any:
    """Return a dialect's INSERT of a planned row that moves a pending row of its key instead.

    A row of the key already there is moved only if it is pending and its time differs.
    """
    statement = insert(_TABLE)
    incoming = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=[_TABLE.c.key], set_={"due_at": incoming.due_at},
        where=(_TABLE.c.status == PlannedActionStatus.PENDING)
        & (_TABLE.c.due_at != incoming.due_at),
    )


# Each dialect's statement is built once, so SQLAlchemy compiles it once and reuses it (a
# statement with its VALUES rows written in is never cached: a millisecond a call to compile).
_UPSERTS = {name: _upsert(insert) for name, insert in DIALECT_INSERTS.items()}
_UPSERTS_RETURNING = {name: upsert.returning(_TABLE.c.id) for name, upsert in _UPSERTS.items()}


def plan_action(
    session: Session, *, partnership: str, case_id: int | None, key: str, action_name: str,
    arguments: ActionArguments, due_at: datetime,
) -> None:
    """Plan an action once by its key; a pending one whose time changed is moved.

    The arguments must be of the model the action is registered with, or nothing is planned.
    """
    plan_actions(session, [ActionPlan(partnership, case_id, key, action_name, arguments,
                                      due_at)])


def plan_actions(session: Session, plans: Iterable[ActionPlan]) -> None:
    """Plan actions once by their keys, in one statement; pending ones whose time changed move.

    A new key is planned pending; a pending row of the key is moved to the new time; a row
    done, cancelled or in any other state is left alone, and no row's arguments change. Every
    plan's arguments must be of the model its action is registered with, and two plans of one
    key must be the same plan, or nothing is planned.
    """
    wanted = _checked(plans)
    if not wanted:
        return
    # Rows the session holds but has not written (a chase just cancelled, say) must be in the
    # table before the statement looks for the keys it conflicts with, even where the session
    # does not flush by itself.
    session.flush()
    rows = [{"partnership": plan.partnership, "case_id": plan.case_id, "key": plan.key,
             "action": plan.action_name, "arguments": plan.arguments.model_dump(mode="json"),
             "due_at": plan.due_at, "status": PlannedActionStatus.PENDING} for plan in wanted]
    # The statement wrote to the table, not to the session's objects: a row it moved that the
    # session already holds must be read again, or it would show its old time.
    for held in _write(session, rows):
        session.expire(held, ["due_at"])


def _write(session: Session, rows: list[dict[str, Any]]) -> list[PlannedAction]:
    """Write the planned rows; return those of them, new or moved, the session already holds."""
    dialect = session.get_bind().dialect
    if dialect.insert_returning:
        # SQLAlchemy sends the rows as one INSERT of up to a thousand rows, and each row
        # written (new or moved, not one left alone) comes back, to be found by its id.
        written = session.execute(_UPSERTS_RETURNING[dialect.name], rows).scalars().all()
        found = (session.identity_map.get(identity_key(PlannedAction, row_id))
                 for row_id in written)
        return [held for held in found if isinstance(held, PlannedAction)]
    # SQLite before 3.35 has no RETURNING: the statement is run for each row, and the rows
    # the session holds are looked through for the keys.
    session.execute(_UPSERTS[dialect.name], rows)
    keys = {row["key"] for row in rows}
    found = (state.obj() for state in session.identity_map.all_states()
             if state.class_ is PlannedAction and state.dict.get("key") in keys)
    return [held for held in found if isinstance(held, PlannedAction)]


def _checked(plans: Iterable[ActionPlan]) -> list[ActionPlan]:
    """Return the plans once each, refusing wrong arguments and one key planned two ways."""
    by_key: dict[str, ActionPlan] = {}
    for plan in plans:
        expected = find_action(plan.action_name).arguments
        if type(plan.arguments) is not expected:
            raise TypeError(f"planned action {plan.action_name!r} takes {expected.__name__}, "
                            f"not {type(plan.arguments).__name__}")
        if by_key.setdefault(plan.key, plan) != plan:
            raise ValueError(f"planned action {plan.key!r} is planned two different ways at once")
    return list(by_key.values())


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

"""Planning actions in bulk by key: one upsert per batch that moves only pending rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect
from sqlmodel import Session, select

from bot.agencies.chasing import AgencyStep
from bot.ballots.chasing import BallotStep
from bot.cases.lifecycle import open_case
from bot.kernel.actions import ActionPlan, plan_actions
from bot.service.wiring import open_database
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import PlannedAction
from bot.store.statuses import PlannedActionStatus
from tests.factories import build_config

AT = datetime(2027, 1, 4, 16, 0, tzinfo=UTC)
LATER = AT + timedelta(hours=1)
KEY = "RR-2027-001:ballot:7:deadline"


@pytest.fixture
def database(database_url: str) -> Iterator[Engine]:
    """Give the test the database with the schema the migrations make."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=[True, False], ids=["returning", "no_returning"])
def either_database(
    request: pytest.FixtureRequest, database: Engine, monkeypatch: pytest.MonkeyPatch,
) -> Engine:
    """Give the database as one that returns the rows an INSERT wrote, then as one that cannot.

    SQLite before 3.35 cannot (no RETURNING); the planning works without it.
    """
    monkeypatch.setattr(database.dialect, "insert_returning", request.param)
    return database


def deadline(due_at: datetime, key: str = KEY, ballot_id: int = 7) -> ActionPlan:
    """Return the plan of a ballot's deadline."""
    return ActionPlan("exampleshire", None, key, "ballot_deadline", BallotStep(ballot_id=ballot_id),
                      due_at)


def planned(database: Engine) -> list[tuple[str, dict[str, Any], datetime, str]]:
    """Return every planned row's key, arguments, due time and status, by key."""
    with Session(database) as session:
        rows = session.exec(select(PlannedAction).order_by(PlannedAction.key)).all()
    return [(row.key, row.arguments, row.due_at, row.status) for row in rows]


def mark(database: Engine, key: str, status: str) -> None:
    """Set a planned row's status, as the sweep or a cancellation would."""
    with transaction(database) as session:
        row = session.exec(select(PlannedAction).where(PlannedAction.key == key)).one()
        row.status, row.done_at = status, AT
        session.add(row)


@contextmanager
def statements_on(database: Engine) -> Iterator[list[str]]:
    """Record every statement sent that reads or writes the planned actions."""
    seen: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "plannedaction" in statement.lower():
            seen.append(statement)

    event.listen(database, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(database, "before_cursor_execute", note)


def test_a_new_key_is_planned_pending_and_the_same_plan_again_changes_nothing(
    database: Engine,
) -> None:
    # Given a ballot's deadline planned,
    with transaction(database) as session:
        plan_actions(session, [deadline(AT)])
    first = planned(database)
    # when the same plan is made again,
    with transaction(database) as session:
        plan_actions(session, [deadline(AT)])
    # then there is still the one pending row, holding its arguments as JSON.
    assert first == planned(database) == [(KEY, {"ballot_id": 7}, AT,
                                           PlannedActionStatus.PENDING)]


def test_a_pending_action_planned_for_another_time_moves_and_keeps_its_arguments(
    database: Engine,
) -> None:
    # Given a pending deadline,
    with transaction(database) as session:
        plan_actions(session, [deadline(AT)])
    # when it is planned an hour later (with other arguments),
    with transaction(database) as session:
        plan_actions(session, [deadline(LATER, ballot_id=8)])
    # then it moves, and its arguments are the ones it was first planned with.
    assert planned(database) == [(KEY, {"ballot_id": 7}, LATER, PlannedActionStatus.PENDING)]


@pytest.mark.parametrize("status", [PlannedActionStatus.DONE, PlannedActionStatus.CANCELLED])
def test_an_action_done_or_cancelled_is_never_moved(database: Engine, status: str) -> None:
    # Given a deadline already done (or cancelled),
    with transaction(database) as session:
        plan_actions(session, [deadline(AT)])
    mark(database, KEY, status)
    # when it is planned again for a later time,
    with transaction(database) as session:
        plan_actions(session, [deadline(LATER)])
    # then it is left as it was.
    assert planned(database) == [(KEY, {"ballot_id": 7}, AT, status)]


def test_the_wrong_arguments_model_plans_nothing(database: Engine) -> None:
    # Given a good plan followed by one with another action's arguments,
    wrong = ActionPlan("exampleshire", None, "RR-2027-001:ballot:7:at_risk", "ballot_at_risk",
                       AgencyStep(agency="police"), AT)
    # when they are planned together, in a transaction that goes on to commit,
    with transaction(database) as session:
        with pytest.raises(TypeError, match="takes BallotStep, not AgencyStep"):
            plan_actions(session, [deadline(AT), wrong])
    # then neither is planned.
    assert planned(database) == []


def test_one_key_planned_two_ways_in_one_call_is_refused(database: Engine) -> None:
    # Given two plans of one key for different times,
    # when they are planned together, in a transaction that goes on to commit,
    with transaction(database) as session:
        with pytest.raises(ValueError, match="planned two different ways"):
            plan_actions(session, [deadline(AT), deadline(LATER)])
    # then nothing is planned: which of them was meant is not guessed.
    assert planned(database) == []


def test_many_plans_are_one_statement_per_thousand(either_database: Engine) -> None:
    database = either_database
    # Given a pending deadline and one done,
    with transaction(database) as session:
        plan_actions(session, [deadline(AT, "pending"), deadline(AT, "done")])
    mark(database, "done", PlannedActionStatus.DONE)
    # when more than a thousand plans are made at once, both of those among them an hour
    # later and one new plan twice over,
    fresh = [deadline(AT, f"fresh:{number:04d}") for number in range(1201)]
    with statements_on(database) as statements, transaction(database) as session:
        plan_actions(session, [deadline(LATER, "pending"), deadline(LATER, "done"), *fresh,
                               fresh[0]])
    # then they took at most two statements, not one or two for each plan,
    assert len(statements) <= 2, len(statements)
    # every new one is pending once, the pending one moved and the done one did not.
    rows = {row[0]: row[1:] for row in planned(database)}
    assert len(rows) == len(fresh) + 2
    assert rows.pop("done") == ({"ballot_id": 7}, AT, PlannedActionStatus.DONE)
    assert rows.pop("pending") == ({"ballot_id": 7}, LATER, PlannedActionStatus.PENDING)
    assert {row[2] for row in rows.values()} == {PlannedActionStatus.PENDING}


def test_a_row_the_session_holds_shows_its_new_time(either_database: Engine) -> None:
    database = either_database
    # Given a pending deadline the session has read,
    with transaction(database) as session:
        plan_actions(session, [deadline(AT), deadline(AT, "other")])
    with transaction(database) as session:
        row, other = session.exec(select(PlannedAction).order_by(PlannedAction.key)).all()
        assert row.due_at == other.due_at == AT
        # when it is planned again an hour later in the same session, with a new one,
        plan_actions(session, [deadline(LATER), deadline(LATER, "new")])
        # then the session's row shows the new time, as the table does, and the other row
        # the session holds was left as it was.
        assert row.due_at == LATER
        assert "due_at" in inspect(other).dict
    assert planned(database)[0][2] == LATER


@pytest.mark.parametrize("autoflush", [True, False])
def test_a_cancellation_the_session_has_not_written_yet_is_respected(
    database: Engine, autoflush: bool,
) -> None:
    # Given a pending deadline cancelled in the session but not yet written (as a request's
    # chasing is cancelled just before its new deadline's chasing is planned), in a session
    # that flushes by itself before a statement or one that does not,
    with transaction(database) as session:
        plan_actions(session, [deadline(AT)])
    with transaction(database) as session:
        row = session.exec(select(PlannedAction).where(PlannedAction.key == KEY)).one()
        row.status, row.done_at = PlannedActionStatus.CANCELLED, AT
        session.add(row)
        # when the same key is planned an hour later,
        with nullcontext() if autoflush else session.no_autoflush:
            plan_actions(session, [deadline(LATER)])
    # then the cancelled row stays cancelled at its old time.
    assert planned(database) == [(KEY, {"ballot_id": 7}, AT, PlannedActionStatus.CANCELLED)]


def test_opening_a_case_plans_its_actions_in_a_few_statements(
    database_url: str, tmp_path: Path,
) -> None:
    # Given the example partnership on an empty database,
    config = build_config(tmp_path, database_url=database_url)
    database = open_database(config)
    # when a case is opened,
    with statements_on(database) as statements, transaction(database) as session:
        case = open_case(session, config, AT, AT, "test")
    with Session(database) as session:
        actions = session.exec(select(PlannedAction).where(PlannedAction.case_id == case.id)).all()
    database.dispose()
    # then its milestones', its ballot's and its submission's actions, more than twenty, took
    # one statement each (before planning in bulk: a look-up and an insert per action, 48).
    assert len(actions) > 20
    assert len(statements) <= 3, statements

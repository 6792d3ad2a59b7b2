"""Planning an action: once by its key, with arguments of the model registered for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.agencies.chasing import AgencyStep
from bot.ballots.chasing import BallotStep
from bot.kernel.actions import plan_action
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import PlannedAction, PlannedActionStatus

AT = datetime(2027, 1, 4, 16, 0, tzinfo=UTC)
KEY = "RR-2027-001:ballot:7:deadline"


@pytest.fixture
def database(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/rrbot.sqlite3")
    upgrade(engine)
    return engine


def test_an_action_is_planned_once_by_key_and_a_pending_one_moves(database: Engine) -> None:
    # Given a ballot's deadline planned, then planned again for a later time,
    for due_at in (AT, AT + timedelta(hours=1)):
        with transaction(database) as session:
            plan_action(session, partnership="exampleshire", case_id=None, key=KEY,
                        action_name="ballot_deadline", arguments=BallotStep(ballot_id=7),
                        due_at=due_at)
    # then there is one row, at the later time, holding the arguments as JSON.
    with Session(database) as session:
        rows = session.exec(select(PlannedAction)).all()
    assert [(r.key, r.arguments, r.due_at, r.status) for r in rows] == [
        (KEY, {"ballot_id": 7}, AT + timedelta(hours=1), PlannedActionStatus.PENDING)]


def test_planning_with_another_actions_arguments_is_refused(database: Engine) -> None:
    with pytest.raises(TypeError, match="takes BallotStep, not AgencyStep"), \
            transaction(database) as session:
        plan_action(session, partnership="exampleshire", case_id=None, key=KEY,
                    action_name="ballot_deadline", arguments=AgencyStep(agency="police"),
                    due_at=AT)
    with pytest.raises(LookupError), transaction(database) as session:
        plan_action(session, partnership="exampleshire", case_id=None, key=KEY,
                    action_name="ballot_closing", arguments=BallotStep(ballot_id=7), due_at=AT)

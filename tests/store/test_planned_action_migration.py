"""Planned actions made the old way (a subject, counters in the key) get typed arguments."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine

from bot.kernel.actions import find_action
from bot.store.db import make_engine
from bot.store.migrate import alembic_config, upgrade

PREVIOUS = "0002_planned_action_kind"
AT = datetime(2027, 1, 4, 16, 0, tzinfo=UTC)
SUBMISSION = "RR-2027-001:submission:0123456789abcdef"

# One row of each kind as the old code planned it: (key, action, subject), and its arguments.
OLD_ROWS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("RR-2027-001:ballot:7:remind:0", "ballot_reminder", "7", {"ballot_id": 7}),
    ("RR-2027-001:ballot:7:at_risk", "ballot_at_risk", "7", {"ballot_id": 7}),
    ("RR-2027-001:ballot:7:deadline", "ballot_deadline", "7", {"ballot_id": 7}),
    ("RR-2027-001:national_panel_notified:remind:0", "milestone_reminder",
     "national_panel_notified", {"milestone": "national_panel_notified"}),
    ("RR-2027-001:submission:due", "milestone_overdue", "submission",
     {"milestone": "submission"}),
    ("RR-2027-001:agency:police:remind:0:20270111T1600", "agency_reminder", "police",
     {"agency": "police", "escalation": 0}),
    ("RR-2027-001:agency:police:remind:1:20270111T1600", "agency_final_reminder", "police",
     {"agency": "police", "escalation": 0}),
    ("RR-2027-001:agency:police:escalate:20270111T1600:3", "agency_escalation", "police",
     {"agency": "police", "escalation": 3}),
    ("RR-2027-001:risk:no_report", "submission_risk", "no_report", {"check": "no_report"}),
    (f"{SUBMISSION}:confirm:4", "confirm_submission", SUBMISSION,
     {"outbox_key": SUBMISSION, "looks": 4, "waits": 0}),
    (f"{SUBMISSION}:confirm:2.5", "confirm_submission", SUBMISSION,
     {"outbox_key": SUBMISSION, "looks": 2, "waits": 5}),
    ("digest:daily:2027-01-04", "digest", "2027-01-04", {"day": "2027-01-04"}),
]

old_planned_action = sa.table(
    "plannedaction",
    sa.column("partnership", sa.String()), sa.column("key", sa.String()),
    sa.column("action", sa.String()), sa.column("subject", sa.String()),
    sa.column("due_at", sa.DateTime(timezone=True)), sa.column("status", sa.String()),
)
new_planned_action = sa.table(
    "plannedaction", sa.column("key", sa.String()), sa.column("arguments", sa.JSON()),
)


def migrate_to(engine: Engine, revision: str, downgrade: bool = False) -> None:
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if downgrade else command.upgrade)(config, revision)
        connection.commit()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Give the test an empty database on each backend in turn."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}" if request.param == "sqlite"
                         else str(request.getfixturevalue("postgres_url")))
    yield engine
    engine.dispose()


def test_each_kind_of_planned_action_gets_its_arguments_from_its_subject_and_key(
    engine: Engine,
) -> None:
    # Given a database at the revision before, with one planned action of each kind,
    migrate_to(engine, PREVIOUS)
    with engine.begin() as connection:
        connection.execute(sa.insert(old_planned_action), [
            dict(partnership="exampleshire", key=key, action=action, subject=subject,
                 due_at=AT, status="pending") for key, action, subject, _ in OLD_ROWS])
    # when it is brought up to date,
    upgrade(engine)
    # then every row has the arguments its action's model reads, and its key is unchanged.
    with engine.connect() as connection:
        arguments: dict[str, Any] = dict(connection.execute(sa.select(
            new_planned_action.c.key, new_planned_action.c.arguments)).all())
    assert arguments == {key: expected for key, _, _, expected in OLD_ROWS}
    for key, action, _, _ in OLD_ROWS:
        find_action(action).arguments.model_validate(arguments[key])
    # And going back down gives each row its subject again.
    migrate_to(engine, PREVIOUS, downgrade=True)
    with engine.connect() as connection:
        subjects = dict(connection.execute(sa.select(
            old_planned_action.c.key, old_planned_action.c.subject)).all())
    assert subjects == {key: subject for key, _, subject, _ in OLD_ROWS}


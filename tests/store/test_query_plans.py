"""Every query a step runs, reply matching included, reads growing tables through an index."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy import event

from bot.cases.lifecycle import open_case
from bot.engine.step import Engine
from bot.kernel.mailbox import FetchedMail
from bot.store.db import transaction
from tests.handlers.test_inbound import CORPUS, AnsweringMailbox, referral_bytes
from tests.handlers.world import HANDLED, build_world, make_engine, world_config

# The tables whose rows pile up with every message, action and entry ever written.
GROWING = {"outboxmessage", "inboundmessage", "auditentry", "plannedaction", "agencyrequest",
           "milestone"}
# Replies, bounces and auto-replies that the bot matches to the mail it sent.
REPLIES = ["eo_agency_return.eml", "dsn_authenticated_legacy_id.eml",
           "gmail_vacation_hospital.eml", "hospital_question.eml", "exchange_ndr_hospital.eml",
           "housing_extension_request.eml", "gmail_no_involvement_hospital.eml"]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Give the test an empty SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plans.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@contextmanager
def captured(database: DatabaseEngine) -> Iterator[list[tuple[str, Any]]]:
    """Record every single-row statement the engine sends while the block runs."""
    statements: list[tuple[str, Any]] = []

    def note(_connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(
                ("SELECT", "UPDATE", "DELETE")):
            statements.append((statement, parameters))

    event.listen(database, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(database, "before_cursor_execute", note)


def full_scans(database: DatabaseEngine, statement: str, parameters: Any,
               tables: set[str] = GROWING) -> list[str]:
    """Return the growing tables the database would read from end to end for the statement."""
    with database.connect() as connection:
        if database.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            # "SCAN t" and "SCAN t USING (COVERING) INDEX" both read every row; "SEARCH" does not.
            found = [re.match(r"SCAN (\w+)", row[-1]) for row in rows]
        else:
            # With sequential scans priced out, one is chosen only where no index can serve.
            connection.exec_driver_sql("SET enable_seqscan = off")
            rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            found = [re.search(r"Seq Scan on (\w+)", row[0]) for row in rows]
            connection.rollback()
    return [match.group(1) for match in found if match and match.group(1) in tables]


def run_history(engine: Engine, mailbox: AnsweringMailbox) -> None:
    """Run a world of two cases whose every correspondent answers, with replies and bounces."""
    build_world(engine)
    for number, name in enumerate(REPLIES):
        mailbox.inbox.append(FetchedMail(f"corpus-{number}", (CORPUS / name).read_bytes()))
    mailbox.inbox.append(FetchedMail("referral", referral_bytes()))
    for hours in range(0, 24 * 20, 6):
        engine.step(HANDLED + timedelta(hours=hours))


@pytest.mark.slow
def test_no_step_or_reply_matching_query_reads_a_growing_table_end_to_end(
    database_url: str, tmp_path: Path
) -> None:
    # Given the engine on each database, with mail going out and answers coming back,
    config = world_config(tmp_path, database_url=database_url)
    engine, _recording = make_engine(config, tmp_path)
    mailbox = AnsweringMailbox(tmp_path / "answered.jsonl", config.settings.mailbox.address,
                               marked=False)
    engine.mailbox = mailbox
    # when twenty days of steps run, matching replies to what was sent,
    with captured(engine.database) as statements:
        run_history(engine, mailbox)
    # then reply matching was among the queries (the check is not empty),
    distinct = {statement: parameters for statement, parameters in statements}
    assert any("outboxmessage.message_id IN" in statement for statement in distinct)
    # and the database reads none of the growing tables from end to end for any of them.
    scans = {statement: tables for statement, parameters in distinct.items()
             if (tables := full_scans(engine.database, statement, parameters))}
    engine.database.dispose()
    assert scans == {}, "\n\n".join(f"{t}: {s}" for s, t in scans.items())


def test_the_next_case_reference_does_not_read_every_case(
    database_url: str, tmp_path: Path
) -> None:
    # Given a year with a case open already,
    engine, _mailbox = make_engine(world_config(tmp_path, database_url=database_url), tmp_path)
    with transaction(engine.database) as session:
        first = open_case(session, engine.config, HANDLED, HANDLED, "test").reference
    # when two more are opened,
    with captured(engine.database) as statements, transaction(engine.database) as session:
        references = [open_case(session, engine.config, HANDLED, HANDLED, "test").reference
                      for _ in range(2)]
    # then they take the next numbers, and no query read the cases from end to end.
    assert [first, *references] == ["RR-2026-001", "RR-2026-002", "RR-2026-003"]
    # (tests/conftest.py's own check of queued chat reads every child's name: not the bot's.)
    scans = [statement for statement, parameters in statements if "child_dob" not in statement
             and full_scans(engine.database, statement, parameters, {"case"})]
    engine.database.dispose()
    assert scans == []

"""The daily digest of a thousand open cases: a few queries, built in a second, under a megabyte."""

from __future__ import annotations

import time
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.config import Config
from bot.digest.daily import build_daily_digest
from bot.engine.step import Engine
from bot.service.wiring import open_database
from bot.store.db import transaction
from bot.store.models import OutboxMessage
from tests.digest.fixture import DIGEST_AT, make_case
from tests.factories import build_config
from tests.recording import RecordingMailbox

COCKPIT = "https://rapidreview.exampleshire.example"


def many_cases_config(tmp_path: Path, **digest: object) -> Config:
    """Return the example configuration with the cockpit's address and [digest] overrides."""
    return build_config(database_url=f"sqlite:///{tmp_path / 'rrbot.sqlite3'}",
                        closure_dates=[], preset="oldham", digest=digest,
                        web={"base_url": COCKPIT})


def open_cases(config: Config, database: object, count: int) -> None:
    """Open count cases: a twentieth of them on Day 9 with things overdue, the rest today."""
    with transaction(database) as session:  # type: ignore[arg-type]
        for number in range(1, count + 1):
            started = "2027-02-05T09:40" if number % 20 == 0 else "2027-02-18T07:55"
            make_case(session, config, f"RR-2027-{number:04d}", started, "requests_sent",
                      "A.B.", "Alex Brook")
        # A case of another partnership in the same database is not this digest's.
        other = make_case(session, config, "OTHER-2027-001", started, "requests_sent",
                          "C.D.", "Casey Dunmore")
        other.partnership = "elsewhere"
        session.add(other)


@pytest.mark.slow
def test_a_thousand_open_cases_make_a_digest_in_a_second_and_under_a_megabyte(
    tmp_path: Path,
) -> None:
    # Given a thousand open cases, fifty of them red,
    config = many_cases_config(tmp_path)
    database = open_database(config)
    open_cases(config, database, 1000)
    # when the digest is built (counting its queries), and then sent at 08:30,
    statements: list[str] = []

    def note(*arguments: object) -> None:
        statements.append(str(arguments[2]))

    event.listen(database, "before_cursor_execute", note)
    with transaction(database) as session:
        # The process's CPU time, so a parallel test worker on the same cores does not count.
        started = time.process_time()
        digest = build_daily_digest(session, config, DIGEST_AT, DIGEST_AT - timedelta(days=1))
        built = time.process_time() - started
    event.remove(database, "before_cursor_execute", note)
    engine = Engine(config, database, RecordingMailbox(tmp_path / "sent.jsonl"))
    engine.step(DIGEST_AT - timedelta(hours=1))
    engine.step(DIGEST_AT)
    with transaction(database) as session:
        email = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "digest")).one().payload
    database.dispose()
    # then it took a few queries (one per table, not several per case) and under a second,
    assert len(statements) < 15, statements
    assert built < 1.0
    # the email is under a megabyte, every case of the partnership in it and no other,
    assert len(email) < 1_000_000, len(email)
    assert sum(digest.rag_counts.values()) == 1000
    assert "OTHER-2027-001" not in email.decode("ascii", "replace")
    # the red cases first in full, no more than fifty of them, and the rest on a line each
    # with its link to the cockpit.
    assert len(digest.cases) == 50 and {case.rag for case in digest.cases} == {"red"}
    assert len(digest.summarised) == 950
    html = message_from_bytes(email, policy=policy.default).get_body(("html",))
    assert html is not None
    assert f'<a href="{COCKPIT}/cases/RR-2027-0001">' in html.get_content()


def test_up_to_the_limit_every_case_is_listed_in_full(tmp_path: Path) -> None:
    # Given three open cases and a limit of three,
    config = many_cases_config(tmp_path, list_cases_in_full=3)
    database = open_database(config)
    open_cases(config, database, 3)
    # when the digest is built,
    with transaction(database) as session:
        digest = build_daily_digest(session, config, DIGEST_AT, DIGEST_AT - timedelta(days=1))
    database.dispose()
    # then all three are listed in full and none summarised.
    assert len(digest.cases) == 3 and digest.summarised == []

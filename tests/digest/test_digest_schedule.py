"""The digest's timing: 08:30 on working days only, once a day, caught up once after downtime."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import col, select

from bot.config import Config
from bot.engine.step import Engine
from bot.process.working_days import LONDON, parse_instant
from bot.service.wiring import open_database
from bot.store.db import make_engine, transaction
from bot.store.models import OutboxMessage
from tests.digest.fixture import digest_config, done, make_case
from tests.recording import RecordingMailbox


def steps(first: str, last: str, every_hours: int) -> list[datetime]:
    """Every few hours, plus several steps around 08:30 each day (two at 08:30 itself)."""
    start, end = parse_instant(first), parse_instant(last)
    instants = []
    now = start
    while now <= end:
        instants.append(now)
        now += timedelta(hours=every_hours)
    day = start.astimezone(LONDON).date()
    while day <= end.astimezone(LONDON).date():
        for clock in ("08:29", "08:30", "08:30", "08:31", "08:45"):
            instant = parse_instant(f"{day.isoformat()}T{clock}")
            if start <= instant <= end:
                instants.append(instant)
        day += timedelta(days=1)
    return sorted(instants)


def digests(config: Config) -> list[tuple[str, str]]:
    """Every digest and weekly summary queued: (outbox key, London time it was queued)."""
    database = make_engine(config.settings.database.url)
    with transaction(database) as session:
        rows = session.exec(
            select(OutboxMessage)
            .where(col(OutboxMessage.purpose).in_(["digest", "weekly_summary"]))
            .order_by(col(OutboxMessage.id))
        ).all()
    database.dispose()
    return [(row.idempotency_key,
             row.created_at.astimezone(LONDON).strftime("%a %d %b %H:%M")) for row in rows]


def weekly_text(config: Config, key: str) -> str:
    database = make_engine(config.settings.database.url)
    with transaction(database) as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).one()
    database.dispose()
    message = message_from_bytes(row.payload, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_the_digest_goes_at_0830_on_working_days_once_and_catches_up_once(
    tmp_path: Path,
) -> None:
    # Given a bot with a case closed on Thursday 25 March 2027 (Easter: Good Friday 26 March
    # and Easter Monday 29 March are bank holidays),
    config = digest_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    database = open_database(config)
    with transaction(database) as session:
        closed = make_case(session, config, "RR-2027-003", "2027-03-04T11:00", "closed",
                           "P.Q.", "Parker Quinn")
        done(session, closed, "acknowledge", "partner_decision", "notify_national_panel",
             "decision_feedback", "agency_requests", "agency_returns_due", "collation",
             "rr_meeting", "draft_report", "partner_signoff", "submit_national_panel")
        closed.closed_at = parse_instant("2027-03-25T17:30")
        session.add(closed)
    mailbox = RecordingMailbox(tmp_path / "sent.jsonl")
    engine = Engine(config, database, mailbox)
    # when it steps from Wednesday 24 March to midday on Wednesday 31 March, several times
    # around 08:30 every day,
    for now in steps("2027-03-24T00:00", "2027-03-31T12:00", every_hours=3):
        engine.step(now)
    # then one digest went at 08:30 on each working day, none at the weekend or on the bank
    # holidays, and the weekly summary went with the first digest after Easter Monday.
    assert digests(config) == [
        ("digest:daily:2027-03-24", "Wed 24 Mar 08:30"),
        ("digest:daily:2027-03-25", "Thu 25 Mar 08:30"),
        ("digest:daily:2027-03-30", "Tue 30 Mar 08:30"),
        ("digest:weekly:2027-W13", "Tue 30 Mar 08:30"),
        ("digest:daily:2027-03-31", "Wed 31 Mar 08:30"),
    ]
    # The weekly summary shows the case closed that week and its working days to each step.
    weekly = weekly_text(config, "digest:weekly:2027-W13")
    assert "RR-2027-003 (P.Q.)  Day 0 Thu 4 Mar 2027, closed 17:30 Thu 25 Mar" in weekly
    assert "Day 15   Day 15  Report submitted to the National Panel (on time)" in weekly
    assert "Agencies return their lesson logs (not done)" in weekly

    # Given the bot is then down from midday Wednesday 31 March to 10:00 Tuesday 6 April,
    # missing the digests of Thursday, Friday and Monday (and Monday's weekly summary),
    engine.database.dispose()
    engine = Engine(config, make_engine(config.settings.database.url), mailbox)
    # when it is back and steps several times, then on to Wednesday morning,
    for now in ["2027-04-06T10:00", "2027-04-06T10:00", "2027-04-06T10:01", "2027-04-06T15:00",
                "2027-04-07T08:29", "2027-04-07T08:30", "2027-04-07T09:00"]:
        engine.step(parse_instant(now))
    engine.database.dispose()
    # then the latest missed digest and the week's summary went once, as soon as it was
    # back, and Wednesday's at 08:30 as usual.
    assert digests(config)[5:] == [
        ("digest:daily:2027-04-06", "Tue 06 Apr 10:00"),
        ("digest:weekly:2027-W14", "Tue 06 Apr 10:00"),
        ("digest:daily:2027-04-07", "Wed 07 Apr 08:30"),
    ]
    # And every message reached the mailbox exactly once.
    assert set(mailbox.send_counts().values()) == {1}
    assert len(mailbox.records()) == 8


def test_a_new_bot_plans_its_first_digest_for_the_next_0830(tmp_path: Path) -> None:
    # Given a bot started for the first time at 10:00 on a working day,
    config = digest_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    engine = Engine(config, open_database(config), RecordingMailbox(tmp_path / "sent.jsonl"))
    # when it steps through the day and past the next morning's 08:30,
    for now in ["2027-03-24T10:00", "2027-03-24T17:00", "2027-03-25T08:30"]:
        engine.step(parse_instant(now))
    engine.database.dispose()
    # then its first digest is the next working day's, not a late one for the day it started.
    assert digests(config) == [("digest:daily:2027-03-25", "Thu 25 Mar 08:30")]

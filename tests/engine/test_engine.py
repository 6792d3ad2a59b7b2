"""step(now) on SQLite and a real PostgreSQL: milestones, outbox, inbound, audit, states."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select, update
from typer.testing import CliRunner

from bot.cases.lifecycle import mark_milestone_done, open_case
from bot.cases.states import IllegalTransition, transition
from bot.cli.main import app
from bot.config import Config
from bot.engine.step import Engine
from bot.kernel import audit
from bot.kernel.dispatch import RetryPolicy
from bot.kernel.mailbox import FetchedMail, MailboxError, TransientMailboxError
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import LONDON, parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import (
    AuditEntry,
    Case,
    InboundMessage,
    Milestone,
    OutboxMessage,
    PlannedAction,
)
from tests.factories import EMBEDDED_DATABASE, read_config, write_config
from tests.recording import RecordingMailbox

REFERRAL = parse_instant("2026-12-18T10:00")


def oldham(make_config: Callable[..., Config], url: str) -> Config:
    """Return the example (Oldham) config on the database url."""
    # No closures: the dates below are Oldham's own (tests/process/test_working_days.py).
    return make_config(database_url=url, closure_dates=[])


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def mailbox(tmp_path: Path) -> RecordingMailbox:
    return RecordingMailbox(tmp_path / "sent.jsonl")


@pytest.fixture
def engine(
    database_url: str, mailbox: RecordingMailbox, make_config: Callable[..., Config]
) -> Iterator[Engine]:
    built = build_engine(oldham(make_config, database_url), mailbox)
    yield built
    built.database.dispose()


def open_referral(engine: Engine) -> str:
    with transaction(engine.database) as session:
        return open_case(session, engine.config, REFERRAL, REFERRAL, actor="test").reference


def milestone_status(engine: Engine) -> dict[str, str]:
    with transaction(engine.database) as session:
        return {m.key: m.status for m in session.exec(select(Milestone))}


def test_a_case_moves_through_its_milestones_on_the_preset_dates(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    # Given an Oldham case referred on Friday 18 December 2026,
    reference = open_referral(engine)
    # when the engine steps just before and just after Day 1's 17:00 cut-off,
    engine.step(parse_instant("2026-12-21T16:59"))
    before = milestone_status(engine)
    engine.step(parse_instant("2026-12-21T17:00"))
    after = milestone_status(engine)
    # then Day 1's milestones fall due at 17:00 exactly, and nothing later does.
    assert before["partner_decision"] == "pending"
    assert after["partner_decision"] == "overdue"
    assert after["acknowledge"] == "overdue"
    assert after["agency_requests"] == "pending"
    # The business manager was told of each, once, with the case reference in the subject.
    subjects = [record["subject"] for record in mailbox.records()]
    assert sum("OVERDUE" in subject and reference in subject for subject in subjects) == 2
    # And the Day 15 submission falls due at 16:00 on Wednesday 13 January 2027.
    engine.step(parse_instant("2027-01-13T15:59"))
    assert milestone_status(engine)["submit_national_panel"] == "pending"
    engine.step(parse_instant("2027-01-13T16:00"))
    assert milestone_status(engine)["submit_national_panel"] == "overdue"


def test_a_statutory_milestone_is_warned_of_a_working_day_ahead(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    open_referral(engine)
    # Given the Day 15 16:00 submission, the reminder falls at 16:00 on Day 14.
    engine.step(parse_instant("2027-01-12T15:59"))
    assert not any("Report submitted" in r["subject"] for r in mailbox.records())
    engine.step(parse_instant("2027-01-12T16:00"))
    reminders = [r for r in mailbox.records() if "Report submitted" in r["subject"]]
    assert len(reminders) == 1
    assert reminders[0]["subject"].startswith("[RR-2026-001] Due 16:00 on Wednesday 13 January")


def test_step_twice_at_the_same_instant_does_nothing_the_second_time(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    open_referral(engine)
    now = parse_instant("2026-12-31T17:30")
    first = engine.step(now)
    second = engine.step(now)
    assert first.actions and first.dispatch.sent
    assert second.idle
    assert set(mailbox.send_counts().values()) == {1}


def test_a_milestone_done_in_time_is_not_chased_and_later_steps_are_redated(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    # Given Oldham's decision feedback is due two working days after the decision,
    reference = open_referral(engine)
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        # when the partners decide early, on Day 0 at 15:00,
        mark_milestone_done(session, engine.config, case, "partner_decision",
                            parse_instant("2026-12-18T15:00"), actor="test")
        feedback = session.exec(
            select(Milestone).where(Milestone.key == "decision_feedback")
        ).one()
    # then the feedback moves to Tuesday 22 December (two working days after Friday),
    assert feedback.due_at == parse_instant("2026-12-22T17:00")
    engine.step(parse_instant("2026-12-22T17:00"))
    # and no reminder or overdue warning is sent about the decision.
    assert not any("Virtual Panel" in r["subject"] for r in mailbox.records())
    assert milestone_status(engine)["decision_feedback"] == "overdue"


def test_a_transient_failure_is_retried_after_retry_after_and_sent_once(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    open_referral(engine)
    mailbox.fail_next, mailbox.retry_after = 1, 600.0
    now = parse_instant("2026-12-21T17:00")
    report = engine.step(now)
    # The first send failed and waits at least the server's Retry-After of ten minutes.
    (failed_key,) = report.dispatch.retried
    assert failed_key not in engine.step(now + timedelta(minutes=9)).dispatch.sent
    with transaction(engine.database) as session:
        waiting = session.exec(select(OutboxMessage).where(OutboxMessage.attempts == 1,
                                                           OutboxMessage.status == "pending"))
        assert all(row.next_attempt_at >= now + timedelta(seconds=600) for row in waiting)
    engine.step(now + timedelta(minutes=11))
    with transaction(engine.database) as session:
        statuses = {row.status for row in session.exec(select(OutboxMessage))}
    assert statuses == {"sent"}
    assert set(mailbox.send_counts().values()) == {1}


def test_a_message_held_until_later_is_dated_when_it_is_sent(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    # Given an email queued on Thursday 10 June at 10:00 and held until Friday 15:35 (BST),
    from email.utils import parsedate_to_datetime

    from bot.kernel.outbox import enqueue_mail

    queued, released = parse_instant("2027-06-10T10:00"), parse_instant("2027-06-11T15:35")
    with transaction(engine.database) as session:
        enqueue_mail(session, partnership=engine.config.settings.partnership.key,
                     key="held:1", purpose="submission", sender="rr@exampleshire.example",
                     sender_name="Exampleshire", to=["panel@example.org"], subject="Report",
                     text="Attached.", now=queued, not_before=released)
    # When the steps run before and at the release,
    assert "held:1" not in engine.step(queued).dispatch.sent
    assert "held:1" in engine.step(released).dispatch.sent
    # Then its Date: is when it went, not when it was queued.
    (sent,) = [record for record in mailbox.records() if record["subject"] == "Report"]
    assert parsedate_to_datetime(sent["date"]) == released


def test_a_message_that_keeps_failing_becomes_a_dead_letter(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    open_referral(engine)
    engine.retry_policy = RetryPolicy(base_seconds=1, cap_seconds=60, max_attempts=3)
    mailbox.fail_next, mailbox.retry_after = 1000, None
    now = parse_instant("2026-12-21T17:00")
    for minutes in range(0, 30, 2):
        engine.step(now + timedelta(minutes=minutes))
    with transaction(engine.database) as session:
        # Chat rows (the decision ballot) go through the chat channel, not this mailbox.
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.channel == "mail")).all()
        assert rows and {row.status for row in rows} == {"dead"}
        assert {row.attempts for row in rows} == {3}
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "dead_letter")).all()
    assert mailbox.records() == []


def test_a_send_interrupted_after_the_server_took_it_is_found_in_sent_not_resent(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    # Given a row claimed for sending whose process died after the server accepted it,
    open_referral(engine)
    now = parse_instant("2026-12-21T17:00")
    engine.run_due_actions(now)
    with transaction(engine.database) as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.channel == "mail")).first()
        assert row is not None
        row.status, row.claimed_at = "sending", now
        session.add(row)
        message_id = row.message_id
    mailbox.send(_email(message_id))
    # when the lease (60 s in the example config) runs out and the dispatcher comes back,
    assert not engine.step(now + timedelta(seconds=30)).dispatch.found_in_sent
    assert mailbox.send_counts()[message_id] == 1
    report = engine.step(now + timedelta(minutes=2))
    # then it is found in Sent and marked sent without a second copy.
    assert message_id in {m for m in mailbox.send_counts()}
    assert mailbox.send_counts()[message_id] == 1
    assert report.dispatch.found_in_sent


def test_inbound_mail_is_kept_deduplicated_and_never_silently_dropped(
    engine: Engine, mailbox: RecordingMailbox
) -> None:
    raw = (b"From: someone@elsewhere.example\r\nTo: rapidreview@exampleshire.example\r\n"
           b"Subject: hello\r\nMessage-ID: <one@elsewhere.example>\r\n\r\nHi\r\n")
    mailbox.inbox = [FetchedMail("a1", raw), FetchedMail("a2", raw)]
    now = parse_instant("2026-12-21T10:00")
    report = engine.step(now)
    # One message is stored (the second copy has the same Message-ID) and, from a sender the
    # partnership does not know, quarantined with the reason and moved to Quarantine.
    assert report.fetched == 1
    with transaction(engine.database) as session:
        rows = session.exec(select(InboundMessage)).all()
    assert [(r.status, r.reason) for r in rows] == [
        ("quarantined",
         "someone@elsewhere.example is not a configured contact or agency domain")
    ]
    assert ("a1", "Quarantine") in mailbox.moved
    # The second copy follows its original to the same folder on the next step.
    assert engine.step(now).fetched == 0
    assert ("a2", "Quarantine") in mailbox.moved


def test_an_illegal_transition_raises_and_changes_nothing(engine: Engine) -> None:
    reference = open_referral(engine)
    # Opening the case opened the partners' decision ballot, so the case awaits the decision.
    with pytest.raises(IllegalTransition,
                       match="cannot go from awaiting_decision to submitted"):
        with transaction(engine.database) as session:
            case = session.exec(select(Case).where(Case.reference == reference)).one()
            transition(session, case, "submitted", "test", REFERRAL)
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        assert case.status == "awaiting_decision"
        transition(session, case, "rapid_review", "test", REFERRAL)
    with transaction(engine.database) as session:
        assert session.exec(select(Case)).one().status == "rapid_review"


def test_naive_datetimes_are_refused_by_the_database(engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        with transaction(engine.database) as session:
            session.add(PlannedAction(partnership="x", key="k", action="a",
                                      due_at=datetime(2026, 1, 1)))
            session.flush()


def test_audit_verify_names_the_first_edited_entry(engine: Engine) -> None:
    open_referral(engine)
    engine.step(parse_instant("2026-12-21T17:00"))
    with transaction(engine.database) as session:
        checks = audit.verify(session)
        assert [check.ok for check in checks] == [True]
        target = session.exec(select(AuditEntry).order_by(AuditEntry.id).offset(3)).first()
        assert target is not None
        session.exec(update(AuditEntry).where(AuditEntry.id == target.id)  # type: ignore[call-overload]
                     .values(actor="someone else"))
    with transaction(engine.database) as session:
        (check,) = audit.verify(session)
    assert check.first_broken_id == target.id


def test_rrbot_audit_verify_fails_on_an_edited_entry(tmp_path: Path) -> None:
    # Given a config on the embedded default and a case with some history,
    config = write_config(tmp_path, database_url=EMBEDDED_DATABASE)
    runner = CliRunner()
    opened = runner.invoke(app, ["case", "open", "--config", str(config),
                                 "--start", "2026-12-18T10:00", "--now", "2026-12-18T10:01"])
    assert opened.exit_code == 0, opened.output
    intact = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert intact.exit_code == 0, intact.output
    # when one entry is edited behind the bot's back,
    database = build_engine(read_config(config),
                            RecordingMailbox(tmp_path / "sent.jsonl")).database
    with transaction(database) as session:
        session.exec(update(AuditEntry).where(AuditEntry.id == 2)  # type: ignore[call-overload]
                     .values(detail="{}"))
    database.dispose()
    # then `rrbot audit verify` exits 1 and names the entry.
    broken = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert broken.exit_code == 1, broken.output
    assert "BROKEN at entry 2" in broken.output


@pytest.mark.slow
def test_rrbot_tick_drives_a_case_from_day_0_to_day_15(tmp_path: Path) -> None:
    # Given a config on the embedded default in a folder of its own,
    config = write_config(tmp_path, database_url=EMBEDDED_DATABASE, closure_dates=[])
    runner = CliRunner()
    opened = runner.invoke(app, ["case", "open", "--config", str(config),
                                 "--start", "2026-12-18T10:00", "--now", "2026-12-18T10:01"])
    assert opened.exit_code == 0, opened.output
    # when rrbot tick runs at the end of each working day of the Christmas fortnight,
    overdue_by_day: dict[str, list[str]] = {}
    for day in ["2026-12-21", "2026-12-22", "2026-12-23", "2026-12-29", "2026-12-31",
                "2027-01-05", "2027-01-07", "2027-01-11", "2027-01-12", "2027-01-13"]:
        result = runner.invoke(app, ["tick", "--config", str(config), "--now", f"{day}T17:00"])
        assert result.exit_code == 0, result.output
        listing = runner.invoke(app, ["cases", "--config", str(config), "--json",
                                      "--now", f"{day}T17:00"])
        overdue_by_day[day] = __import__("json").loads(listing.stdout)[0]["overdue"]
    # then each milestone has become overdue on the day the Oldham preset says.
    first_seen: dict[str, str] = {}
    for day, keys in overdue_by_day.items():
        for key in keys:
            first_seen.setdefault(key, day)
    assert first_seen == {
        "acknowledge": "2026-12-21", "partner_decision": "2026-12-21",
        "agency_requests": "2026-12-22", "decision_feedback": "2026-12-23",
        "notify_national_panel": "2026-12-29", "agency_returns_due": "2026-12-31",
        "collation": "2027-01-05", "rr_meeting": "2027-01-07", "draft_report": "2027-01-11",
        "partner_signoff": "2027-01-12", "submit_national_panel": "2027-01-13",
    }
    verify = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert verify.exit_code == 0 and "intact" in verify.stdout


def _email(message_id: str) -> Any:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Message-ID"] = message_id
    message["To"] = "x@example.org"
    message["Subject"] = "stand-in for the message the server accepted"
    message.set_content("body")
    return message


def test_utc_round_trip(engine: Engine) -> None:
    reference = open_referral(engine)
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
    assert case.clock_start == datetime(2026, 12, 18, 10, tzinfo=UTC)
    assert case.clock_start.tzinfo is not None


def test_a_message_that_breaks_its_batch_is_quarantined_alone(
    engine: Engine, mailbox: RecordingMailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three messages, one of which makes its whole transaction fail (not just a handler),
    def raw(number: int) -> bytes:
        return (f"From: someone@elsewhere.example\r\nSubject: note {number}\r\n"
                f"Message-ID: <{number}@elsewhere.example>\r\n\r\nHi\r\n").encode()

    mailbox.inbox = [FetchedMail(f"m{n}", raw(n)) for n in range(3)]
    original = Engine._handle

    def failing(self: Engine, session: Any, row: InboundMessage, now: datetime) -> Any:
        if row.server_id == "m1":
            raise RuntimeError("the database refused this row")
        return original(self, session, row, now)

    monkeypatch.setattr(Engine, "_handle", failing)
    # when the engine steps,
    engine.step(parse_instant("2026-12-21T10:00"))
    # then the other two are handled as usual and only that one is quarantined as an error.
    with transaction(engine.database) as session:
        rows = {r.server_id: (r.status, r.kind) for r in session.exec(select(InboundMessage))}
    assert rows == {"m0": ("quarantined", "unverified_sender"),
                    "m1": ("quarantined", "handler_error"),
                    "m2": ("quarantined", "unverified_sender")}
    assert sorted(server_id for server_id, _ in mailbox.moved) == ["m0", "m1", "m2"]


class UnreachableInbox(RecordingMailbox):
    """A recording mailbox whose inbox server is down: fetching fails, sending still works."""

    def fetch_new(self) -> Iterator[FetchedMail]:
        raise TransientMailboxError("imap.exampleshire.example:993: connection refused")


def test_an_unreachable_inbox_does_not_stop_deadlines_or_the_outbox(
    database_url: str, tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    # Given an Oldham case whose Day 1 deadlines fall at 17:00, and an inbox that is down,
    mailbox = UnreachableInbox(tmp_path / "sent.jsonl")
    engine = build_engine(oldham(make_config, database_url), mailbox)
    reference = open_referral(engine)
    # when the engine steps at the deadline,
    report = engine.step(parse_instant("2026-12-21T17:00"))
    # then the failure is reported, and the milestones still went overdue and the business
    # manager was still told, through the outbox.
    assert report.mailbox_error is not None and "connection refused" in report.mailbox_error
    assert milestone_status(engine)["partner_decision"] == "overdue"
    assert report.actions and report.dispatch.sent
    assert any("OVERDUE" in record["subject"] and reference in record["subject"]
               for record in mailbox.records())
    engine.database.dispose()


class StuckMessageMailbox(RecordingMailbox):
    """A recording mailbox in which one message can never be moved out of the inbox."""

    def mark_processed(self, server_id: str, folder: str) -> None:
        if server_id == "stuck":
            raise MailboxError("the server refused to move message stuck")
        super().mark_processed(server_id, folder)


def test_a_message_that_will_not_move_holds_up_neither_others_nor_the_step(
    database_url: str, tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    # Given two auto-replies in the inbox, the first of which the server will not move,
    mailbox = StuckMessageMailbox(tmp_path / "sent.jsonl")
    engine = build_engine(oldham(make_config, database_url), mailbox)
    for server_id in ("stuck", "fine"):
        mailbox.inbox.append(FetchedMail(server_id, (
            f"From: someone@outside.example\r\nTo: rapidreview@exampleshire.example\r\n"
            f"Subject: Out of office\r\nMessage-ID: <{server_id}@outside.example>\r\n"
            "Auto-Submitted: auto-replied\r\n\r\nI am away.\r\n").encode()))
    # when the engine steps twice,
    first = engine.step(parse_instant("2026-12-21T10:00"))
    second = engine.step(parse_instant("2026-12-21T10:01"))
    # then both were handled once, the other one was moved, and the stuck one is only
    # tried again (never handled again), without failing either step.
    assert first.handled == ["out_of_office", "out_of_office"] and second.handled == []
    assert mailbox.moved == [("fine", "Processed")]
    assert first.mailbox_error is None and second.mailbox_error is None
    engine.database.dispose()


def test_a_doncaster_case_is_counted_from_the_national_panel_notification(
    database_url: str, tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    # Given a Doncaster case referred on Monday 1 February 2027, provisionally dated from then,
    # (the example's [process] quorum kept: only the preset changes)
    config = make_config(database_url=database_url, closure_dates=[],
                         process={"preset": "doncaster"})
    engine = build_engine(config, RecordingMailbox(tmp_path / "sent.jsonl"))
    referred = parse_instant("2027-02-01T10:00")
    with transaction(engine.database) as session:
        case = open_case(session, config, referred, referred, actor="test")
        due = {m.key: m.due_at for m in session.exec(
            select(Milestone).where(Milestone.case_id == case.id))}
        # the notification is due within five working days of becoming aware (Mon 8 Feb),
        assert due["notify_national_panel"] == parse_instant("2027-02-08T17:00")
        # when the local authority notifies the National Panel on Thursday 4 February,
        mark_milestone_done(session, config, case, "notify_national_panel",
                            parse_instant("2027-02-04T11:00"), "business manager")
        # then Day 0 is the notification's date, and the steps still to come are counted
        # from it: requests by Day 5 (Thu 11 Feb), the report by Day 15 (Thu 25 Feb).
        assert case.day0.isoformat() == "2027-02-04"
        due = {m.key: m.due_at for m in session.exec(
            select(Milestone).where(Milestone.case_id == case.id))}
        assert due["agency_requests"].astimezone(LONDON).date().isoformat() == "2027-02-11"
        assert due[SUBMISSION_KEY].astimezone(LONDON).date().isoformat() == "2027-02-25"
        planned = session.exec(select(PlannedAction).where(
            PlannedAction.key == f"{case.reference}:{SUBMISSION_KEY}:due")).one()
        assert planned.due_at == due[SUBMISSION_KEY]
        # The submission's at-risk warnings moved with the cut-off, to its last day.
        warning = session.exec(select(PlannedAction).where(
            PlannedAction.key == f"{case.reference}:risk:unconfirmed")).one()
        assert warning.due_at.astimezone(LONDON).date().isoformat() == "2027-02-25"
        assert session.exec(select(AuditEntry).where(
            AuditEntry.action == "clock_restarted")).first() is None  # chained at commit
    with transaction(engine.database) as session:
        restarted = session.exec(select(AuditEntry).where(
            AuditEntry.action == "clock_restarted")).one()
    assert '"previous_day0": "2027-02-01"' in restarted.detail
    engine.database.dispose()

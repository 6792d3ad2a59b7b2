"""`rrbot request add/extend/withdraw/received/list`: the business manager's changes, end to end."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.cases.lifecycle import open_case
from bot.cases.states import TRANSITIONS, transition
from bot.cli.main import app
from bot.engine.step import Engine
from bot.kernel.events import publish
from bot.process.working_days import LONDON, parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import (
    AgencyRequest,
    AuditEntry,
    Case,
    Milestone,
    OutboxMessage,
    PlannedAction,
)
from tests.factories import read_config, write_config
from tests.recording import RecordingChat, RecordingMailbox

REFERENCE = "RR-2026-001"
# Referral on Friday 18 December 2026 (Day 0); the partners decide on Monday 21 December, Day 1.
# With no closures, 25 and 28 December and 1 January are the only working days lost: Oldham's
# Day 7, the returns deadline, is Thursday 31 December 17:00. The GP and the hospital are
# always asked; school and housing only when named or added.
REFERRAL = parse_instant("2026-12-18T10:00")
DECIDED = parse_instant("2026-12-21T14:00")


def decided_case(tmp_path: Path, preset: str = "oldham") -> tuple[Path, Engine]:
    """Open the case and have the partners decide on a Rapid Review at DECIDED; step once."""
    # The example with a database in tmp_path, no closures and the preset (its quorum kept).
    config_file = write_config(tmp_path, name="rrbot.toml", closure_dates=[],
                               process={"preset": preset})
    config = read_config(config_file)
    engine = build_engine(config, RecordingMailbox(tmp_path / "sent.jsonl"),
                          RecordingChat(tmp_path / "chat.jsonl"))
    with transaction(engine.database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        assert case.reference == REFERENCE
        for status in ("awaiting_decision", "rapid_review"):
            if status in TRANSITIONS[case.status]:
                transition(session, case, status, "test", DECIDED)
        publish("case_decided", session, config, case, DECIDED, decision="rapid_review")
    engine.step(DECIDED)
    return config_file, engine


def rrbot(config_file: Path, *arguments: str) -> Any:
    """Run `rrbot request <command> --config FILE <arguments...>` through the real CLI."""
    return CliRunner().invoke(app, ["request", arguments[0], "--config", str(config_file),
                                    *arguments[1:]])


def london(instant: datetime) -> str:
    return instant.astimezone(LONDON).strftime("%a %d %b %Y %H:%M")


def step_at(engine: Engine, *instants: str) -> None:
    for instant in instants:
        engine.step(parse_instant(instant))


def request_row(engine: Engine, agency: str) -> AgencyRequest:
    with transaction(engine.database) as session:
        return session.exec(select(AgencyRequest).where(
            AgencyRequest.agency_key == agency)).one()


def chasing(engine: Engine, agency: str) -> list[tuple[str, str, str, str]]:
    """List each planned chase of an agency: (key after the agency, action, status, due)."""
    prefix = f"{REFERENCE}:agency:{agency}:"
    with transaction(engine.database) as session:
        rows = session.exec(select(PlannedAction).where(
            col(PlannedAction.key).startswith(prefix)).order_by(col(PlannedAction.id))).all()
        return [(row.key.removeprefix(prefix), row.action, row.status, london(row.due_at))
                for row in rows]


def mail_to(engine: Engine, domain: str) -> list[tuple[str, str]]:
    """List (queued at, purpose) of each email queued to an address at the domain."""
    with transaction(engine.database) as session:
        rows = session.exec(select(OutboxMessage).where(
            OutboxMessage.channel == "mail",
            OutboxMessage.recipients.contains(domain))  # type: ignore[attr-defined]
            .order_by(col(OutboxMessage.id))).all()
        return [(london(row.created_at), row.purpose) for row in rows]


def sent_to(engine: Engine, domain: str) -> list[str]:
    """Return the subject of each email the mailbox actually sent to an address at the domain."""
    mailbox = engine.mailbox
    assert isinstance(mailbox, RecordingMailbox)
    return [record["subject"] for record in mailbox.records() if domain in record["to"]]


def table_rows(output: str) -> list[list[str]]:
    """Split each bordered line of a printed table into its cells."""
    rows = [line.strip().replace("┃", "│") for line in output.splitlines()]
    return [[cell.strip() for cell in row.strip("│").split("│")] for row in rows
            if row.count("│") >= 2]


# The GP's chasing for the Oldham deadline, Thursday 31 December 17:00: two and one working
# days before at the deadline's hour, 09:30 on the day, then 09:00 on the next working day.
GP_CHASING = [
    ("remind:0:20261231T1700", "agency_reminder", "Tue 29 Dec 2026 17:00"),
    ("remind:1:20261231T1700", "agency_reminder", "Wed 30 Dec 2026 17:00"),
    ("remind:2:20261231T1700", "agency_final_reminder", "Thu 31 Dec 2026 09:30"),
    ("escalate:20261231T1700:1", "agency_escalation", "Mon 04 Jan 2027 09:00"),
]
# Steps at every one of those instants and the working day after the first escalation.
CHASE_INSTANTS = ("2026-12-29T17:00", "2026-12-30T17:00", "2026-12-31T09:30",
                  "2027-01-04T09:00", "2027-01-05T09:00")


@pytest.mark.parametrize(("preset", "asked", "due", "in_words", "escalated"), [
    # Oldham ("case_deadline") gives a late agency the case's own returns deadline, Day 7,
    # Thursday 31 December 17:00,
    ("oldham", "2026-12-29T10:00", "Thu 31 Dec 2026 17:00", "17:00 on Thursday 31 December 2026",
     "Mon 04 Jan 2027 09:00"),
    # but never less than one working day: asked on Day 7 itself, it has until Monday 4
    # January (1 January is a bank holiday).
    ("oldham", "2026-12-31T10:00", "Mon 04 Jan 2027 17:00", "17:00 on Monday 4 January 2027",
     "Tue 05 Jan 2027 09:00"),
    # Bolton ("from_request") gives it the five working days its plan gives everyone (Day 2
    # to Day 7), counted from the request: asked on Monday 4 January, it has until Monday
    # 11 January at the returns' 17:00, not the case's Wednesday 30 December.
    ("bolton", "2027-01-04T10:00", "Mon 11 Jan 2027 17:00", "17:00 on Monday 11 January 2027",
     "Tue 12 Jan 2027 09:00"),
], ids=["oldham-case-deadline", "oldham-one-working-day-floor", "bolton-from-request"])
def test_an_agency_added_late_gets_the_presets_late_agency_deadline(
    tmp_path: Path, preset: str, asked: str, due: str, in_words: str, escalated: str
) -> None:
    # Given a decided case whose GP and hospital were asked on Day 1,
    config_file, engine = decided_case(tmp_path, preset)
    # when the business manager adds the school,
    result = rrbot(config_file, "add", REFERENCE, "school", "--now", asked)
    # then the school is asked at once, with the deadline the preset's rule gives,
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{REFERENCE}: school open, due {due}"
    school = request_row(engine, "school")
    assert (school.status, london(school.due_at), london(school.asked_at)) == (
        "open", due, london(parse_instant(asked)))
    # in an email to its safeguarding lead that says the deadline in words,
    engine.step(parse_instant(asked))
    assert sent_to(engine, "jamie.education@exampleshire.example") == [
        f"[{REFERENCE}] Rapid Review information request: reply by {in_words}"]
    # and is escalated at 09:00 on the working day after that deadline if it does not reply.
    escalations = [row for row in chasing(engine, "school") if row[1] == "agency_escalation"]
    assert [(status, at) for _key, _action, status, at in escalations] == [
        ("pending", escalated)]


def test_an_agency_already_asked_is_not_added_again(tmp_path: Path) -> None:
    # Given a decided case whose GP was asked on Day 1,
    config_file, engine = decided_case(tmp_path)
    # when the business manager adds the GP again, it is refused with one line,
    result = rrbot(config_file, "add", REFERENCE, "gp", "--now", "2026-12-22T09:00")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"gp was already asked on {REFERENCE}"]
    # and the GP's request and deadline are unchanged.
    assert london(request_row(engine, "gp").due_at) == "Thu 31 Dec 2026 17:00"
    assert [purpose for _at, purpose in mail_to(engine, "gp.example")] == ["agency_request"]


def test_extend_moves_the_agencys_reminders_and_escalation_to_the_new_deadline(
    tmp_path: Path
) -> None:
    # Given the GP asked on Day 1 and reminded on Tuesday 29 December at 17:00,
    config_file, engine = decided_case(tmp_path)
    assert [row[1:] for row in chasing(engine, "gp")] == [
        (action, "pending", due) for _key, action, due in GP_CHASING]
    step_at(engine, "2026-12-29T17:00")
    # when on Wednesday 30 December it is given until Wednesday 6 January 12:00,
    result = rrbot(config_file, "extend", REFERENCE, "gp", "--due", "2027-01-06T12:00",
                   "--now", "2026-12-30T10:00")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{REFERENCE}: gp open, due Wed 06 Jan 2027 12:00"
    # then the reminders still to come on the old deadline are cancelled, and new ones are
    # planned two and one working days before 12:00 on 6 January (Monday 4 and Tuesday 5),
    # at 09:30 on the day, and the escalation at 09:00 on Thursday 7 January,
    assert chasing(engine, "gp") == [
        ("remind:0:20261231T1700", "agency_reminder", "done", "Tue 29 Dec 2026 17:00"),
        ("remind:1:20261231T1700", "agency_reminder", "cancelled", "Wed 30 Dec 2026 17:00"),
        ("remind:2:20261231T1700", "agency_final_reminder", "cancelled",
         "Thu 31 Dec 2026 09:30"),
        ("escalate:20261231T1700:1", "agency_escalation", "cancelled", "Mon 04 Jan 2027 09:00"),
        ("remind:0:20270106T1200", "agency_reminder", "pending", "Mon 04 Jan 2027 12:00"),
        ("remind:1:20270106T1200", "agency_reminder", "pending", "Tue 05 Jan 2027 12:00"),
        ("remind:2:20270106T1200", "agency_final_reminder", "pending", "Wed 06 Jan 2027 09:30"),
        ("escalate:20270106T1200:1", "agency_escalation", "pending", "Thu 07 Jan 2027 09:00"),
    ]
    # and, stepping at the old instants and the new ones, the GP hears only on the new ones.
    step_at(engine, "2026-12-30T17:00", "2026-12-31T09:30", "2027-01-04T09:00",
            "2027-01-04T12:00", "2027-01-05T12:00", "2027-01-06T09:30", "2027-01-07T09:00")
    assert mail_to(engine, "gp.example") == [
        ("Mon 21 Dec 2026 14:00", "agency_request"),
        ("Tue 29 Dec 2026 17:00", "agency_reminder"),
        ("Wed 30 Dec 2026 10:00", "agency_extension"),
        ("Mon 04 Jan 2027 12:00", "agency_reminder"),
        ("Tue 05 Jan 2027 12:00", "agency_reminder"),
        ("Wed 06 Jan 2027 09:30", "agency_final_reminder"),
        ("Thu 07 Jan 2027 09:00", "agency_escalation"),
    ]


def test_an_extension_to_a_past_instant_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    # Given the GP asked on Day 1,
    config_file, engine = decided_case(tmp_path)
    # when the business manager gives it a "new" deadline already past,
    result = rrbot(config_file, "extend", REFERENCE, "gp", "--due", "2026-12-29T12:00",
                   "--now", "2026-12-30T10:00")
    # then it is refused with one line and the GP's chasing stays as it was.
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["the new deadline must be in the future"]
    assert london(request_row(engine, "gp").due_at) == "Thu 31 Dec 2026 17:00"
    assert [(key, action, due) for key, action, _status, due in chasing(engine, "gp")] == (
        GP_CHASING)


def test_a_withdrawn_agency_is_neither_reminded_nor_escalated(tmp_path: Path) -> None:
    # Given the GP and the hospital asked on Day 1 (their requests sent),
    config_file, engine = decided_case(tmp_path)
    assert len(sent_to(engine, "hospital.example")) == 1
    # when the hospital, asked by mistake, is withdrawn on Tuesday 22 December,
    result = rrbot(config_file, "withdraw", REFERENCE, "hospital", "--now", "2026-12-22T09:00")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{REFERENCE}: hospital withdrawn, due Thu 31 Dec 2026 17:00"
    hospital = request_row(engine, "hospital")
    assert (hospital.status, london(hospital.closed_at)) == ("withdrawn", "Tue 22 Dec 2026 09:00")
    # then its reminders and escalation are all cancelled,
    assert {status for _key, _action, status, _due in chasing(engine, "hospital")} == {
        "cancelled"}
    # and stepping past its deadline and through two days of escalation, nothing more goes
    # to anyone at the hospital (its contact, alternate or senior officer),
    step_at(engine, *CHASE_INSTANTS)
    assert mail_to(engine, "hospital.example") == [("Mon 21 Dec 2026 14:00", "agency_request")]
    assert sent_to(engine, "hospital.example") == [
        f"[{REFERENCE}] Rapid Review information request: reply by 17:00 on Thursday"
        " 31 December 2026"]
    # while the GP, still open, is chased at every one of those instants.
    assert mail_to(engine, "gp.example") == [
        ("Mon 21 Dec 2026 14:00", "agency_request"),
        ("Tue 29 Dec 2026 17:00", "agency_reminder"),
        ("Wed 30 Dec 2026 17:00", "agency_reminder"),
        ("Thu 31 Dec 2026 09:30", "agency_final_reminder"),
        ("Mon 04 Jan 2027 09:00", "agency_escalation"),
        ("Tue 05 Jan 2027 09:00", "agency_escalation"),
    ]


def test_a_return_received_another_way_is_recorded_with_its_evidence_and_stops_the_chasing(
    tmp_path: Path
) -> None:
    # Given the GP and the hospital asked on Day 1,
    config_file, engine = decided_case(tmp_path)
    # when the GP's return arrives through the secure portal on Tuesday 29 December,
    result = rrbot(config_file, "received", REFERENCE, "gp", "--evidence",
                   "secure portal, 29 Dec", "--now", "2026-12-29T10:00")
    # then the request is returned, at that instant, audited with the evidence,
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{REFERENCE}: gp returned, due Thu 31 Dec 2026 17:00"
    gp = request_row(engine, "gp")
    assert (gp.status, london(gp.closed_at)) == ("returned", "Tue 29 Dec 2026 10:00")
    with transaction(engine.database) as session:
        closed = session.exec(select(AuditEntry).where(
            AuditEntry.action == "agency_request_closed")).one()
        assert (closed.actor, london(closed.at)) == ("cli", "Tue 29 Dec 2026 10:00")
    detail = json.loads(closed.detail)
    assert (detail["agency"], detail["status"], detail["evidence"]) == (
        "gp", "returned", "secure portal, 29 Dec")
    # its chasing is cancelled, and nothing more goes to the GP past the deadline,
    assert {status for _key, _action, status, _due in chasing(engine, "gp")} == {"cancelled"}
    step_at(engine, *CHASE_INSTANTS)
    assert mail_to(engine, "gp.example") == [("Mon 21 Dec 2026 14:00", "agency_request")]
    # while the hospital, still open, is escalated on Monday 4 January.
    assert ("Mon 04 Jan 2027 09:00", "agency_escalation") in mail_to(engine, "hospital.example")
    # When the hospital's return then comes by hand, the returns are all in: the returns
    # milestone is done at that instant and the case has its returns collected.
    result = rrbot(config_file, "received", REFERENCE, "hospital", "--evidence",
                   "by hand, 5 Jan", "--now", "2027-01-05T11:00")
    assert result.exit_code == 0, result.output
    with transaction(engine.database) as session:
        returns = session.exec(select(Milestone).where(
            Milestone.key == "agency_returns_due")).one()
        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
        assert (returns.status, london(returns.done_at)) == ("done", "Tue 05 Jan 2027 11:00")
        assert case.status == "returns_collected"
    # A return cannot be recorded twice.
    again = rrbot(config_file, "received", REFERENCE, "gp", "--evidence", "again",
                  "--now", "2027-01-05T12:00")
    assert again.exit_code == 2
    assert again.output.strip().splitlines() == [
        f"the request to gp on {REFERENCE} is returned"]


def test_list_shows_each_agency_with_its_status_deadline_and_last_reply(tmp_path: Path) -> None:
    # Given a case where, after the GP and the hospital were asked on Day 1,
    config_file, engine = decided_case(tmp_path)
    # the GP's return came by the portal, the hospital asked for more time and was given it,
    # housing was added, and the school was added by mistake and withdrawn,
    with transaction(engine.database) as session:
        from bot.agencies.requests import record_agency_reply

        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
        record_agency_reply(session, engine.config, case, "hospital", "extension_request",
                            parse_instant("2026-12-22T10:00"), actor="agency")
    for arguments in (
        ("received", REFERENCE, "gp", "--evidence", "portal", "--now", "2026-12-22T11:00"),
        ("extend", REFERENCE, "hospital", "--due", "2027-01-06T12:00",
         "--now", "2026-12-22T12:00"),
        ("add", REFERENCE, "housing", "--now", "2026-12-22T13:00"),
        ("add", REFERENCE, "school", "--now", "2026-12-22T14:00"),
        ("withdraw", REFERENCE, "school", "--now", "2026-12-22T15:00"),
    ):
        assert rrbot(config_file, *arguments).exit_code == 0
    # when the business manager lists the requests,
    result = rrbot(config_file, "list", REFERENCE)
    # then each agency shows, in the order asked, with its status and London deadline.
    assert result.exit_code == 0, result.output
    assert f"{REFERENCE}: agency requests" in result.output
    assert table_rows(result.output) == [
        ["Agency", "Status", "Due", "Last reply", "Contact"],
        ["gp", "returned", "Thu 31 Dec 17:00", "-", "ok"],
        ["hospital", "open", "Wed 06 Jan 12:00", "extension_request", "ok"],
        ["housing", "open", "Thu 31 Dec 17:00", "-", "ok"],
        ["school", "withdrawn", "Thu 31 Dec 17:00", "-", "ok"],
    ]


def test_list_of_an_unknown_case_is_one_line(tmp_path: Path) -> None:
    config_file, _engine = decided_case(tmp_path)
    result = rrbot(config_file, "list", "RR-2026-999")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["no case 'RR-2026-999'"]


def test_withdrawing_the_last_outstanding_agency_completes_the_returns(tmp_path: Path) -> None:
    # Given the GP's return received, and the hospital still outstanding,
    config_file, engine = decided_case(tmp_path)
    assert rrbot(config_file, "received", REFERENCE, "gp", "--evidence", "portal",
                 "--now", "2026-12-29T10:00").exit_code == 0
    # when the hospital, asked by mistake, is withdrawn,
    assert rrbot(config_file, "withdraw", REFERENCE, "hospital",
                 "--now", "2026-12-29T11:00").exit_code == 0
    # then the returns are all in: the milestone is done then, and no overdue warning comes.
    step_at(engine, "2026-12-31T17:00")
    with transaction(engine.database) as session:
        returns = session.exec(select(Milestone).where(
            Milestone.key == "agency_returns_due")).one()
        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
        overdue = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "milestone_overdue",
            col(OutboxMessage.idempotency_key).contains("agency_returns_due"))).all()
    assert (returns.status, london(returns.done_at)) == ("done", "Tue 29 Dec 2026 11:00")
    assert case.status == "returns_collected" and overdue == []


def test_an_agency_withdrawn_and_added_again_is_asked_and_chased_again(tmp_path: Path) -> None:
    # Given Oldham ("case_deadline": a late agency gets the case's returns deadline), the
    # hospital asked on Day 1 and withdrawn on Tuesday 22 December,
    config_file, engine = decided_case(tmp_path)
    withdrawn = rrbot(config_file, "withdraw", REFERENCE, "hospital", "--now", "2026-12-22T09:00")
    assert withdrawn.exit_code == 0, withdrawn.output
    # when the business manager adds it again the next day (the same deadline as before),
    added = rrbot(config_file, "add", REFERENCE, "hospital", "--now", "2026-12-23T10:00")
    assert added.exit_code == 0, added.output
    assert added.output.strip() == f"{REFERENCE}: hospital open, due Thu 31 Dec 2026 17:00"
    # then it is asked again and chased like any open request, in a round of its own,
    step_at(engine, "2026-12-23T10:00", *CHASE_INSTANTS)
    assert mail_to(engine, "hospital.example") == [
        ("Mon 21 Dec 2026 14:00", "agency_request"),
        ("Wed 23 Dec 2026 10:00", "agency_request"),
        ("Tue 29 Dec 2026 17:00", "agency_reminder"),
        ("Wed 30 Dec 2026 17:00", "agency_reminder"),
        ("Thu 31 Dec 2026 09:30", "agency_final_reminder"),
        ("Mon 04 Jan 2027 09:00", "agency_escalation"),
        ("Tue 05 Jan 2027 09:00", "agency_escalation"),
    ]
    assert len(sent_to(engine, "hospital.example")) == 2 + 5
    # while the first round's reminders and escalation stay cancelled.
    first_round = [row for row in chasing(engine, "hospital") if not row[0].startswith("round")]
    assert first_round and {status for _key, _action, status, _due in first_round} == {
        "cancelled"}


@pytest.mark.parametrize(("back", "expected"), [
    # Down from Tuesday 5 January to Saturday 9 January: nothing at the weekend; the missed
    # second escalation goes at 09:00 on Monday 11 January, the third on Tuesday.
    (("2027-01-09T10:00", "2027-01-10T12:00"),
     ["Mon 04 Jan 2027 09:00", "Mon 11 Jan 2027 09:00", "Tue 12 Jan 2027 09:00"]),
    # Down until 10:00 on Wednesday 6 January: the missed escalation does not go that day
    # beside Wednesday's own, but at 09:00 on Thursday, once, and the next on Friday.
    (("2027-01-06T10:00", "2027-01-06T15:00", "2027-01-07T09:00", "2027-01-08T09:00"),
     ["Mon 04 Jan 2027 09:00", "Thu 07 Jan 2027 09:00", "Fri 08 Jan 2027 09:00"]),
])
def test_catching_up_after_downtime_escalates_once_a_working_day_and_never_on_a_day_off(
    tmp_path: Path, back: tuple[str, ...], expected: list[str]
) -> None:
    # Given the GP, asked on Day 1, chased to its deadline and escalated on Monday 4 January,
    _config_file, engine = decided_case(tmp_path)
    step_at(engine, *CHASE_INSTANTS[:4])
    # when the bot is down from then until a later instant and steps again,
    step_at(engine, *back, "2027-01-11T09:00", "2027-01-11T12:00", "2027-01-12T09:00")
    # then each escalation goes at 09:00 on a working day, one a day, none missed twice.
    escalated = [at for at, purpose in mail_to(engine, "gp.example")
                 if purpose == "agency_escalation"]
    assert escalated[:3] == expected
    days = [at[:15] for at in escalated]
    assert len(days) == len(set(days))
    assert not any(at.startswith(("Sat", "Sun")) for at in escalated)

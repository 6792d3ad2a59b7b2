"""`rrbot report add`: a stored version, its sign-off ballot and mail; the no-report warning."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from email import message_from_bytes, policy
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
    AuditEntry,
    Ballot,
    Case,
    Document,
    Milestone,
    OutboxMessage,
    PlannedAction,
)
from tests.factories import read_config
from tests.recording import RecordingChat, RecordingMailbox

REFERENCE = "RR-2026-001"
# Oldham, referral Friday 18 December 2026: the partners decide on Day 1, Monday 21 December;
# the sign-off closes at 16:00 on Day 14, Tuesday 12 January 2027, and the cut-off is 16:00 on
# Day 15, Wednesday 13 January (no closures; 25 and 28 December and 1 January are holidays).
REFERRAL = parse_instant("2026-12-18T10:00")
DECIDED = parse_instant("2026-12-21T14:00")
# Day 13, Monday 11 January 2027, 10:00: the report arrives.
REPORT_AT = "2027-01-11T10:00"
REPORT = b"PK\x03\x04 fictional Rapid Review report, version 1"
MANAGER = "sam.example@exampleshire.example"
# The sign-off goes to every lead and deputy of the three partners.
MEMBERS = {"alex.director@exampleshire.example", "jo.deputy@exampleshire.example",
           "chris.superintendent@police.example", "pat.nurse@icb.example"}


@pytest.fixture
def config_file(make_config_file: Callable[..., Path]) -> Path:
    """Write the example config with a database in tmp_path and no closures."""
    return make_config_file(name="rrbot.toml", closure_dates=[])


def decided_case(config_file: Path, tmp_path: Path) -> Engine:
    """Open the Oldham case and have the partners decide on a Rapid Review on Day 1."""
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
    return engine


@pytest.fixture
def engine(config_file: Path, tmp_path: Path) -> Engine:
    return decided_case(config_file, tmp_path)


def rrbot(config_file: Path, *arguments: str) -> Any:
    """Run `rrbot <group> <command> --config FILE <arguments...>` through the real CLI."""
    return CliRunner().invoke(app, [arguments[0], arguments[1], "--config", str(config_file),
                                    *arguments[2:]])


def london(instant: datetime | None) -> str:
    assert instant is not None
    return instant.astimezone(LONDON).strftime("%a %d %b %Y %H:%M")


def rows(engine: Engine, purpose: str) -> list[OutboxMessage]:
    with transaction(engine.database) as session:
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == purpose).order_by(col(OutboxMessage.id))).all())


def signoff_ballots(engine: Engine) -> list[Ballot]:
    with transaction(engine.database) as session:
        return list(session.exec(select(Ballot).where(Ballot.kind == "signoff")
                                 .order_by(col(Ballot.id))).all())


def attachments(row: OutboxMessage) -> list[tuple[str, bytes]]:
    message = message_from_bytes(row.payload, policy=policy.default)
    return [(str(part.get_filename()), part.get_content())
            for part in message.iter_attachments()]


def sent(engine: Engine) -> list[dict[str, str]]:
    mailbox = engine.mailbox
    assert isinstance(mailbox, RecordingMailbox)
    return mailbox.records()


def test_report_add_stores_the_version_opens_the_signoff_ballot_and_mails_the_partners(
    engine: Engine, config_file: Path, tmp_path: Path
) -> None:
    # Given a decided case and the report as a .docx on the business manager's disk,
    report = tmp_path / "rapid-review-report.docx"
    report.write_bytes(REPORT)
    digest = hashlib.sha256(REPORT).hexdigest()
    # when it is added on Day 13 with `rrbot report add`,
    result = rrbot(config_file, "report", "add", REFERENCE, str(report), "--now", REPORT_AT)
    # then the command names the version by its SHA-256,
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f"{REFERENCE}: report version {digest[:12]} stored; sign-off ballot open")
    # the version is stored byte for byte, audited as version 1 by the CLI,
    with transaction(engine.database) as session:
        (stored,) = session.exec(select(Document).where(Document.kind == "report")).all()
        audited = session.exec(select(AuditEntry).where(
            AuditEntry.action == "report_version")).one()
        draft = session.exec(select(Milestone).where(Milestone.key == "draft_report")).one()
        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
    assert (stored.filename, stored.sha256, stored.size) == (
        "rapid-review-report.docx", digest, len(REPORT))
    assert Path(stored.path).read_bytes() == REPORT
    assert (audited.actor, json.loads(audited.detail)["sha256"],
            json.loads(audited.detail)["version"]) == ("cli", digest, 1)
    # the draft is done at that instant and the case awaits sign-off of this version,
    assert (draft.status, london(draft.done_at)) == ("done", "Mon 11 Jan 2027 10:00")
    assert case.status == "draft_report"
    (ballot,) = signoff_ballots(engine)
    assert (ballot.status, ballot.report_sha256, ballot.needed, london(ballot.closes_at)) == (
        "open", digest, 2, "Tue 12 Jan 2027 16:00")
    # and every partner lead and deputy is emailed the report, attached, once each,
    requests = rows(engine, "signoff_request")
    assert sorted(row.recipients for row in requests) == sorted(MEMBERS)
    assert {london(row.created_at) for row in requests} == {"Mon 11 Jan 2027 10:00"}
    for row in requests:
        assert attachments(row) == [("rapid-review-report.docx", REPORT)]
    # which the next step sends.
    engine.step(parse_instant(REPORT_AT))
    assert {row.status for row in rows(engine, "signoff_request")} == {"sent"}
    mailed = [record for record in sent(engine)
              if record["subject"].startswith(f"[{REFERENCE}] Sign-off needed")]
    assert sorted(record["to"] for record in mailed) == sorted(MEMBERS)


def test_a_new_version_replaces_the_open_ballot_and_goes_to_the_partners_again(
    engine: Engine, config_file: Path, tmp_path: Path
) -> None:
    # Given version 1 added on Day 13 at 10:00,
    first, second = tmp_path / "v1.docx", tmp_path / "v2.pdf"
    first.write_bytes(REPORT)
    second.write_bytes(b"%PDF-1.7 fictional report, version 2")
    assert rrbot(config_file, "report", "add", REFERENCE, str(first),
                 "--now", REPORT_AT).exit_code == 0
    # when version 2 (a PDF) is added at 15:00,
    result = rrbot(config_file, "report", "add", REFERENCE, str(second),
                   "--now", "2027-01-11T15:00")
    assert result.exit_code == 0, result.output
    # then the first ballot is superseded and a new one is open on version 2,
    old, new = signoff_ballots(engine)
    digest = hashlib.sha256(second.read_bytes()).hexdigest()
    assert (old.status, old.outcome) == ("closed", "superseded")
    assert (new.status, new.report_sha256) == ("open", digest)
    # and each member is sent version 2 as well.
    latest = [row for row in rows(engine, "signoff_request")
              if row.idempotency_key.startswith(f"{REFERENCE}:ballot:{new.id}:")]
    assert sorted(row.recipients for row in latest) == sorted(MEMBERS)
    assert {attachments(row)[0][0] for row in latest} == {"v2.pdf"}


def test_a_report_that_is_not_docx_or_pdf_is_refused_with_one_line(
    engine: Engine, config_file: Path, tmp_path: Path
) -> None:
    # Given an executable named as the report,
    program = tmp_path / "report.exe"
    program.write_bytes(b"MZ\x90\x00 not a report")
    # when it is added,
    result = rrbot(config_file, "report", "add", REFERENCE, str(program), "--now", REPORT_AT)
    # then it is refused with one line and exit status 2,
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["a report must be .docx or .pdf, not .exe"]
    # and nothing is stored, no sign-off ballot opens and nobody is emailed.
    with transaction(engine.database) as session:
        assert session.exec(select(Document).where(Document.kind == "report")).all() == []
    assert signoff_ballots(engine) == []
    assert rows(engine, "signoff_request") == []


def test_an_empty_report_is_refused_with_one_line_and_opens_no_ballot(
    engine: Engine, config_file: Path, tmp_path: Path
) -> None:
    # Given a .docx of no bytes (a file saved while the disk was full, say),
    empty = tmp_path / "report.docx"
    empty.write_bytes(b"")
    # when it is added,
    result = rrbot(config_file, "report", "add", REFERENCE, str(empty), "--now", REPORT_AT)
    # then it is refused with one line and exit status 2, and nothing is stored or sent.
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "report.docx is empty; no new report version is taken"]
    with transaction(engine.database) as session:
        assert session.exec(select(Document).where(Document.kind == "report")).all() == []
    assert signoff_ballots(engine) == []
    assert rows(engine, "signoff_request") == []


NO_REPORT_PROBLEM = "no version of the Rapid Review report has been received"
# Oldham takes the default: noon on the working day before the cut-off, Day 14 12:00. A
# configuration may set its own offset, here two working days before at 10:00 (Day 13).
NO_REPORT_RULES = [
    ("", "Tue 12 Jan 2027 12:00", "2027-01-12T12:00"),
    ('[process.submission]\nno_report_warning = { working_days_before = 2, at = "10:00" }\n',
     "Mon 11 Jan 2027 10:00", "2027-01-11T10:00"),
]


def no_report_warnings(engine: Engine) -> list[tuple[str, str]]:
    return [(row.recipients, london(row.created_at)) for row in rows(engine, "submission_risk")
            if f"{REFERENCE}:risk:no_report:" in row.idempotency_key]


@pytest.mark.parametrize(("override", "planned_at", "warn_at"), NO_REPORT_RULES,
                         ids=["oldham-default", "configured-offset"])
def test_the_no_report_warning_goes_to_the_business_manager_at_the_presets_time(
    config_file: Path, tmp_path: Path, override: str, planned_at: str, warn_at: str
) -> None:
    # Given an Oldham case (with any override of the warning's offset) and no report yet,
    config_file.write_text(config_file.read_text(encoding="utf-8") + override, "utf-8")
    engine = decided_case(config_file, tmp_path)
    with transaction(engine.database) as session:
        check = session.exec(select(PlannedAction).where(
            PlannedAction.key == f"{REFERENCE}:risk:no_report")).one()
    assert (check.action, check.status, london(check.due_at)) == (
        "submission_risk", "pending", planned_at)
    # when the case is stepped a minute before that time, nobody is warned yet;
    engine.step(parse_instant(warn_at) - timedelta(minutes=1))
    assert no_report_warnings(engine) == []
    # at that time, the business manager alone is warned that no report has been received,
    engine.step(parse_instant(warn_at))
    assert no_report_warnings(engine) == [(MANAGER, planned_at)]
    warned = [record for record in sent(engine)
              if record["subject"] == f"[{REFERENCE}] At risk: {NO_REPORT_PROBLEM}"]
    assert [record["to"] for record in warned] == [MANAGER]
    # and only once, however often the case is stepped afterwards.
    engine.step(parse_instant(warn_at) + timedelta(minutes=30))
    assert no_report_warnings(engine) == [(MANAGER, planned_at)]


@pytest.mark.parametrize(("override", "planned_at", "warn_at"), NO_REPORT_RULES,
                         ids=["oldham-default", "configured-offset"])
def test_the_no_report_warning_is_not_sent_once_a_report_was_added(
    config_file: Path, tmp_path: Path, override: str, planned_at: str, warn_at: str
) -> None:
    # Given the same case, whose report was added with `rrbot report add` on Day 13 at 09:00,
    config_file.write_text(config_file.read_text(encoding="utf-8") + override, "utf-8")
    engine = decided_case(config_file, tmp_path)
    report = tmp_path / "report.docx"
    report.write_bytes(REPORT)
    added = rrbot(config_file, "report", "add", REFERENCE, str(report),
                  "--now", "2027-01-11T09:00")
    assert added.exit_code == 0, added.output
    # when the case is stepped at the warning's time and after it,
    engine.step(parse_instant(warn_at))
    engine.step(parse_instant(warn_at) + timedelta(minutes=30))
    # then the check ran, and nobody was told that there is no report.
    with transaction(engine.database) as session:
        check = session.exec(select(PlannedAction).where(
            PlannedAction.key == f"{REFERENCE}:risk:no_report")).one()
    assert (check.status, london(check.due_at)) == ("done", planned_at)
    assert no_report_warnings(engine) == []
    assert not [record for record in sent(engine) if NO_REPORT_PROBLEM in record["subject"]]

"""The cut-off, holds and resubmission: the report never goes late unasked, and is confirmed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.members import members
from bot.ballots.voting import cast_vote
from bot.cases.lifecycle import open_case
from bot.cli.main import app
from bot.engine.step import Engine
from bot.kernel.dispatch import RetryPolicy
from bot.process.working_days import parse_instant
from bot.report.submission import add_report_version
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import AuditEntry, Case, OutboxMessage
from tests.factories import read_config
from tests.recording import RecordingMailbox

REFERRAL = parse_instant("2026-12-18T10:00")
# Oldham's Day 15 for a referral on Friday 18 December 2026: Wednesday 13 January, 16:00.
CUTOFF = parse_instant("2027-01-13T16:00")


@pytest.fixture
def config_file(make_config_file: Callable[..., Path]) -> Path:
    """Write the example config with a database in tmp_path and no closures."""
    return make_config_file(name="rrbot.toml", closure_dates=[])


@pytest.fixture
def engine(config_file: Path, tmp_path: Path) -> Engine:
    config = read_config(config_file)
    return build_engine(config, RecordingMailbox(tmp_path / "sent.jsonl"))


def signed_off_case(engine: Engine, at: datetime) -> str:
    """Open a case, store a report and have two partner leads approve it at the given time."""
    with transaction(engine.database) as session:
        case = open_case(session, engine.config, REFERRAL, REFERRAL, actor="test")
        add_report_version(session, engine.config, case, "report.docx", b"PK-report", at,
                           "test")
        ballot = ballot_for_case(session, case, "signoff")
        assert ballot is not None
        for partner in ("local_authority", "police"):
            lead = next(member for member in members(engine.config)
                        if member.partner_key == partner and member.role == "lead")
            cast_vote(session, engine.config, ballot.id or 0, lead, "approve", "", at,
                      source="chat", delivery_key=f"{partner}:approve")
        return case.reference


def submissions(engine: Engine) -> list[OutboxMessage]:
    with transaction(engine.database) as session:
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "submission").order_by(col(OutboxMessage.id))).all())


def pending_mail(engine: Engine) -> int:
    """Count the emails waiting to go, so that a test can make every one of them fail."""
    with transaction(engine.database) as session:
        return len(session.exec(select(OutboxMessage).where(
            OutboxMessage.channel == "mail", OutboxMessage.status == "pending")).all())


def panel_mail(engine: Engine) -> list[dict[str, str]]:
    mailbox = engine.mailbox
    assert isinstance(mailbox, RecordingMailbox)
    panel = engine.config.settings.national_panel.email
    return [record for record in mailbox.records() if panel in record["to"]]


def case_row(engine: Engine, reference: str) -> Case:
    with transaction(engine.database) as session:
        return session.exec(select(Case).where(Case.reference == reference)).one()


def rrbot(config_file: Path, *arguments: str) -> Any:
    return CliRunner().invoke(app, [arguments[0], arguments[1], "--config", str(config_file),
                                    *arguments[2:]])


def test_a_send_that_failed_before_the_cut_off_is_held_after_it_not_sent_late(
    engine: Engine, config_file: Path
) -> None:
    # Given a report signed off at 15:50 on Day 15, whose first send at 15:55 (with every
    # other message queued) meets a busy server that asks for fifteen minutes,
    reference = signed_off_case(engine, parse_instant("2027-01-13T15:50"))
    mailbox = engine.mailbox
    assert isinstance(mailbox, RecordingMailbox)
    mailbox.fail_next, mailbox.retry_after = pending_mail(engine), 900.0
    engine.step(parse_instant("2027-01-13T15:55"))
    assert [row.status for row in submissions(engine)] == ["pending"]
    # when the retry comes round at 16:10, after the cut-off,
    engine.step(parse_instant("2027-01-13T16:10"))
    # then nothing reaches the Panel: the row is held, audited, and the people told.
    assert panel_mail(engine) == []
    assert [row.status for row in submissions(engine)] == ["held"]
    with transaction(engine.database) as session:
        assert session.exec(select(AuditEntry).where(
            AuditEntry.action == "held_after_cutoff")).one()
    engine.step(parse_instant("2027-01-13T16:15"))
    held_warnings = [row for row in _rows(engine, "submission_risk")
                     if ":risk:held:" in row.idempotency_key]
    assert held_warnings, "the business manager was not told the report is held"
    # Only the business manager's go-ahead sends it, once, flagged late.
    result = rrbot(config_file, "report", "submit", reference, "--late",
                   "--now", "2027-01-13T16:20")
    assert result.exit_code == 0, result.output
    engine.step(parse_instant("2027-01-13T16:20"))
    engine.step(parse_instant("2027-01-13T16:30"))
    sent = panel_mail(engine)
    assert len(sent) == 1 and sent[0]["subject"].startswith("LATE: ")
    assert case_row(engine, reference).submitted_late is True


def test_a_hold_delays_a_queued_submission_which_is_confirmed_when_it_goes(
    engine: Engine, config_file: Path
) -> None:
    # Given a report signed off at 14:00 on Day 14 whose submission is queued but not sent,
    reference = signed_off_case(engine, parse_instant("2027-01-12T14:00"))
    # when the business manager holds it until 10:00 on Day 15,
    result = rrbot(config_file, "report", "hold", reference, "--until", "2027-01-13T10:00",
                   "--now", "2027-01-12T14:01")
    assert result.exit_code == 0, result.output
    assert "the queued submission waits" in result.output
    # then it does not go that afternoon, for all the steps in between,
    step_every_half_hour(engine, "2027-01-12T14:05", "2027-01-13T09:35")
    assert panel_mail(engine) == []
    # it goes at 10:00, and it is confirmed in Sent and recorded, with nobody told otherwise.
    step_every_half_hour(engine, "2027-01-13T10:05", "2027-01-13T15:35")
    assert len(panel_mail(engine)) == 1
    case = case_row(engine, reference)
    assert case.submitted_at == parse_instant("2027-01-13T10:05")
    assert case.submitted_late is False
    assert not [row for row in _rows(engine, "submission_risk")
                if ":risk:unconfirmed:" in row.idempotency_key]
    # A hold past the cut-off is refused with one line.
    late = rrbot(config_file, "report", "hold", reference, "--until", "2027-01-13T16:30")
    assert late.exit_code == 2 and "at or after the cut-off" in late.output


def test_submit_releases_a_held_submission_at_once(engine: Engine, config_file: Path) -> None:
    # Given a submission held until the morning of Day 15,
    reference = signed_off_case(engine, parse_instant("2027-01-12T14:00"))
    assert rrbot(config_file, "report", "hold", reference, "--until", "2027-01-13T10:00",
                 "--now", "2027-01-12T14:01").exit_code == 0
    engine.step(parse_instant("2027-01-12T14:05"))
    assert panel_mail(engine) == []
    # when the business manager says "send it now" after all,
    result = rrbot(config_file, "report", "submit", reference, "--now", "2027-01-12T15:00")
    # then the same row goes at the next step, once.
    assert result.exit_code == 0 and "released and goes now" in result.output, result.output
    engine.step(parse_instant("2027-01-12T15:00"))
    assert len(panel_mail(engine)) == 1 and len(submissions(engine)) == 1


def test_a_submission_given_up_on_can_be_sent_again_with_a_new_message(
    engine: Engine, config_file: Path
) -> None:
    # Given a submission that fails until it is given up on (a dead letter),
    engine.retry_policy = RetryPolicy(max_attempts=1)
    mailbox = engine.mailbox
    assert isinstance(mailbox, RecordingMailbox)
    reference = signed_off_case(engine, parse_instant("2027-01-12T14:00"))
    mailbox.fail_next = pending_mail(engine)
    engine.step(parse_instant("2027-01-12T14:00"))
    assert [row.status for row in submissions(engine)] == ["dead"]
    engine.step(parse_instant("2027-01-12T14:10"))
    assert [row for row in _rows(engine, "submission_risk")
            if ":risk:dead:" in row.idempotency_key], "nobody was told the send failed"
    # when the business manager sends it again once the fault is put right,
    result = rrbot(config_file, "report", "submit", reference, "--now", "2027-01-12T15:00")
    assert result.exit_code == 0, result.output
    engine.step(parse_instant("2027-01-12T15:00"))
    # then a new message (its own key and Message-ID) reaches the Panel, exactly once.
    rows = submissions(engine)
    assert [row.status for row in rows] == ["superseded", "sent"]
    assert rows[0].message_id != rows[1].message_id
    assert len(panel_mail(engine)) == 1


def step_every_half_hour(engine: Engine, first: str, last: str) -> None:
    now, end = parse_instant(first), parse_instant(last)
    while now <= end:
        engine.step(now)
        now = now + (parse_instant("2027-01-01T00:30") - parse_instant("2027-01-01T00:00"))


def _rows(engine: Engine, purpose: str) -> list[OutboxMessage]:
    with transaction(engine.database) as session:
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == purpose)).all())


def test_the_covering_email_gives_the_partners_recommendation_on_a_review(
    engine: Engine, config_file: Path
) -> None:
    # Given a case whose partners recommend a local review, recorded by the business manager,
    with transaction(engine.database) as session:
        reference = open_case(session, engine.config, REFERRAL, REFERRAL, actor="test").reference
    bad = rrbot(config_file, "report", "recommend", reference, "--review", "maybe",
                "--rationale", "x")
    assert bad.exit_code == 2 and "--review: choose local, national, none" in bad.output
    result = rrbot(config_file, "report", "recommend", reference, "--review", "local",
                   "--rationale", "Learning about information sharing across the borough.",
                   "--now", "2027-01-12T09:00")
    assert result.exit_code == 0, result.output
    # when the report is signed off and sent,
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        add_report_version(session, engine.config, case, "report.docx", b"PK-report",
                           parse_instant("2027-01-12T10:00"), "test")
        ballot = ballot_for_case(session, case, "signoff")
        assert ballot is not None
        for partner in ("local_authority", "police"):
            lead = next(member for member in members(engine.config)
                        if member.partner_key == partner and member.role == "lead")
            cast_vote(session, engine.config, ballot.id or 0, lead, "approve", "",
                      parse_instant("2027-01-12T11:00"), source="chat",
                      delivery_key=f"{partner}:approve")
    engine.step(parse_instant("2027-01-12T11:00"))
    # then the covering email says what the partners recommend, and why.
    (row,) = submissions(engine)
    message = message_from_bytes(row.payload, policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "The partners recommend a local child safeguarding practice review." in text
    assert "Learning about information sharing across the borough." in text


def test_the_covering_email_lists_each_attachment_by_name_and_sha256(engine: Engine) -> None:
    # Given a report signed off by two partners,
    import hashlib

    signed_off_case(engine, parse_instant("2027-01-12T10:00"))
    # when the submission is queued,
    engine.step(parse_instant("2027-01-12T10:00"))
    (row,) = submissions(engine)
    message = message_from_bytes(row.payload, policy=policy.default)
    assert isinstance(message, EmailMessage)
    digest = hashlib.sha256(b"PK-report").hexdigest()
    # then both parts of the covering email name the file with its SHA-256, which matches
    # the attachment that goes with it.
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert "Attached (1 file;" in plain.get_content()
    assert f"- report.docx, SHA-256 {digest}" in plain.get_content()
    assert "<td style=\"border: 1px solid #d0d7de;\">report.docx</td>" in html.get_content()
    assert digest in html.get_content()
    (attached,) = list(message.iter_attachments())
    assert hashlib.sha256(attached.get_content()).hexdigest() == digest

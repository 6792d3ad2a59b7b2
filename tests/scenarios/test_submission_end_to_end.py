"""The report to the National Panel by 16:00 on Day 15, through the real IMAP and SMTP servers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.members import members
from bot.ballots.voting import cast_vote
from bot.cases.lifecycle import open_case
from bot.config import Config
from bot.engine.step import Engine
from bot.process.working_days import LONDON, parse_instant
from bot.report.submission import SubmissionRefused, add_report_version, queue_submission
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import Case, OutboxMessage
from tests.factories import build_config, exactly

REFERRAL = parse_instant("2026-12-18T10:00")
PASSWORD = "secret-report"


def imap_config(tmp_path: Path, servers: Any, address: str) -> Config:
    account = {"username": address, "password_env": "RRBOT_TEST_REPORT_PASSWORD",
               "ca_file": str(servers.ca_file)}
    return build_config(tmp_path, closure_dates=[], mailbox={
        "backend": "imap", "address": address,
        "imap": exactly({"host": servers.host, "port": servers.imaps_port, "security": "ssl",
                         **account}),
        "smtp": exactly({"host": servers.host, "port": servers.smtp_port,
                         "security": "starttls", **account}),
    })


def vote(engine: Engine, case_id: int, partner: str, choice: str, at: datetime) -> None:
    with transaction(engine.database) as session:
        case = session.get_one(Case, case_id)
        ballot = ballot_for_case(session, case, "signoff")
        assert ballot is not None and ballot.id is not None
        member = next(m for m in members(engine.config)
                      if m.partner_key == partner and m.role == "lead")
        cast_vote(session, engine.config, ballot.id, member, choice,
                  "" if choice == "approve" else "Section 4 needs the school's account.", at,
                  source="chat", delivery_key=f"{partner}:{ballot.id}:{choice}")


def run_case(engine: Engine, approvals: list[str], until: datetime) -> int:
    """Oldham, referral Fri 18 Dec 2026; v1 Day 12 rejected; v2 Day 13; approvals Day 14."""
    with transaction(engine.database) as session:
        case = open_case(session, engine.config, REFERRAL, REFERRAL, actor="test")
        case_id = case.id or 0
    events: dict[datetime, list[Callable[[datetime], None]]] = {
        # Day 1: the partners decide on a Rapid Review (all three, at 11:00).
        parse_instant("2026-12-21T11:00"): [
            partial(_decide, engine, case_id, partner)
            for partner in ("local_authority", "police", "health")],
        # Day 12, Fri 8 Jan: version 1 arrives; two partners ask for changes.
        parse_instant("2027-01-08T10:00"): [partial(_report, engine, case_id, b"version 1")],
        parse_instant("2027-01-08T15:00"): [
            partial(vote, engine, case_id, partner, "request_changes")
            for partner in ("police", "health")],
        # Day 13, Mon 11 Jan: version 2 arrives.
        parse_instant("2027-01-11T10:00"): [partial(_report, engine, case_id, b"version 2")],
    }
    # Day 14, Tue 12 Jan: the approvals come in at 11:00 and 14:00.
    for hour, partner in zip(("11:00", "14:00"), approvals, strict=False):
        events[parse_instant(f"2027-01-12T{hour}")] = [
            partial(vote, engine, case_id, partner, "approve")]
    now = REFERRAL
    while now <= until:
        for event in events.get(now, []):
            event(now)
        engine.step(now)
        # Working hours every half hour; nights every three hours.
        local = now.astimezone(LONDON)
        now += timedelta(minutes=30) if 8 <= local.hour < 18 else timedelta(hours=3)
        if not 8 <= now.astimezone(LONDON).hour < 18 and 8 <= local.hour < 18:
            now = now.replace(minute=0)
    return case_id


def _decide(engine: Engine, case_id: int, partner: str, at: datetime) -> None:
    with transaction(engine.database) as session:
        case = session.get_one(Case, case_id)
        ballot = ballot_for_case(session, case, "decision")
        if ballot is None or ballot.status != "open":
            return
        member = next(m for m in members(engine.config)
                      if m.partner_key == partner and m.role == "lead")
        cast_vote(session, engine.config, ballot.id or 0, member, "rapid_review",
                  "Serious harm; abuse suspected.", at, source="chat",
                  delivery_key=f"decision:{partner}")


def _report(engine: Engine, case_id: int, text: bytes, at: datetime) -> None:
    with transaction(engine.database) as session:
        add_report_version(session, engine.config, session.get_one(Case, case_id),
                           "rapid-review-report.docx", b"PK-fictional-docx-" + text, at,
                           actor="business_manager")


@pytest.fixture
def imap_engine(tmp_path: Path, mail_servers: Any, monkeypatch: pytest.MonkeyPatch) -> Engine:
    address = mail_servers.new_user("report", password=PASSWORD)
    monkeypatch.setenv("RRBOT_TEST_REPORT_PASSWORD", PASSWORD)
    return build_engine(imap_config(tmp_path, mail_servers, address))


@pytest.mark.slow
def test_version_2_reaches_the_national_panel_once_before_4pm_on_day_15(
    imap_engine: Engine, mail_servers: Any
) -> None:
    # Given an Oldham case where version 1 is sent back and version 2 approved by two partners,
    case_id = run_case(imap_engine, ["police", "health"], parse_instant("2027-01-13T17:00"))
    with transaction(imap_engine.database) as session:
        case = session.get_one(Case, case_id)
        submissions = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "submission")).all()
    # then exactly one submission went, before 16:00 on Wednesday 13 January 2027,
    assert len(submissions) == 1
    (submission,) = submissions
    assert submission.status == "sent" and submission.sent_at is not None
    assert submission.sent_at < parse_instant("2027-01-13T16:00")
    # (and, the report confirmed in Sent, the case awaits the National Panel's response),
    assert case.status == "awaiting_panel_response" and case.submitted_late is False
    # and it sits once in the partnership mailbox's Sent folder on the IMAP server,
    sent = [message_from_bytes(raw, policy=policy.default)
            for raw in mail_servers.messages(imap_engine.mailbox.name, "Sent")]
    copies = [m for m in sent if m["Message-ID"] == submission.message_id]
    assert len(copies) == 1
    (copy,) = copies
    assert copy["To"] == "Mailbox.NationalReviewPanel@education.gov.uk"
    # with version 2 attached, byte for byte.
    (attached,) = [part for part in copy.iter_attachments()]
    assert hashlib.sha256(attached.get_content()).hexdigest() == hashlib.sha256(
        b"PK-fictional-docx-version 2").hexdigest()
    # No warning about the submission was needed.
    with transaction(imap_engine.database) as session:
        risks = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "submission_risk")).all()
    assert [r.idempotency_key for r in risks] == []


@pytest.mark.slow
def test_with_one_approval_nothing_goes_and_the_escalations_fire_on_time(
    imap_engine: Engine, mail_servers: Any
) -> None:
    # Given the same case where only the police approve version 2,
    run_case(imap_engine, ["police"], parse_instant("2027-01-13T17:00"))
    with transaction(imap_engine.database) as session:
        submissions = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "submission")).all()
        risks = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "submission_risk").order_by(col(OutboxMessage.id))).all()
    # then nothing is sent to the National Panel,
    assert submissions == []
    # and the business manager and the three partner leads are warned at the sign-off cut-off
    # (Tue 12 Jan 16:00), at noon on Day 15 and half an hour before the 16:00 cut-off.
    leads = {"alex.director@exampleshire.example", "chris.superintendent@police.example",
             "pat.nurse@icb.example", "sam.example@exampleshire.example"}
    by_check: dict[str, tuple[set[str], set[str]]] = {}
    for row in risks:
        check = row.idempotency_key.split(":")[2]
        at = row.created_at.astimezone(LONDON).strftime("%a %d %b %H:%M")
        instants, people = by_check.setdefault(check, (set(), set()))
        instants.add(at)
        people.add(row.recipients)
    assert by_check == {
        "no_quorum": ({"Tue 12 Jan 16:00"}, leads),
        "not_sent": ({"Wed 13 Jan 12:00"}, leads),
        "unconfirmed": ({"Wed 13 Jan 15:30"}, leads),
    }


def test_the_submission_refuses_an_unapproved_or_changed_version(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = make_config()
    from tests.recording import RecordingMailbox

    engine = build_engine(config, RecordingMailbox(tmp_path / "sent.jsonl"))
    now = parse_instant("2027-01-11T10:00")
    with transaction(engine.database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        stored = add_report_version(session, config, case, "report.docx", b"v1", now, "test")
        # A version nobody approved is refused.
        with pytest.raises(SubmissionRefused, match="no sign-off ballot approved"):
            queue_submission(session, config, case, stored.sha256, now, "test")
        # A report that is not .docx or .pdf is refused with one line.
        with pytest.raises(ValueError, match="must be .docx or .pdf"):
            add_report_version(session, config, case, "report.exe", b"x", now, "test")

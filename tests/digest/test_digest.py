"""The daily digest of five cases, compared byte for byte with the snapshots in snapshots/.

After an intended change to the digest, regenerate the snapshots and review the diff:

    RRBOT_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/digest/test_digest.py

The HTML snapshot is a whole email body; open snapshots/digest.html in a browser to look at it.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from bot.config import Config
from bot.engine.step import Engine
from bot.service.wiring import open_database
from bot.store.db import transaction
from bot.store.models import Case, Milestone, OutboxMessage
from tests.digest.fixture import DIGEST_AT, build_five_cases, digest_config
from tests.recording import RecordingMailbox

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def digest_email(tmp_path: Path, config: Config, build: bool = True) -> tuple[str, str, str]:
    """Build the five cases, step to 08:30 and return the digest's subject, text and HTML."""
    database = open_database(config)
    if build:
        build_five_cases(database, config)
    engine = Engine(config, database, RecordingMailbox(tmp_path / "sent.jsonl"))
    engine.step(DIGEST_AT - timedelta(hours=1))
    engine.step(DIGEST_AT)
    with transaction(database) as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.purpose == "digest")).one()
    database.dispose()
    message = message_from_bytes(row.payload, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(message["Subject"]), text.get_content(), html.get_content()


def check_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("RRBOT_UPDATE_SNAPSHOTS") == "1":
        path.write_bytes(actual.encode("utf-8"))
    assert path.exists(), f"no snapshot {name}; run with RRBOT_UPDATE_SNAPSHOTS=1"
    assert actual.encode("utf-8") == path.read_bytes(), (
        f"{name} differs from its snapshot; if the change is intended, regenerate with "
        "RRBOT_UPDATE_SNAPSHOTS=1 and review the diff"
    )


def test_the_digest_of_five_cases_matches_its_snapshots(tmp_path: Path) -> None:
    # Given five cases (just received, awaiting the decision, requests out with an agency
    # overdue, in sign-off, submitted), quarantined mail, a dead letter and a late send,
    config = digest_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    # when the engine steps to 08:30 on Thursday 18 February 2027,
    subject, text, html = digest_email(tmp_path, config)
    # then the digest matches the reviewed snapshots, byte for byte,
    check_snapshot("digest.txt", text)
    check_snapshot("digest.html", html)
    assert subject == ("Rapid Review digest Thu 18 Feb 2027: 5 open (1 red, 3 amber, 1 green),"
                       " 2 in quarantine, 1 undelivered")
    # and the HTML is Outlook-safe: no scripts, no external images, no style sheets.
    for forbidden in ("<script", "<img", "<style", "<link", "class="):
        assert forbidden not in html


def test_the_status_colours_follow_their_definitions(tmp_path: Path) -> None:
    # Given the five cases,
    config = digest_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    _subject, text, _html = digest_email(tmp_path, config)
    cases = {block.split()[1]: block.strip() for block in text.split("-" * 72)[1:-1]}
    # then the case due to submit tomorrow without sign-off is red (submission at risk),
    assert cases["RR-2027-006"].startswith("RED") and "Submission at risk" in cases["RR-2027-006"]
    # a case with an overdue agency return is amber,
    assert cases["RR-2027-008"].startswith("AMBER")
    assert "Agency return overdue: Exampleshire Homes" in cases["RR-2027-008"]
    # and the submitted case with nothing due for a week is green.
    assert cases["RR-2027-004"].startswith("GREEN")


def test_a_statutory_milestone_overdue_makes_a_case_red(tmp_path: Path) -> None:
    # Given the Day 1 case whose decision (statutory) is due at 17:00 today, now overdue,
    config = digest_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    database = open_database(config)
    build_five_cases(database, config)
    with transaction(database) as session:
        case = session.exec(select(Case).where(Case.reference == "RR-2027-010")).one()
        decision = session.exec(select(Milestone).where(
            Milestone.case_id == case.id, Milestone.key == "partner_decision")).one()
        decision.status, decision.due_at = "overdue", DIGEST_AT - timedelta(hours=16)
        session.add(decision)
    database.dispose()
    # when the digest is built,
    _subject, text, _html = digest_email(tmp_path, config, build=False)
    # then that case is red and says why.
    block = next(b for b in text.split("-" * 72) if "RR-2027-010" in b)
    assert block.lstrip().startswith("RED")
    assert "Statutory milestone overdue: Virtual Panel decides" in block


@pytest.mark.parametrize("identity, shown, hidden", [
    ("initials", ["(A.B.)", "(E.F.)"], ["Alex Brook", "Ellis Fenwick"]),
    ("full", ["(Alex Brook)", "(Ellis Fenwick)"], ["(A.B.)"]),
    ("none", [], ["A.B.", "Alex Brook", "E.F.", "Ellis Fenwick"]),
])
def test_the_digest_names_the_child_only_as_configured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, identity: str, shown: list[str],
    hidden: list[str],
) -> None:
    # Given child_identity set to initials, full or none,
    config = digest_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}", child_identity=identity)
    # when the digest is built and sent, with every log line captured,
    with caplog.at_level(logging.DEBUG):
        subject, text, html = digest_email(tmp_path, config)
    # then the email carries exactly the identity allowed, the subject none of it,
    for part in (text, html):
        assert all(value in part for value in shown)
        assert not any(value in part for value in hidden)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for value in ("A.B.", "Alex Brook", "E.F.", "Ellis Fenwick"):
        assert value not in subject
        # and no log line ever names the child.
        assert value not in logged


def test_a_report_that_reached_the_panel_after_the_cut_off_is_listed_as_sent_late(
    tmp_path: Path,
) -> None:
    # Given the case submitted yesterday, whose report went at 16:05, after its 16:00 cut-off,
    config = digest_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    database = open_database(config)
    build_five_cases(database, config)
    with transaction(database) as session:
        case = session.exec(select(Case).where(Case.reference == "RR-2027-004")).one()
        cutoff = session.exec(select(Milestone).where(
            Milestone.case_id == case.id, Milestone.key == "submit_national_panel")).one()
        sent_at = cutoff.due_at + timedelta(minutes=5)
        session.add(OutboxMessage(
            partnership=case.partnership, case_id=case.id, idempotency_key="submission-late",
            channel="mail", purpose="submission", recipients="panel@example.invalid",
            message_id="<submission-late@example.invalid>", payload=b"", status="sent",
            attempts=1, created_at=sent_at, next_attempt_at=sent_at, sent_at=sent_at))
    database.dispose()
    # when the digest is built,
    _subject, text, _html = digest_email(tmp_path, config, build=False)
    # then the late report is among the messages sent late, with its deadline.
    late = text.split("Sent after the deadline since")[1].split("\n\n")[0]
    assert "RR-2027-004" in late and "Submission" in late, late

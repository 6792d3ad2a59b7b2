"""SIGKILL around the submission's send: the National Panel receives exactly one message."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import select

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.members import members
from bot.ballots.voting import cast_vote
from bot.cases.lifecycle import open_case
from bot.config import Config
from bot.engine.step import Engine
from bot.process.working_days import parse_instant
from bot.report.submission import add_report_version
from bot.service.wiring import open_database
from bot.store.db import make_engine, transaction
from bot.store.models import Case, Milestone, OutboxMessage
from tests.factories import build_config
from tests.recording import RecordingChat, RecordingMailbox

FORK = multiprocessing.get_context("fork")
# Under pytest-xdist these campaigns of racing or killed processes run one at a time on one
# worker, as in a serial run, so no two of them race each other for the cores.
pytestmark = pytest.mark.xdist_group("processes")
REFERRAL = parse_instant("2026-12-18T10:00")
APPROVED = parse_instant("2027-01-12T14:00")
PANEL = "Mailbox.NationalReviewPanel@education.gov.uk"


class CrashingMailbox(RecordingMailbox):
    """Kills its own process with SIGKILL just before or just after sending to the Panel."""

    def __init__(self, path: Path, crash: str | None) -> None:
        super().__init__(path)
        self.crash = crash

    def send(self, message: EmailMessage) -> None:
        to_panel = PANEL in str(message["To"])
        if to_panel and self.crash == "before_send":
            os.kill(os.getpid(), signal.SIGKILL)
        super().send(message)
        if to_panel and self.crash == "after_send":
            os.kill(os.getpid(), signal.SIGKILL)


def signed_off_case(tmp_path: Path) -> tuple[Config, str]:
    """Build a case whose version 2 two partners have just approved (submission queued)."""
    url = f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    config = build_config(tmp_path, database_url=url, closure_dates=[])
    database = open_database(config)
    with transaction(database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        add_report_version(session, config, case, "report.docx", b"version 2", APPROVED, "test")
        ballot = ballot_for_case(session, case, "signoff")
        assert ballot is not None
        for member in [m for m in members(config) if m.role == "lead"][:2]:
            cast_vote(session, config, ballot.id or 0, member, "approve", "", APPROVED,
                      source="chat", delivery_key=f"crash:{member.email}")
        queued = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "submission")).all()
        assert [row.status for row in queued] == ["pending"]
    database.dispose()
    return config, url


def step_child(config: Config, url: str, sent: Path, now: datetime, crash: str | None) -> None:
    """Run in a forked child: one engine step at `now`, perhaps dying around the send."""
    engine = Engine(config, make_engine(url), CrashingMailbox(sent, crash),
                    chat=RecordingChat(sent.with_suffix(".chat")))
    engine.step(now)
    engine.database.dispose()


def run_child(config: Config, url: str, sent: Path, now: datetime, crash: str | None,
              kill_after: float | None = None) -> int | None:
    child = FORK.Process(target=step_child, args=(config, url, sent, now, crash))
    child.start()
    if kill_after is not None:
        time.sleep(kill_after)  # real-time ok: a random point at which to kill the child
        if child.is_alive():
            os.kill(child.pid or 0, signal.SIGKILL)
    child.join(timeout=60)
    return child.exitcode


def to_panel(sent: Path) -> int:
    return sum(1 for record in RecordingMailbox(sent).records() if PANEL in record["to"])


@pytest.mark.slow
@pytest.mark.parametrize("crash", ["before_send", "after_send"])
def test_a_kill_around_the_send_gives_the_panel_exactly_one_message(
    tmp_path: Path, crash: str
) -> None:
    # Given a signed-off report whose submission is queued,
    config, url = signed_off_case(tmp_path)
    sent = tmp_path / "sent.jsonl"
    # when the process sending it is killed just before (or just after) the send,
    assert run_child(config, url, sent, APPROVED, crash) == -signal.SIGKILL
    assert to_panel(sent) == (1 if crash == "after_send" else 0)
    # and a restarted bot steps on: within the lease (5 minutes here), after it (the row is
    # looked up in Sent, then sent or marked sent), and when the confirmation is due again,
    for minutes in (2, 10, 20):
        assert run_child(config, url, sent, APPROVED + timedelta(minutes=minutes), None) == 0
    # then the Panel has exactly one message, recorded as sent and confirmed on the case.
    assert to_panel(sent) == 1
    database = make_engine(url)
    with transaction(database) as session:
        (row,) = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "submission")).all()
        case = session.exec(select(Case)).one()
        milestone = session.exec(select(Milestone).where(
            Milestone.key == "submit_national_panel")).one()
    database.dispose()
    assert row.status == "sent"
    assert case.submitted_at == row.sent_at and case.submitted_late is False
    assert milestone.status == "done"


@pytest.mark.slow
def test_kills_at_random_points_never_send_the_report_twice(tmp_path: Path) -> None:
    # Given the queued submission and thirty kills at random points of the sending step,
    config, url = signed_off_case(tmp_path)
    sent = tmp_path / "sent.jsonl"
    chance = random.Random(15)
    for trial in range(30):
        run_child(config, url, sent, APPROVED + timedelta(minutes=trial),
                  None, kill_after=chance.uniform(0.0, 0.25))
        # then at no point has the Panel more than one message,
        assert to_panel(sent) <= 1
    # and after the bot runs undisturbed past the lease, exactly one.
    run_child(config, url, sent, APPROVED + timedelta(minutes=45), None)
    assert to_panel(sent) == 1

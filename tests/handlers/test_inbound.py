"""Inbound handling beyond the corpus: auto-responder ping-pong, privacy, failing handlers."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from types import ModuleType

import pytest
from sqlmodel import select

from bot.ballots.members import members as partner_members
from bot.cases.correspondence import case_references
from bot.config import Config
from bot.engine.pipeline import handler_modules
from bot.kernel.mailbox import FetchedMail
from bot.mail.senders import verified_sender
from bot.process.working_days import LONDON, parse_instant
from bot.store.db import transaction
from bot.store.models import Case, InboundMessage, Milestone, OutboxMessage
from tests.corpus.make_corpus import CHILD_DOB, CHILD_NAME, trace
from tests.handlers.world import HANDLED, deliver, make_engine, world_config
from tests.recording import RecordingMailbox

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


class AnsweringMailbox(RecordingMailbox):
    """A recording mailbox whose every recipient answers every message, like an auto-responder."""

    def __init__(self, path: Path, name: str, marked: bool) -> None:
        super().__init__(path, name)
        self.marked = marked
        self.sent: list[EmailMessage] = []
        self.answers = 0

    def send(self, message: EmailMessage) -> None:
        super().send(message)
        self.sent.append(message)
        for _name, address in getaddresses([str(message["To"]), str(message.get("Cc", ""))]):
            if not address:
                continue
            self.answers += 1
            self.inbox.append(FetchedMail(f"answer-{self.answers}", self.answer(message, address)))

    def answer(self, message: EmailMessage, address: str) -> bytes:
        reply = EmailMessage()
        reply["From"] = address
        reply["To"] = self.name
        reply["Message-ID"] = f"<answer-{self.answers}@{address.rpartition('@')[2]}>"
        reply["In-Reply-To"] = str(message["Message-ID"])
        if self.marked:
            reply["Subject"] = f"Automatic reply: {message['Subject']}"
            reply["Auto-Submitted"] = "auto-replied"
            reply.set_content("I am out of the office until Monday.")
        else:
            # A badly behaved responder: no headers saying so, a subject like a person's reply.
            reply["Subject"] = f"RE: {message['Subject']}"
            reply.set_content("Thank you for your email, which will be dealt with shortly.")
        return trace(address.rpartition("@")[2]).encode() + reply.as_bytes()


def referral_bytes() -> bytes:
    return (CORPUS / "referral_docx_gp.eml").read_bytes()


@pytest.mark.parametrize("marked", [True, False], ids=["rfc3834-responder", "naive-responder"])
def test_an_auto_responder_gets_at_most_one_message_from_us(
    tmp_path: Path, marked: bool
) -> None:
    # Given every recipient of our mail answers every message it gets,
    config = world_config(tmp_path)
    mailbox = AnsweringMailbox(tmp_path / "sent.jsonl", config.settings.mailbox.address, marked)
    engine = make_engine(config, tmp_path)[0]
    engine.mailbox = mailbox
    # when a referral arrives and the engine steps forty times, ten minutes apart,
    mailbox.inbox.append(FetchedMail("referral", referral_bytes()))
    for minutes in range(0, 400, 10):
        engine.step(HANDLED + timedelta(minutes=minutes))
    # then each counterpart got at most one message from us (a partner member, whose reply to
    # the referral copy is read as a vote, also one note on how to vote by reply), and the
    # exchange has stopped.
    received: Counter[str] = Counter()
    for message in mailbox.sent:
        for _name, address in getaddresses([str(message["To"]), str(message.get("Cc", ""))]):
            if address:
                received[address.lower()] += 1
    assert received["lee.safeguarding@gp.example"] == 1
    members = {member.email.lower() for member in partner_members(config)}
    counterparts = {address: count - (address in members) for address, count in received.items()
                    if address != config.settings.business_manager.email}
    assert counterparts and max(counterparts.values()) == 1, counterparts
    with transaction(engine.database) as session:
        rows = session.exec(select(InboundMessage)).all()
    assert all(row.status != "new" for row in rows)
    assert len(rows) == 1 + mailbox.answers


def test_nothing_at_info_names_the_child(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a referral naming the child, with the log captured at INFO,
    caplog.set_level(logging.INFO)
    engine, mailbox = make_engine(world_config(tmp_path), tmp_path)
    # when it is taken in and the acknowledgement and copies are sent,
    row = deliver(engine, mailbox, referral_bytes(), "referral")
    engine.step(HANDLED + timedelta(minutes=5))
    # then the case holds the child's identity, and no log line, chat output or subject does.
    with transaction(engine.database) as session:
        case = session.get_one(Case, row.case_id)
        assert case.child_name == CHILD_NAME
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    for secret in (CHILD_NAME, *CHILD_NAME.split(), CHILD_DOB, "2019-07-14"):
        assert secret not in text
    assert all(CHILD_NAME not in record["subject"] for record in mailbox.records())
    assert any(record["subject"].startswith("[RR-2026-001] Referral received")
               for record in mailbox.records())


def test_a_referral_that_arrived_while_the_bot_was_down_keeps_its_day_0(tmp_path: Path) -> None:
    # Given a referral that arrived at 10:00 on Friday 18 December 2026 while the bot was down,
    arrived = parse_instant("2026-12-18T10:00")
    engine, mailbox = make_engine(world_config(tmp_path), tmp_path)
    mailbox.inbox.append(FetchedMail("referral", referral_bytes(), arrived_at=arrived))
    # when the bot starts and takes it in at 09:00 on Monday 21 December,
    monday = parse_instant("2026-12-21T09:00")
    engine.step(monday)
    # then Day 0 is the Friday it arrived, so Oldham's Day 1 decision falls on that Monday,
    with transaction(engine.database) as session:
        row = session.exec(select(InboundMessage).where(
            InboundMessage.server_id == "referral")).one()
        assert row.received_at == arrived
        case = session.get_one(Case, row.case_id)
        assert case.clock_start == arrived
        assert case.day0 == date(2026, 12, 18)
        decision = session.exec(select(Milestone).where(
            Milestone.case_id == case.id, Milestone.key == "partner_decision")).one()
        assert decision.due_at.astimezone(LONDON).date() == date(2026, 12, 21)
        # and the acknowledgement was still queued and sent at once, in that Monday step.
        ack = session.exec(select(OutboxMessage).where(
            OutboxMessage.case_id == case.id, OutboxMessage.purpose == "referral_ack")).one()
        assert (ack.status, ack.created_at, ack.sent_at) == ("sent", monday, monday)
    assert any(record["subject"].startswith(f"[{case.reference}] Referral received")
               for record in mailbox.records())


def test_an_arrival_time_ahead_of_our_clock_is_taken_as_now(tmp_path: Path) -> None:
    # Given a mail server whose clock runs ten minutes ahead of ours,
    now = parse_instant("2026-12-21T09:00")
    engine, mailbox = make_engine(world_config(tmp_path), tmp_path)
    mailbox.inbox.append(FetchedMail("referral", referral_bytes(),
                                     arrived_at=now + timedelta(minutes=10)))
    # when a referral it says arrived in the future is taken in,
    engine.step(now)
    # then it is taken to have arrived now, and the case's clock starts now.
    with transaction(engine.database) as session:
        row = session.exec(select(InboundMessage).where(
            InboundMessage.server_id == "referral")).one()
        assert row.received_at == now
        assert session.get_one(Case, row.case_id).clock_start == now


def test_a_failing_handler_quarantines_the_message_and_the_step_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a handler that raises on every message,
    broken = ModuleType("handlers.broken")
    broken.name = "broken"  # type: ignore[attr-defined]
    broken.order = 1  # type: ignore[attr-defined]

    def explode(*_args: object) -> None:
        raise RuntimeError("boom")

    broken.process = explode  # type: ignore[attr-defined]
    monkeypatch.setattr("bot.engine.pipeline.handler_modules", lambda: (broken, *handler_modules()))
    engine, mailbox = make_engine(world_config(tmp_path), tmp_path)
    # when a referral arrives,
    row = deliver(engine, mailbox, referral_bytes(), "referral")
    # then it is quarantined with the reason, no case is opened, and the mail is moved.
    assert (row.status, row.kind) == ("quarantined", "handler_error")
    assert "broken handler failed: RuntimeError: boom" in (row.reason or "")
    with transaction(engine.database) as session:
        assert session.exec(select(Case)).first() is None
    assert mailbox.moved == [("referral", "Quarantine")]


def test_unauthenticated_mail_is_accepted_only_when_configured(tmp_path: Path) -> None:
    # Given a reply from a known contact with no authentication results at all,
    raw = (b"From: lee.safeguarding@gp.example\r\nTo: rapidreview@exampleshire.example\r\n"
           b"Subject: Referral\r\nMessage-ID: <u1@gp.example>\r\n\r\nReferral.\r\n")
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    flagged: Config = world_config(tmp_path)
    accepted: Config = world_config(tmp_path, **{"mailbox.unauthenticated": "accept"})
    # then the default flags it, and "accept" acts on it.
    assert not verified_sender(flagged, message).ok
    assert verified_sender(accepted, message).ok


@pytest.mark.parametrize("subject", [
    "RE: [RR-2026-007] Information request", "AW: WG: [RR-2026-007] Anfrage",
    "[Ticket#123] FW: RE: [RR-2026-007]", "SV: Antw: [SR-55] RR-2026-007 returns",
    "Re: [EXTERNAL] rr-2026-007",
])
def test_a_case_tag_survives_reply_prefixes_and_helpdesk_tags(tmp_path: Path,
                                                              subject: str) -> None:
    # Given a subject wrapped by other mail systems, then the case reference is still found.
    assert case_references(world_config(tmp_path), subject) == ["RR-2026-007"]

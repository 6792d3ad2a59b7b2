"""A referral from someone the config does not name: held, told to the BM at once, released."""

from __future__ import annotations

import os
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from typer.testing import CliRunner

from bot.cli.main import app
from bot.engine.step import Engine
from bot.process.working_days import parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import AuditEntry, Case, InboundMessage, OutboxMessage
from tests.corpus.make_corpus import CHILD_NAME, DOCX, FULL_FORM, docx_form, mail, person, trace
from tests.factories import read_config, write_config
from tests.recording import RecordingChat

RUNNER = CliRunner()
# Thursday 5 March 2026: the referral arrives at 09:58 and the bot steps at 10:00.
ARRIVED = parse_instant("2026-03-05T09:58")
STEPPED = parse_instant("2026-03-05T10:00")
PARENT = "a.parent@freemail.test"
MANAGER = "sam.example@exampleshire.example"


def parent_referral() -> bytes:
    """Build a parent's referral: authenticated by the boundary, from nobody the config names."""
    return mail(person("A Parent", PARENT, "Referral about my neighbour's child",
                       "<parent-1@freemail.test>"),
                "I want to refer a child I am worried about. The form is attached.",
                prefix=trace("freemail.test"),
                files=[("Referral form.docx", docx_form(**FULL_FORM), "application", DOCX)])


def deliver(root: Path, name: str, raw: bytes, at: datetime) -> None:
    """Write a message into the Maildir inbox as an MTA would, delivered at `at`."""
    inbox = root / "var" / "mail" / "inbox"
    for sub in ("new", "cur", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    folder = inbox / "new"
    path = folder / f"{int(at.timestamp())}.{name}.mx"
    path.write_bytes(raw)
    os.utime(path, (at.timestamp(), at.timestamp()))


def maildir_engine(tmp_path: Path, **changes: Any) -> tuple[Path, Engine]:
    """Write a config file; build an engine on its SQLite database and real Maildir mailbox."""
    path = write_config(tmp_path, closure_dates=[], intake={
        "documents_folder": str(tmp_path / "documents"), **changes})
    return path, build_engine(read_config(path), chat=RecordingChat(tmp_path / "chat.jsonl"))


def sent_in_maildir(tmp_path: Path) -> list[EmailMessage]:
    """Every message the Maildir mailbox has sent (filed in sent/)."""
    folder = tmp_path / "var" / "mail" / "sent" / "cur"
    found = [message_from_bytes(path.read_bytes(), policy=policy.default)
             for path in sorted(folder.iterdir())] if folder.is_dir() else []
    return [message for message in found if isinstance(message, EmailMessage)]


def files_in(tmp_path: Path, folder: str) -> list[str]:
    """Return the Maildir keys in one of the mailbox's folders."""
    base = tmp_path / "var" / "mail" / folder
    return sorted(path.name.partition(":")[0] for sub in ("new", "cur")
                  for path in (base / sub).glob("*")) if base.is_dir() else []


def outbox(engine: Engine) -> list[OutboxMessage]:
    with transaction(engine.database) as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))


def inbound(engine: Engine) -> InboundMessage:
    with transaction(engine.database) as session:
        return session.exec(select(InboundMessage)).one()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def test_a_parents_referral_is_held_and_the_business_manager_is_emailed_in_the_same_step(
    tmp_path: Path,
) -> None:
    # Given a parent's referral in the partnership's Maildir inbox,
    _path, engine = maildir_engine(tmp_path)
    deliver(tmp_path, "parent", parent_referral(), ARRIVED)
    # when the engine steps once,
    report = engine.step(STEPPED)
    # then the referral is held, no case is opened and the parent is not answered,
    row = inbound(engine)
    assert (row.status, row.kind) == ("quarantined", "unverified_sender")
    assert "not a configured contact" in (row.reason or "")
    assert files_in(tmp_path, "quarantine") == [row.server_id]
    with transaction(engine.database) as session:
        assert session.exec(select(Case)).all() == []
    # and the business manager's alert was queued and sent by that same step's dispatch.
    assert [(m.purpose, m.recipients, m.status) for m in outbox(engine)] == [
        ("quarantined_referral", MANAGER, "sent")]
    assert len(report.dispatch.sent) == 1
    [alert] = sent_in_maildir(tmp_path)
    subject, text = str(alert["Subject"]), text_of(alert)
    assert CHILD_NAME not in subject and CHILD_NAME not in text
    assert f"(message {row.id})" in subject
    assert "09:58 on Thursday 5 March 2026" in text
    assert PARENT in text and "not a configured contact" in text
    assert (f"rrbot quarantine release --config config.toml {row.id} --as referral"
            in text)
    engine.database.dispose()


def test_released_as_a_referral_it_opens_the_case_acknowledges_and_copies_the_partners(
    tmp_path: Path,
) -> None:
    # Given a parent's referral held in quarantine,
    path, engine = maildir_engine(tmp_path)
    deliver(tmp_path, "parent", parent_referral(), ARRIVED)
    engine.step(STEPPED)
    row = inbound(engine)
    # when the business manager releases it as a referral, saying why,
    released = RUNNER.invoke(app, [
        "quarantine", "release", "--config", str(path), str(row.id), "--as", "referral",
        "--reason", "phoned the parent back", "--now", "2026-03-05T11:00"])
    # then the case is open from the referral's arrival, as vouched for by them,
    assert released.exit_code == 0, released.output
    assert "released: referral on RR-2026-001" in released.output
    with transaction(engine.database) as session:
        case = session.exec(select(Case)).one()
        assert (case.reference, case.clock_start, case.referrer_email) == (
            "RR-2026-001", ARRIVED, PARENT)
        after = session.get_one(InboundMessage, row.id)
        assert (after.status, after.kind, after.case_id) == ("processed", "referral", case.id)
        assert (after.vouched_by, after.vouched_as, after.vouched_reason) == (
            "business manager Sam Example", "referral", "phoned the parent back")
        [entry] = session.exec(select(AuditEntry).where(
            AuditEntry.action == "quarantine_released")).all()
        assert entry.actor == "business manager Sam Example"
        assert "phoned the parent back" in entry.detail
    # the parent's acknowledgement and the partners' copy were queued in that same command,
    queued = {m.purpose: m for m in outbox(engine)}
    assert queued["referral_ack"].recipients == PARENT
    leads = [partner.lead.email for partner in engine.config.settings.partners.by_key().values()]
    assert all(lead in queued["referral_copy"].recipients for lead in leads)
    assert queued["referral_ack"].status == "pending"
    # the command said its copy moves at the next step, and it is still in Quarantine;
    assert "its copy moves from Quarantine to Processed, at the bot's next step" in (
        " ".join(released.output.split()))
    assert files_in(tmp_path, "quarantine") == [row.server_id]
    # and the next step sends them and moves the mailbox copy from Quarantine to Processed.
    engine.step(parse_instant("2026-03-05T11:01"))
    assert files_in(tmp_path, "quarantine") == []
    assert files_in(tmp_path, "processed") == [row.server_id]
    sent = {str(m["Subject"]): m for m in sent_in_maildir(tmp_path)}
    assert any(PARENT in str(m["To"]) for m in sent.values())
    assert {m.purpose for m in outbox(engine) if m.status == "sent"} >= {
        "referral_ack", "referral_copy"}
    engine.database.dispose()


def test_an_authenticated_council_social_worker_in_referrer_domains_opens_a_case(
    tmp_path: Path,
) -> None:
    # Given the council's domain among the referrer domains, and a social worker there whom
    # the config does not name, authenticated by the boundary,
    _path, engine = maildir_engine(tmp_path, referrer_domains=["council.example"])
    referral = mail(person("Jo Social Worker", "jo.social@childrens.council.example",
                           "Serious incident referral", "<sw-1@council.example>"),
                    "Referral attached.", prefix=trace("childrens.council.example"),
                    files=[("Referral form.docx", docx_form(**FULL_FORM), "application", DOCX)])
    deliver(tmp_path, "social-worker", referral, ARRIVED)
    # when the engine steps,
    engine.step(STEPPED)
    # then the case opens and she is acknowledged, with no alert to the business manager;
    row = inbound(engine)
    assert (row.status, row.kind) == ("processed", "referral")
    sent = {m.purpose: m for m in outbox(engine)}
    assert sent["referral_ack"].recipients == "jo.social@childrens.council.example"
    assert sent["referral_ack"].status == "sent"
    assert "quarantined_referral" not in sent
    # but the same referral failing authentication is held and told to the business manager.
    forged = referral.replace(b"<sw-1@council.example>", b"<sw-2@council.example>").replace(
        b"dmarc=pass", b"dmarc=fail").replace(b"spf=pass", b"spf=fail").replace(
        b"dkim=pass", b"dkim=none")
    deliver(tmp_path, "forged", forged, ARRIVED)
    engine.step(STEPPED)
    purposes = [m.purpose for m in outbox(engine)]
    assert purposes.count("quarantined_referral") == 1
    with transaction(engine.database) as session:
        held = session.exec(select(InboundMessage).where(
            InboundMessage.message_id == "<sw-2@council.example>")).one()
        assert held.status == "quarantined"
    engine.database.dispose()

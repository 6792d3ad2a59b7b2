"""A whole Oldham case from the referral to closed, then exported, verified and purged.

Referral Monday 17 May 2027 10:00 (BST), across the late-May bank holiday (Monday 31 May):
Day 7 Wednesday 26 May, the meeting Day 11 Wednesday 2 June, sign-off by 16:00 Monday 7 June
(Day 14), submission by 16:00 Tuesday 8 June (Day 15). The GP returns, the hospital has no
involvement, housing never answers. The GP's lesson log is due ten working days after the
meeting (Wednesday 16 June 17:00). The Panel's response is recorded on Tuesday 2 November 2027
(GMT); the case is in the weekly summary of Monday 8 November.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.members import members
from bot.ballots.voting import cast_vote
from bot.cli.main import app
from bot.engine.step import Engine
from bot.kernel.mailbox import FetchedMail
from bot.kernel.outbox import message_id_for
from bot.process.working_days import LONDON, parse_instant
from bot.report.submission import add_report_version
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import AgencyRequest, Case, Document, InboundMessage, OutboxMessage
from tests.corpus.make_corpus import mail, person, trace
from tests.factories import read_config, write_config
from tests.recording import RecordingChat, RecordingMailbox

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
REFERENCE = "RR-2027-001"
DOMAIN = "exampleshire.example"
HOUSING = ("avery.housing@homes.example", "riley.director@homes.example")
RUNNER = CliRunner()


def agency_mail(sender: str, domain: str, agency: str, number: int, text: str,
                files: list[tuple[str, bytes, str, str]] = ()) -> bytes:  # type: ignore[assignment]
    request = message_id_for(f"{REFERENCE}:agency:{agency}:request", DOMAIN)
    return mail(person(agency, sender, f"RE: [{REFERENCE}] Rapid Review information request",
                       f"<{agency}-{number}@{domain}>", in_reply_to=request),
                text, prefix=trace(domain), files=files)


def decide(engine: Engine, at: datetime) -> None:
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
        ballot = ballot_for_case(session, case, "decision")
        assert ballot is not None and ballot.id is not None
        for partner in ("local_authority", "police"):
            member = next(m for m in members(engine.config)
                          if m.partner_key == partner and m.role == "lead")
            cast_vote(session, engine.config, ballot.id, member, "rapid_review",
                      "Serious harm; neglect suspected.", at, source="chat",
                      delivery_key=f"decision:{partner}")


def sign_off(engine: Engine, at: datetime) -> None:
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
        add_report_version(session, engine.config, case, "rapid-review-report.docx",
                           b"PK-fictional-report", at, actor="business_manager")
        ballot = ballot_for_case(session, case, "signoff")
        assert ballot is not None and ballot.id is not None
        for partner in ("police", "health"):
            member = next(m for m in members(engine.config)
                          if m.partner_key == partner and m.role == "lead")
            cast_vote(session, engine.config, ballot.id, member, "approve", "", at,
                      source="chat", delivery_key=f"signoff:{partner}")


def cli(*arguments: str) -> str:
    result = RUNNER.invoke(app, list(arguments))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_an_oldham_case_runs_from_referral_to_closed_and_leaves_its_records(
    tmp_path: Path,
) -> None:
    # Given the example partnership on the Oldham preset, keeping closed cases for a year,
    path = write_config(tmp_path, closure_dates=[], preset="oldham",
                        intake={"documents_folder": str(tmp_path / "documents")},
                        records={"retain_closed_cases_for": "1 year"})
    mailbox = RecordingMailbox(tmp_path / "sent.jsonl", name=f"rapidreview@{DOMAIN}")
    engine = build_engine(read_config(path), mailbox, RecordingChat(tmp_path / "chat.jsonl"))
    inbox = {
        # The GP's referral with its form (Day 0, 10:00 BST).
        "2027-05-17T10:00": ("referral", (CORPUS / "referral_docx_gp.eml").read_bytes()),
        "2027-05-20T11:00": ("hospital", agency_mail(
            "robin.nurse@hospital.example", "hospital.example", "hospital", 1,
            "The child and family are not known to this trust: no involvement.")),
        "2027-05-25T14:00": ("gp", agency_mail(
            "lee.safeguarding@gp.example", "gp.example", "gp", 1, "Our summary attached.",
            [("gp-summary.docx", b"PK-gp-summary", "application",
              "vnd.openxmlformats-officedocument.wordprocessingml.document")])),
        "2027-06-09T11:00": ("panel", mail(person(
            "National Panel", "Mailbox.NationalReviewPanel@education.gov.uk",
            f"RE: [{REFERENCE}] Rapid Review report", "<np1@education.gov.uk>"),
            "Thank you, received.", prefix=trace("education.gov.uk"))),
        "2027-06-14T10:00": ("gp-lesson-log", mail(person(
            "GP", "lee.safeguarding@gp.example", f"RE: [{REFERENCE}] Lesson log requested",
            "<gp-2@gp.example>", in_reply_to=message_id_for(
                f"{REFERENCE}:lesson_log:gp:request", DOMAIN)),
            "Our lesson log attached.", prefix=trace("gp.example"), files=[(
                "gp-lesson-log.docx", b"PK-gp-lesson-log", "application",
                "vnd.openxmlformats-officedocument.wordprocessingml.document")])),
    }
    deliveries = {parse_instant(at): value for at, value in inbox.items()}
    events = {parse_instant("2027-05-18T11:00"): decide,
              parse_instant("2027-06-07T11:00"): sign_off}
    # when the bot steps every half hour of the working day (three-hourly at night) from the
    # referral to the lesson log's deadline, with the milestones recorded by hand in UTC and BST,
    now, end = parse_instant("2027-05-17T10:00"), parse_instant("2027-06-17T09:00")
    while now <= end:
        if now in deliveries:
            server_id, raw = deliveries[now]
            mailbox.inbox.append(FetchedMail(server_id, raw, now))
        if now in events:
            events[now](engine, now)
        if now == parse_instant("2027-05-21T10:00"):
            cli("milestone-done", "--config", str(path), REFERENCE, "notify_national_panel",
                "--at", "2027-05-21T09:00Z")
        if now == parse_instant("2027-06-02T16:00"):
            cli("milestone-done", "--config", str(path), REFERENCE, "rr_meeting",
                "--at", "2027-06-02T15:00+01:00")
        engine.step(now)
        local = now.astimezone(LONDON)
        now += timedelta(minutes=30) if 8 <= local.hour < 18 else timedelta(hours=3)
        if not 8 <= now.astimezone(LONDON).hour < 18 and 8 <= local.hour < 18:
            now = now.replace(minute=0)
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
        submitted_at = case.submitted_at
        status = case.status
        requests = {(r.agency_key, r.kind): r.status for r in session.exec(select(AgencyRequest))}
    # then the report went before the cut-off, and the case awaits the Panel's response,
    assert submitted_at is not None and submitted_at < parse_instant("2027-06-08T16:00")
    assert status == "awaiting_panel_response"
    # housing's return is recorded as not returned and it alone was not asked for a lesson log,
    assert requests == {("gp", "information"): "returned",
                        ("hospital", "information"): "no_involvement",
                        ("housing", "information"): "not_returned",
                        ("gp", "lesson_log"): "returned"}
    # and nothing went to housing once the report had gone, though it was chased before.
    to_housing = [(r["date"], r["subject"]) for r in mailbox.records()
                  if any(address in r["to"] for address in HOUSING)]
    assert any("Overdue" in subject for _date, subject in to_housing)
    with transaction(engine.database) as session:
        rows = session.exec(select(OutboxMessage).where(
            col(OutboxMessage.recipients).contains("homes.example"))).all()
    assert rows and max(row.created_at for row in rows) < submitted_at
    assert all(row.status == "sent" for row in rows)

    # When the business manager records the Panel's response on Tuesday 2 November (GMT),
    output = cli("case", "panel-response", "--config", str(path), REFERENCE,
                 "--decision", "no_further_review", "--at", "2027-11-02T10:00")
    assert "the case is closed" in output
    # and the bot runs on the Monday after: the weekly summary lists it as closed.
    engine.step(parse_instant("2027-11-08T08:30"))
    with transaction(engine.database) as session:
        weekly = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "weekly_summary")
            .order_by(col(OutboxMessage.id).desc())).first()
    assert weekly is not None
    body = message_from_bytes(weekly.payload, policy=policy.default).get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "1 Rapid Review of" in text and REFERENCE in text
    assert "closed 10:00 Tue 2 Nov" in text

    # The case's record shows its plan in London time in words,
    shown = cli("case", "show", "--config", str(path), REFERENCE)
    assert "Report submitted to the National Panel (statutory): due Day 15, 16:00 on Tuesday" \
           " 8 June 2027; done" in shown
    assert "Exampleshire Homes (information): not returned; asked 11:00 on Tuesday 18 May" in shown
    assert "Exampleshire GP Federation (lesson log): returned" in shown
    # and its export holds every message it sent and received, with true checksums.
    exported = tmp_path / "export" / f"{REFERENCE}.zip"
    cli("case", "export", "--config", str(path), REFERENCE, "--out", str(exported))
    with transaction(engine.database) as session:
        case_id = session.exec(select(Case.id).where(Case.reference == REFERENCE)).one()
        inbound = session.exec(select(InboundMessage).where(
            InboundMessage.case_id == case_id)).all()
        outbox = session.exec(select(OutboxMessage).where(
            OutboxMessage.case_id == case_id)).all()
        documents = session.exec(select(Document).where(Document.case_id == case_id)).all()
    with zipfile.ZipFile(exported) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
        received = sorted(archive.read(n) for n in names if n.startswith("messages/in/"))
        sent = sorted(archive.read(n) for n in names if n.startswith("messages/out/"))
    assert names == {entry["path"] for entry in manifest["files"]} | {"manifest.json"}
    assert len(inbound) == 5 and received == sorted(row.raw for row in inbound)
    assert len(sent) == len(outbox) > 20 and sent == sorted(row.payload for row in outbox)
    assert {"plan.json", "votes.json", "audit.json", "case.json"} <= names
    # Every stored document of the case is in it: the referral's form, the returns, the
    # report versions and the papers the bot made (chronology, draft).
    assert sum(n.startswith("documents/") for n in names) == len(documents) >= 4

    # The audit trail is intact after ticks, votes and times given in BST, GMT and UTC,
    cli("tick", "--config", str(path), "--now", "2028-04-03T10:00")
    assert "exampleshire: " in (verified := cli("audit", "verify", "--config", str(path)))
    assert "intact" in verified
    # and after a purge a year and a day later, which names what it removed and why.
    purged = cli("case", "purge", "--config", str(path), "--now", "2028-11-03T10:00")
    assert "1 case purged under records.retain_closed_cases_for = \"1 year\"" in purged
    verified = cli("audit", "verify", "--config", str(path))
    assert "intact" in verified
    assert (f"{REFERENCE} purged at 10:00 on Friday 3 November 2028 by cli under"
            " records.retain_closed_cases_for = \"1 year\"") in verified
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == REFERENCE)).one()
        raws = session.exec(select(InboundMessage.raw).where(
            InboundMessage.case_id == case.id)).all()
    assert (case.child_name, case.child_initials, case.child_dob) == (None, None, None)
    assert set(raws) == {b""}
    assert not any((tmp_path / "documents").rglob("*.docx"))
    engine.database.dispose()

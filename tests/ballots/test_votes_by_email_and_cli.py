"""Votes by email reply and by the business manager's `rrbot vote`; check-chat; the console."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

import handlers.vote_email as vote_email
from bot.ballots.lifecycle import open_signoff_ballot
from bot.cli.main import app
from bot.engine.pipeline import InboundContext
from bot.mail.senders import SenderCheck
from bot.store.db import transaction
from bot.store.models import AuditEntry, InboundMessage, OutboxMessage, Vote
from tests.adapters.chat.slack_harness import (
    LA_LEAD,
    PARTNERS_WITH_POLICE_DEPUTY,
    POLICE_LEAD,
    Harness,
)
from tests.factories import write_config

SHA = "c" * 64


def signoff(harness: Harness) -> tuple[str, int]:
    reference = harness.open_case()
    with transaction(harness.engine.database) as session:
        ballot_id = open_signoff_ballot(session, harness.engine.config,
                                        session.merge(harness.case(reference)), SHA,
                                        harness.now).id
    harness.step()
    return reference, ballot_id or 0


def reply(harness: Harness, sender: str, body: str, to_member: str | None = None) -> Any:
    with transaction(harness.engine.database) as session:
        request = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "signoff_request",
            OutboxMessage.recipients == (to_member or sender))).one()
        message = EmailMessage()
        message["From"], message["To"] = sender, "rapidreview@exampleshire.example"
        message["Subject"] = "Re: sign-off"
        message["Message-ID"] = f"<reply.{abs(hash((sender, body)))}@example>"
        message["In-Reply-To"] = request.message_id
        message.set_content(body + "\n\nOn Mon, the bot wrote:\n> APPROVE\n> REQUEST CHANGES\n")
        row = InboundMessage(partnership="exampleshire", mailbox="m", server_id=sender + body,
                             message_id=message["Message-ID"], received_at=harness.now,
                             raw=message.as_bytes())
        session.add(row)
        session.flush()
        return vote_email.process(InboundContext(session, harness.now, harness.engine.config),
                                  row, message)


def test_a_verified_member_votes_by_replying_to_the_signoff_email(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a sign-off ballot whose request went to every member by email,
    _reference, ballot_id = signoff(harness)
    checks = {"pat.nurse@icb.example": SenderCheck(True, "pat.nurse@icb.example", "dmarc=pass"),
              "alex.director@exampleshire.example": SenderCheck(
                  False, "alex.director@exampleshire.example", "no authentication results")}
    monkeypatch.setattr(vote_email, "verified_sender",
                        lambda config, message: checks[str(message["From"])])
    # when the health lead replies "REQUEST CHANGES" with a rationale,
    outcome = reply(harness, "pat.nurse@icb.example", "Request changes: section 3 is thin.")
    # then the vote counts for health, with the rationale, from the email.
    assert (outcome.status, outcome.kind) == ("processed", "vote_email")
    with transaction(harness.engine.database) as session:
        vote = session.exec(select(Vote).where(Vote.ballot_id == ballot_id)).one()
    assert (vote.partner_key, vote.choice, vote.source) == ("health", "request_changes", "email")
    assert vote.rationale == "section 3 is thin."
    # When a reply from a configured address fails authentication, it is quarantined.
    spoofed = reply(harness, "alex.director@exampleshire.example", "APPROVE")
    assert spoofed.status == "quarantined" and "no authentication" in spoofed.reason
    # A verified reply with no vote in it is quarantined too, never silently dropped.
    checks["pat.nurse@icb.example"] = SenderCheck(True, "pat.nurse@icb.example", "ok")
    unclear = reply(harness, "pat.nurse@icb.example", "Thanks, I will look tomorrow.")
    assert unclear.status == "quarantined"
    # And the parser reads the first line the member wrote, ignoring the quoted request.
    assert vote_email.parse_vote("APPROVE\nLooks fine.\n> REQUEST CHANGES") == (
        "approve", "Looks fine.")


def test_the_business_manager_records_a_phone_vote_on_the_members_behalf(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a config file for the harness's database and an open decision ballot,
    reference = harness.open_case()
    config_file = harness_config_file(tmp_path, harness)
    # when the business manager records the police deputy's vote given by phone,
    result = CliRunner().invoke(app, [
        "vote", reference, "--config", str(config_file), "--ballot", "decision",
        "--partner", "police", "--member", "Robin Inspector", "--choice", "rapid_review",
        "--rationale", "Serious harm.", "--evidence", "Phone call 10:05, noted by SE",
        "--now", "2026-12-21T10:10",
    ])
    # then it counts for the police, audited as recorded on the member's behalf.
    assert result.exit_code == 0, result.output
    assert "counted police rapid_review by Robin Inspector" in result.output
    with transaction(harness.engine.database) as session:
        vote = session.exec(select(Vote)).one()
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "vote_cast")).one()
    assert (vote.source, vote.member_role, vote.evidence) == (
        "recorded", "deputy", "Phone call 10:05, noted by SE")
    assert entry.actor == "business manager Sam Example for Robin Inspector"
    # A member of another partner, or a bad choice, is refused with one line.
    bad = CliRunner().invoke(app, [
        "vote", reference, "--config", str(config_file), "--ballot", "decision",
        "--partner", "police", "--member", "Pat Nurse", "--choice", "rapid_review",
        "--evidence", "call"])
    assert bad.exit_code == 2 and "is not a member of police" in bad.output


def harness_config_file(tmp_path: Path, harness: Harness) -> Path:
    """Write the example config file on the harness's database, with its police deputy."""
    return write_config(tmp_path, name="rrbot.toml", database_url=str(harness.engine.database.url),
                        closure_dates=[], partners=PARTNERS_WITH_POLICE_DEPUTY)


def test_the_business_manager_reopens_a_decision_ballot_that_closed_without_quorum(
    harness: Harness, tmp_path: Path
) -> None:
    # Given a decision ballot that closed at 17:00 on Monday 21 December with one vote,
    reference = harness.open_case()
    first = harness.ballot(reference)
    harness.vote(POLICE_LEAD, first.id or 0, "rapid_review", "Serious harm.")
    harness.step("2026-12-21T17:00")
    assert harness.ballot(reference).outcome == "no_quorum"
    config_file = harness_config_file(tmp_path, harness)
    # whose alert tells the business manager how to ask again,
    with transaction(harness.engine.database) as session:
        alert = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "ballot_no_quorum")).one()
    text = message_from_bytes(alert.payload, policy=policy.default)
    assert isinstance(text, EmailMessage)
    body = text.get_body(("plain",))
    assert body is not None
    assert f"rrbot reopen-ballot {reference} --ballot decision" in body.get_content()
    # when they run that command the next morning,
    result = CliRunner().invoke(app, [
        "reopen-ballot", reference, "--config", str(config_file), "--ballot", "decision",
        "--now", "2026-12-22T09:05"])
    # then a new ballot opens until the end of the next working day, audited as theirs,
    assert result.exit_code == 0, result.output
    assert "decision ballot reopened; it closes 17:00 Wed 23 Dec 2026" in result.output
    second = harness.ballot(reference)
    assert second.id != first.id and second.status == "open"
    with transaction(harness.engine.database) as session:
        entry = session.exec(select(AuditEntry).where(
            AuditEntry.action == "ballot_reopened")).one()
    assert entry.actor == "business manager Sam Example"
    # the next step posts it to the channel, the partners' votes decide the case,
    posts_before = len(harness.slack.state.named("chat.postMessage"))
    harness.step("2026-12-22T09:06")
    assert len(harness.slack.state.named("chat.postMessage")) == posts_before + 1
    harness.vote(POLICE_LEAD, second.id or 0, "rapid_review", "Serious harm.")
    harness.vote(LA_LEAD, second.id or 0, "rapid_review", "Criteria met.")
    assert harness.case(reference).decision == "rapid_review"
    # and a decided ballot, or one still open, is not reopened: one line, exit 2.
    again = CliRunner().invoke(app, [
        "reopen-ballot", reference, "--config", str(config_file), "--ballot", "decision"])
    assert again.exit_code == 2
    assert f"the decision ballot on {reference} was answered: Rapid Review" in again.output
    none = CliRunner().invoke(app, [
        "reopen-ballot", reference, "--config", str(config_file), "--ballot", "signoff"])
    assert none.exit_code == 2 and "has had no signoff ballot to reopen" in none.output


def test_a_signoff_ballot_with_changes_requested_is_not_reopened_on_the_same_version(
    harness: Harness, tmp_path: Path
) -> None:
    # Given a sign-off ballot two partners closed by asking for changes,
    reference, ballot_id = signoff(harness)
    harness.vote(POLICE_LEAD, ballot_id, "request_changes", "Add the timeline.")
    harness.vote(LA_LEAD, ballot_id, "request_changes", "Add the timeline.")
    assert harness.ballot(reference, "signoff").outcome == "request_changes"
    # when the business manager tries to reopen it,
    result = CliRunner().invoke(app, [
        "reopen-ballot", reference, "--config", str(harness_config_file(tmp_path, harness)),
        "--ballot", "signoff", "--now", "2026-12-22T09:05"])
    # then they are told a new version is what opens a new ballot, and nothing opens.
    assert result.exit_code == 2
    assert "a new version (`rrbot report add`) opens a new sign-off ballot" in result.output
    assert harness.ballot(reference, "signoff").id == ballot_id


def test_rrbot_vote_says_when_a_vote_replaced_the_organisations_earlier_one(
    harness: Harness, tmp_path: Path
) -> None:
    # Given the police lead's phone vote recorded on an open decision ballot,
    reference = harness.open_case()
    config_file = harness_config_file(tmp_path, harness)
    command = ["vote", reference, "--config", str(config_file), "--ballot", "decision",
               "--partner", "police", "--evidence", "Phone call, noted by SE"]
    first = CliRunner().invoke(app, [*command, "--member", "Chris Superintendent",
                                     "--choice", "rapid_review", "--rationale", "Serious harm.",
                                     "--now", "2026-12-21T10:10"])
    assert first.exit_code == 0, first.output
    assert "replaces" not in first.output
    # when the police deputy's different vote is recorded later,
    second = CliRunner().invoke(app, [*command, "--member", "Robin Inspector",
                                      "--choice", "more_information", "--rationale", "Wait.",
                                      "--now", "2026-12-21T11:10"])
    # then the business manager is told it replaced the police's earlier vote.
    assert second.exit_code == 0, second.output
    assert second.output.strip() == (f"{reference}: counted police more_information by Robin"
                                     " Inspector; it replaces the Police's earlier vote")

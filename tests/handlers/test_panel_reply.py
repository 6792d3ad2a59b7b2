"""The National Panel's replies reach the business manager, the first taken as acknowledgement."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlmodel import col, select

from bot.cases.lifecycle import open_case
from bot.config import Config
from bot.kernel.mailbox import FetchedMail
from bot.process.working_days import parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import Case, OutboxMessage
from tests.corpus.make_corpus import mail, person, trace
from tests.recording import RecordingMailbox

PANEL = "Mailbox.NationalReviewPanel@education.gov.uk"


def panel_mail(subject: str, message_id: str, text: str) -> bytes:
    return mail(person("National Panel", PANEL, subject, message_id), text,
                prefix=trace("education.gov.uk"))


def test_each_panel_reply_is_sent_on_to_the_business_manager(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    # Given a Doncaster case, whose preset expects the Panel's decision after the submission,
    # (the example's [process] kept, quorum included: only the preset changes)
    mailbox = RecordingMailbox(tmp_path / "sent.jsonl")
    engine = build_engine(make_config(process={"preset": "doncaster"}), mailbox)
    referred = parse_instant("2027-02-01T10:00")
    with transaction(engine.database) as session:
        reference = open_case(session, engine.config, referred, referred, "test").reference
    # when the Panel acknowledges the report, and later sends its decision,
    replies = [panel_mail(f"RE: [{reference}] Rapid Review report", "<np1@education.gov.uk>",
                          "Thank you, received."),
               panel_mail(f"RE: [{reference}] Panel decision", "<np2@education.gov.uk>",
                          "The Panel decided that a national review is not needed.")]
    for number, (raw, at) in enumerate(zip(replies, ["2027-02-24T11:00", "2027-03-10T15:00"],
                                           strict=True)):
        mailbox.inbox.append(FetchedMail(f"panel-{number}", raw, parse_instant(at)))
        engine.step(parse_instant(at))
    # then the first is recorded as the acknowledgement, and both reach the business manager
    # with the Panel's own message attached; the second says how to record the decision.
    with transaction(engine.database) as session:
        case = session.exec(select(Case).where(Case.reference == reference)).one()
        notices = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "panel_reply_notice").order_by(col(OutboxMessage.id))).all()
    assert case.panel_acknowledged_at == parse_instant("2027-02-24T11:00")
    assert [row.status for row in notices] == ["sent", "sent"]
    assert all(row.recipients == engine.config.settings.business_manager.email
               for row in notices)
    messages = [message_from_bytes(row.payload, policy=policy.default) for row in notices]
    assert isinstance(messages[0], EmailMessage) and isinstance(messages[1], EmailMessage)
    assert str(messages[0]["Subject"]) == f"[{reference}] The National Panel replied" \
        " (acknowledgement)"
    for message, raw in zip(messages, replies, strict=True):
        (attached,) = list(message.iter_attachments())
        assert attached.get_filename() == "national-panel-reply.eml"
        assert attached.get_content() == raw
    body = messages[1].get_body(("plain",))
    assert body is not None
    assert (f"rrbot case panel-response --config config.toml {reference} --decision"
            in body.get_content())
    engine.database.dispose()

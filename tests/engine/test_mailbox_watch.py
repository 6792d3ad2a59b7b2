"""The IMAP server down longer than mailbox_stale_minutes: one alert, however long it lasts."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.config import load_config
from bot.process.working_days import parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import AuditEntry, OutboxMessage
from tests.service.run_config import PASSWORD, make_people, write_imap_config

START = parse_instant("2027-01-13T09:00")


@pytest.mark.slow
def test_one_alert_goes_when_the_imap_server_is_down_longer_than_the_limit(
    tmp_path: Path, mail_servers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the bot reading its mailbox on the test Dovecot and sending through the SMTP
    # server, with the example's limit of 15 minutes and its IT contact,
    monkeypatch.setenv("TEST_RUN_PW", PASSWORD)
    people = make_people(mail_servers)
    config = load_config(write_imap_config(tmp_path, mail_servers, people, 0, use_idle=False))
    engine = build_engine(config)
    try:
        assert engine.step(START).mailbox_error is None
        # when the IMAP server stops and the bot steps over 45 minutes of the simulated clock,
        mail_servers.stop_imap()
        try:
            for minutes in (1, 5, 14, 15, 16, 17, 30, 45):
                report = engine.step(START + timedelta(minutes=minutes))
                assert report.mailbox_error is not None
        finally:
            mail_servers.start_imap()
        # and then the server answers again,
        assert engine.step(START + timedelta(minutes=50)).mailbox_error is None
    finally:
        engine.mailbox.close()
    # then exactly one alert was queued, 15 minutes after the first failed read, and sent to
    # the business manager and to the IT contact.
    with transaction(engine.database) as session:
        alerts = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "mailbox_alert")).all()
        recovered = session.exec(select(AuditEntry).where(
            AuditEntry.action == "mailbox_recovered")).all()
    engine.database.dispose()
    assert [(row.created_at, row.status) for row in alerts] == [
        (START + timedelta(minutes=16), "sent")]
    [manager_copy] = mail_servers.messages(people["manager"])
    message = message_from_bytes(manager_copy, policy=policy.default)
    assert str(message["Subject"]).strip() == f"The Rapid Review bot cannot read {people['bot']}"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and "since 09:01 on Wednesday 13 January 2027" in body.get_content()
    assert [mail.recipient for mail in mail_servers.relayed()
            if b"cannot read" in mail.raw] == ["it.servicedesk@exampleshire.example"]
    assert len(recovered) == 1

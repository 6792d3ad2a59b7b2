"""A referral through the real Dovecot and SMTP servers, with the bot restarted between steps."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.engine.step import Engine
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import Case, InboundMessage
from tests.factories import config_document, config_of, exactly, merge
from tests.handlers.world import HANDLED, world_changes

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PASSWORD_ENV = "TEST_RRBOT_MAIL_PASSWORD"
# The SMTP test server's own name: it writes the Received header above our results.
BOUNDARY = "smtp.rrbot.test"


def person(name: str, email: str) -> dict[str, str]:
    return {"name": name, "email": email}


def intake_config(tmp_path: Path, servers: Any, people: dict[str, str]) -> dict[str, Any]:
    """Return the world's config with the mailbox on Dovecot and every person a Dovecot user."""
    account = {"username": people["bot"], "password_env": PASSWORD_ENV,
               "ca_file": str(servers.ca_file)}
    return config_document(tmp_path, **merge(world_changes(tmp_path), {
        "mailbox": {
            "backend": "imap", "address": people["bot"], "trusted_authserv_id": BOUNDARY,
            "imap": exactly({"host": servers.host, "port": servers.imaps_port,
                             "security": "ssl", **account, "use_idle": False}),
            "smtp": exactly({"host": servers.host, "port": servers.smtp_port,
                             "security": "starttls", **account}),
        },
        "business_manager": exactly(person("Sam Example", people["manager"])),
        "partners": exactly({
            "local_authority": {"name": "Council", "lead": person("Alex", people["la_lead"]),
                                "deputies": [person("Jo", people["la_deputy"])]},
            "police": {"name": "Police", "lead": person("Chris", people["police"])},
            "health": {"name": "ICB", "lead": person("Pat", people["health"])},
        }),
        "agencies": [{"key": "gp", "name": "GP Federation",
                      "contacts": [person("Dr Lee", people["referrer"])],
                      "domains": [], "always_ask": True}],
    }))


def fresh_engine(document: dict[str, Any]) -> Engine:
    """Build the bot as a restarted process would: new config, database engine and mailbox."""
    return build_engine(config_of(document))


def close(engine: Engine) -> None:
    engine.mailbox.close()
    engine.database.dispose()


def subjects(servers: Any, address: str, folder: str = "INBOX") -> list[str]:
    return [str(message_from_bytes(raw, policy=policy.default)["Subject"])
            for raw in servers.messages(address, folder)]


def test_a_referral_opens_a_case_and_each_person_is_told_once_across_restarts(
    tmp_path: Path, mail_servers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the bot, the referrer, the business manager and five partner members on Dovecot,
    names = ["bot", "referrer", "manager", "la_lead", "la_deputy", "police", "health"]
    people = {name: mail_servers.new_user(name.replace("_", "")) for name in names}
    monkeypatch.setenv(PASSWORD_ENV, "secret")
    document = intake_config(tmp_path, mail_servers, people)
    raw = (CORPUS / "referral_docx_gp.eml").read_bytes()
    # (the referral as the referrer sends it: from them, with our boundary's verdict on top)
    raw = raw[raw.index(b"From: "):].replace(b"lee.safeguarding@gp.example", people["referrer"]
                                             .encode())
    results = f"Authentication-Results: {BOUNDARY}; dmarc=pass header.from=partnership.test\r\n"
    mail_servers.deliver(people["bot"], results.encode() + raw, sender=people["referrer"])
    # when one process takes the mail in and stops, a second handles it and stops, a third
    # sends, and a fourth steps again later,
    first = fresh_engine(document)
    assert first.ingest(HANDLED) == 1
    close(first)
    second = fresh_engine(document)
    assert second.handle_inbound(HANDLED) == ["referral"]
    close(second)
    for minutes in (1, 30):
        later = fresh_engine(document)
        later.step(HANDLED + timedelta(minutes=minutes))
        close(later)
    # then one case is open with Day 0 the referral's arrival,
    check = fresh_engine(document)
    with transaction(check.database) as session:
        cases = session.exec(select(Case)).all()
        rows = session.exec(select(InboundMessage)).all()
    close(check)
    assert [case.reference for case in cases] == ["RR-2026-001"]
    assert cases[0].clock_start == HANDLED
    assert [(row.status, row.kind) for row in rows] == [("processed", "referral")]
    # the referrer has exactly one acknowledgement, each partner member exactly one copy,
    acknowledgements = subjects(mail_servers, people["referrer"])
    assert len(acknowledgements) == 1
    assert acknowledgements[0].startswith("[RR-2026-001] Referral received")
    for member in ("la_lead", "la_deputy", "police", "health"):
        copies = [s for s in subjects(mail_servers, people[member]) if "New referral" in s]
        assert len(copies) == 1, member
    copy = message_from_bytes(mail_servers.messages(people["la_lead"])[0], policy=policy.default)
    assert [part.get_filename() for part in copy.iter_attachments()] == ["Referral form.docx"]
    # and the referral has left the bot's inbox for the Processed folder.
    assert mail_servers.messages(people["bot"]) == []
    assert len(mail_servers.messages(people["bot"], "Processed")) == 1

"""A small world for inbound tests: the example config, an engine on SQLite, two open cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.agencies.requests import add_agency, request_agencies
from bot.cases.lifecycle import open_case
from bot.config import Config
from bot.engine.step import Engine
from bot.kernel.installation import MESSAGE_ID_KEY
from bot.kernel.mailbox import FetchedMail
from bot.kernel.outbox import message_id_for
from bot.process.working_days import parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import InboundMessage, InstallationSecret, OutboxMessage
from tests.factories import build_config, dotted, merge
from tests.recording import RecordingMailbox

MAILBOX = "rapidreview@exampleshire.example"
DOMAIN = "exampleshire.example"
# Case 1 asks gp, hospital and housing; case 2 asks housing and school.
CASE_ONE_OPENED = parse_instant("2026-03-02T10:00")
CASE_TWO_OPENED = parse_instant("2026-03-02T11:00")
REQUESTS_SENT = parse_instant("2026-03-03T10:00")
# When corpus messages arrive and are handled.
HANDLED = parse_instant("2026-03-05T10:00")


# The world's installation secret, so that the corpus can quote the bot's keyed Message-IDs.
WORLD_SECRET = bytes.fromhex("5eed" * 16)
# Case 2's requests were sent before the upgrade that keyed Message-IDs: theirs are unkeyed.
LEGACY_CASE = "RR-2026-002"


def request_message_id(reference: str, agency_key: str) -> str:
    """Return the Message-ID of the information request the bot sent an agency on a case."""
    secret = None if reference == LEGACY_CASE else WORLD_SECRET
    return message_id_for(f"{reference}:agency:{agency_key}:request", DOMAIN, secret)


def world_changes(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """Return the world's changes to the example config: its own SQLite file and documents.

    overrides are dotted keys, e.g. mailbox.unauthenticated.
    """
    documents = str(tmp_path / "documents")
    return merge({"closure_dates": [], "intake": {"documents_folder": documents}},
                 dotted(overrides))


def world_config(tmp_path: Path, **overrides: Any) -> Config:
    """Build the test configuration; overrides are dotted keys, e.g. mailbox.unauthenticated."""
    return build_config(tmp_path, **world_changes(tmp_path, **overrides))


def make_engine(config: Config, tmp_path: Path) -> tuple[Engine, RecordingMailbox]:
    """Build an engine on the config's SQLite file with a recording mailbox."""
    mailbox = RecordingMailbox(tmp_path / "sent.jsonl", name=MAILBOX)
    return build_engine(config, mailbox), mailbox


def build_world(engine: Engine) -> None:
    """Open the two cases the corpus refers to and send their information requests."""
    config = engine.config
    with transaction(engine.database) as session:
        session.merge(InstallationSecret(name=MESSAGE_ID_KEY, value=WORLD_SECRET.hex()))
    with transaction(engine.database) as session:
        one = open_case(session, config, CASE_ONE_OPENED, CASE_ONE_OPENED, "test",
                        referrer_email="lee.safeguarding@gp.example")
        one.named_agencies = '["housing"]'
        two = open_case(session, config, CASE_TWO_OPENED, CASE_TWO_OPENED, "test",
                        referrer_email="avery.housing@homes.example")
        session.add_all([one, two])
        session.flush()
        request_agencies(session, config, one, REQUESTS_SENT, "test")
        add_agency(session, config, two, "housing", REQUESTS_SENT, "test")
        add_agency(session, config, two, "school", REQUESTS_SENT, "test")
    with transaction(engine.database) as session:
        # Case 2's requests keep the unkeyed Message-IDs of a bot from before the upgrade.
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.case_id == two.id)):
            row.message_id = message_id_for(row.idempotency_key, DOMAIN)
            session.add(row)


def deliver(engine: Engine, mailbox: RecordingMailbox, raw: bytes, server_id: str,
            now: datetime = HANDLED) -> InboundMessage:
    """Put a message in the inbox, run one step, and return its inbound row."""
    mailbox.inbox.append(FetchedMail(server_id, raw))
    engine.step(now)
    with transaction(engine.database) as session:
        row = session.exec(select(InboundMessage).where(
            InboundMessage.server_id == server_id)).one()
        session.expunge(row)
        return row


def utc(text: str) -> datetime:
    """Parse an ISO instant as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)

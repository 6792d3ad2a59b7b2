"""Every message in the corpus gets exactly the outcome its manifest entry says."""

from __future__ import annotations

import shutil
import tomllib
from datetime import date
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from bot.mail.mime import sender_address
from bot.store.db import transaction
from bot.store.models import AgencyRequest, Case, Document, OutboxMessage
from tests.corpus.make_corpus import CHILD_NAME
from tests.handlers.world import HANDLED, build_world, deliver, make_engine, world_config

HERE = Path(__file__).resolve().parent
MANIFEST: dict[str, dict[str, Any]] = tomllib.loads(
    (HERE / "expected.toml").read_text(encoding="utf-8"))
# The purposes inbound handling queues; other modules' reactions (a ballot) are not checked here.
INBOUND_PURPOSES = {"referral_ack", "referral_copy", "incomplete_referral", "bounce_alert",
                    "agency_receipt", "agency_flag", "agency_reminder"}
NOISE = {"own_mail", "auto_reply", "out_of_office", "list_mail", "bounce"}


@pytest.fixture(scope="module")
def world_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the two-case world once; each test starts from a copy of its database file."""
    folder = tmp_path_factory.mktemp("world")
    engine, _mailbox = make_engine(world_config(folder), folder)
    build_world(engine)
    # The actions due at the handling instant run now, so a test's step runs only its message.
    engine.step(HANDLED)
    engine.database.dispose()
    return folder / "rrbot.sqlite3"


def test_the_corpus_has_at_least_sixty_messages() -> None:
    # Given the corpus folder, then every .eml has an entry and there are at least sixty.
    files = sorted(path.name for path in HERE.glob("*.eml"))
    assert len(files) >= 60
    assert set(files) == set(MANIFEST)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_message(name: str, world_database: Path, tmp_path: Path) -> None:
    expected = MANIFEST[name]
    # Given the world's two open cases, copied for this test alone,
    shutil.copy(world_database, tmp_path / "rrbot.sqlite3")
    config = world_config(tmp_path, **expected.get("config", {}))
    engine, _mailbox = make_engine(config, tmp_path)
    raw = (HERE / name).read_bytes()
    with transaction(engine.database) as session:
        last_outbox = session.exec(select(func.max(OutboxMessage.id))).one() or 0
        documents_before = session.exec(select(func.count()).select_from(Document)).one()
    # when the message arrives and the engine steps,
    row = deliver(engine, _mailbox, raw, name)
    # then it gets exactly the outcome the manifest names.
    assert (row.status, row.kind) == (expected["status"], expected["kind"]), row.reason
    if "reason" in expected:
        assert expected["reason"] in (row.reason or ""), row.reason
    with transaction(engine.database) as session:
        new_mail = session.exec(select(OutboxMessage).where(
            col(OutboxMessage.id) > last_outbox)).all()
        case = session.get(Case, row.case_id) if row.case_id else None
        if "case" in expected:
            assert case is not None and case.reference == expected["case"]
        if "queued" in expected:
            purposes = [m.purpose for m in new_mail if m.purpose in INBOUND_PURPOSES]
            assert sorted(purposes) == sorted(expected["queued"])
        _check_case(expected, case)
        _check_request(session, expected, case)
        if "documents" in expected:
            documents = session.exec(select(func.count()).select_from(Document)).one()
            assert documents - documents_before == expected["documents"]
    # Noise and quarantined mail never get an answer.
    sender = sender_address(message_from_bytes(raw, policy=policy.default))
    if row.status == "quarantined" or row.kind in NOISE:
        assert not [m for m in new_mail if sender and sender in m.recipients.lower()]
    # Everything queued says it is automatic, and no subject names the child.
    for queued in new_mail:
        if queued.channel != "mail" or queued.purpose not in INBOUND_PURPOSES:
            continue
        payload = message_from_bytes(queued.payload, policy=policy.default)
        assert str(payload["Auto-Submitted"]) in {"auto-generated", "auto-replied"}
        assert CHILD_NAME not in str(payload["Subject"])
    engine.database.dispose()


def _check_case(expected: dict[str, Any], case: Case | None) -> None:
    if "named_agencies" in expected:
        assert case is not None
        assert sorted(tomllib.loads(f"a = {case.named_agencies}")["a"]) == sorted(
            expected["named_agencies"])
    if expected.get("child"):
        assert case is not None
        assert (case.child_name, case.child_initials) == (CHILD_NAME, "JQ")
        assert case.child_dob == date(2019, 7, 14)
    if "referrer" in expected:
        assert case is not None and case.referrer_email == expected["referrer"]
    if expected.get("panel_acknowledged"):
        assert case is not None and case.panel_acknowledged_at is not None


def _check_request(session: Any, expected: dict[str, Any], case: Case | None) -> None:
    if "agency" not in expected:
        return
    query = select(AgencyRequest).where(AgencyRequest.agency_key == expected["agency"])
    if case is not None:
        query = query.where(AgencyRequest.case_id == case.id)
    requests = session.exec(query).all()
    assert requests
    if "request_status" in expected:
        assert {request.status for request in requests} == {expected["request_status"]}
    if "contact_problem" in expected:
        assert {request.contact_problem for request in requests} == {expected["contact_problem"]}

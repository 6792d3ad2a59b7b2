"""The quarantine commands on a real database: who may, discard with a reason, release refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.cli.main import app
from bot.commands import quarantine
from bot.commands.base import Actor, CommandError, Context, Interface, NotAllowed, Role
from bot.commands.people import OPERATOR, business_manager_at_cli
from bot.digest.attention import quarantine_summary
from bot.engine.step import Engine
from bot.store.db import transaction
from bot.store.models import AuditEntry, Case, InboundMessage
from tests.corpus.make_corpus import mail, person, trace
from tests.factories import write_config
from tests.handlers.world import HANDLED, deliver, make_engine, world_changes, world_config

RUNNER = CliRunner()
RAW = mail(person("A Member of Public", "someone@freemail.test", "Referral about a child",
                  "<x1@freemail.test>"), "I want to refer a child.", prefix=trace("freemail.test"))


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Engine, int]]:
    """Give an engine with one referral from a stranger held in quarantine, and its number."""
    engine = make_engine(world_config(tmp_path), tmp_path)[0]
    row = deliver(engine, engine.mailbox, RAW, "stranger-1")  # type: ignore[arg-type]
    assert row.status == "quarantined"
    yield engine, row.id or 0
    engine.database.dispose()


def run(engine: Engine, actor: Actor, command: object, request: object) -> object:
    """Run a command in its own transaction, committing what it did (a refusal included)."""
    with transaction(engine.database) as session:
        try:
            return command(Context(session, engine.config, actor, HANDLED), request)  # type: ignore[operator]
        except CommandError as exc:
            return exc


def test_discard_needs_a_reason_keeps_the_bytes_and_leaves_the_digest(
    held: tuple[Engine, int],
) -> None:
    engine, number = held
    # Given a held message, when the business manager discards it without a reason,
    refused = run(engine, OPERATOR, quarantine.discard, quarantine.DiscardQuarantined(number, " "))
    # then it is refused in one line and still waits;
    assert isinstance(refused, CommandError) and "reason" in str(refused)
    assert "\n" not in str(refused)
    with transaction(engine.database) as session:
        assert session.get_one(InboundMessage, number).status == "quarantined"
    # when they discard it with a reason,
    manager = business_manager_at_cli(engine.config)
    done = run(engine, manager, quarantine.discard,
               quarantine.DiscardQuarantined(number, "a sales email"))
    # then it is discarded with who and why, its bytes kept, audited, and no longer waiting.
    assert isinstance(done, quarantine.Discarded)
    with transaction(engine.database) as session:
        row = session.get_one(InboundMessage, number)
        assert (row.status, row.discarded_by, row.discarded_reason, row.raw) == (
            "discarded", "business manager Sam Example", "a sales email", RAW)
        assert session.exec(select(AuditEntry).where(
            AuditEntry.action == "quarantine_discarded")).one().actor == manager.who
        assert quarantine_summary(session, engine.config.calendar).count == 0
    waiting = run(engine, OPERATOR, quarantine.list_quarantined, quarantine.ListQuarantine())
    assert waiting == []


@pytest.mark.parametrize("role", [Role.READER, Role.PARTNER_MEMBER, Role.OUTSIDER])
def test_only_the_business_manager_or_operator_may_release_or_discard(
    held: tuple[Engine, int], role: Role,
) -> None:
    engine, number = held
    someone = Actor("slack:U0000000099", role, Interface.CHAT)
    # When anyone else tries to release, discard, list or read held mail,
    for command, request in [
        (quarantine.release, quarantine.ReleaseQuarantined(number, "referral", "trust me")),
        (quarantine.discard, quarantine.DiscardQuarantined(number, "noise")),
        (quarantine.list_quarantined, quarantine.ListQuarantine()),
        (quarantine.show_quarantined, quarantine.ShowQuarantined(number)),
    ]:
        refused = run(engine, someone, command, request)
        # then each is refused and audited, and nothing changes.
        assert isinstance(refused, NotAllowed)
    with transaction(engine.database) as session:
        row = session.get_one(InboundMessage, number)
        assert (row.status, row.vouched_by) == ("quarantined", None)
        assert session.exec(select(Case)).all() == []
        assert len(session.exec(select(AuditEntry).where(
            AuditEntry.action == "chat_command_refused")).all()) == 4


def test_a_release_its_handler_cannot_take_stays_held_and_unvouched(
    held: tuple[Engine, int],
) -> None:
    engine, number = held
    # When a stranger's referral is released as an agency return (no agency sent it),
    refused = run(engine, OPERATOR, quarantine.release,
                  quarantine.ReleaseQuarantined(number, "return", "an agency's return"))
    # then it stays in quarantine, unvouched, and the refusal says why in one line.
    assert isinstance(refused, CommandError) and not isinstance(refused, NotAllowed)
    assert f"message {number} stays in quarantine" in str(refused)
    with transaction(engine.database) as session:
        row = session.get_one(InboundMessage, number)
        assert (row.status, row.vouched_by, row.vouched_as) == ("quarantined", None, None)
    # and --as must name one of the four kinds.
    wrong = run(engine, OPERATOR, quarantine.release,
                quarantine.ReleaseQuarantined(number, "invoice"))
    assert str(wrong) == "--as must be one of referral, return, vote, report, not 'invoice'"


def test_show_gives_the_sender_time_reason_verification_and_attachments(
    held: tuple[Engine, int],
) -> None:
    engine, number = held
    detail = run(engine, OPERATOR, quarantine.show_quarantined,
                 quarantine.ShowQuarantined(number))
    assert isinstance(detail, quarantine.QuarantinedDetail)
    assert (detail.sender, detail.subject) == ("someone@freemail.test", "Referral about a child")
    assert "not a configured contact" in (detail.reason or "")
    assert "not a configured contact" in detail.verification
    assert detail.authentication_results and "dmarc=pass" in detail.authentication_results[0]
    assert detail.attachments == [] and "refer a child" in detail.body


def test_releasing_an_unknown_message_is_one_line_and_exit_2(tmp_path: Path) -> None:
    # Given a configured partnership with nothing in quarantine,
    path = write_config(tmp_path, **world_changes(tmp_path))
    # when the business manager releases message 42,
    result = RUNNER.invoke(app, ["quarantine", "release", "--config", str(path), "42",
                                 "--as", "referral"])
    # then they are told in one line that there is no such message, with exit status 2.
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("there is no message 42")

"""A message released from quarantine (any interface) has its mailbox copy moved by the step."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as DatabaseEngine
from sqlmodel import select

from bot.adapters.mail.maildir import MaildirMailbox
from bot.commands.base import Context
from bot.commands.people import web_actor
from bot.commands.quarantine import Released, ReleaseQuarantined, release
from bot.config import Config
from bot.engine.step import Engine
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import AuditEntry, InboundMessage
from bot.web.quarantine import released_words
from tests.adapters.mail import harness_ews, harness_graph, harness_imap, harness_maildir
from tests.adapters.mail.harness import MailboxHarness
from tests.adapters.mail.harness_graph import GraphHarness
from tests.adapters.mail.harness_maildir import MaildirHarness
from tests.adapters.mail.loopback_graph import Fault
from tests.corpus.make_corpus import mail, person, trace
from tests.handlers.world import HANDLED, world_config
from tests.recording import RecordingChat
from tests.store.test_query_plans import captured

# A stranger's referral, which the sender check holds in quarantine.
MESSAGE_ID = "<held-1@freemail.test>"
REFERRAL = mail(person("A Member of Public", "someone@freemail.test", "Referral about a child",
                       MESSAGE_ID), "I want to refer a child.", prefix=trace("freemail.test"))
# When the business manager releases it in the cockpit, and the bot's next steps.
RELEASED = HANDLED + timedelta(minutes=30)
NEXT_STEP = RELEASED + timedelta(minutes=1)
# Forked children start at once and inherit the imported bot; each makes its own engine.
FORK = multiprocessing.get_context("fork")

HARNESSES: dict[str, Callable[[Any, Path], Iterator[Any]]] = {
    "maildir": harness_maildir.harness, "imap": harness_imap.harness,
    "graph": harness_graph.harness, "ews": harness_ews.harness,
}


@pytest.fixture(params=sorted(HARNESSES))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MailboxHarness]:
    """Give each real mailbox in turn: Maildir, Dovecot, and the loopback Graph and EWS."""
    (tmp_path / "server").mkdir()
    yield from HARNESSES[request.param](request, tmp_path / "server")


@pytest.fixture
def maildir(tmp_path: Path) -> Iterator[MaildirHarness]:
    """Give a Maildir mailbox in the test's folder."""
    built = MaildirHarness(tmp_path / "mail")
    yield built
    built.mailbox.close()


@pytest.fixture
def graph(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphHarness]:
    """Give a Graph mailbox on the loopback server."""
    (tmp_path / "server").mkdir()
    yield from harness_graph.harness(request, tmp_path / "server")


def held(server: MailboxHarness, tmp_path: Path, **changes: Any) -> tuple[Engine, int]:
    """Deliver the stranger's referral and step: it is held, its copy filed in Quarantine."""
    engine = build_engine(world_config(tmp_path, **changes), server.mailbox,
                          RecordingChat(tmp_path / "chat.jsonl"))
    server.deliver(REFERRAL)
    engine.step(HANDLED)
    with transaction(engine.database) as session:
        row = session.exec(select(InboundMessage)).one()
    assert (row.status, row.refile_to) == ("quarantined", None)
    assert server.folder_message_ids("Quarantine") == [MESSAGE_ID]
    return engine, row.id or 0


def release_in_the_cockpit(engine: Engine, number: int) -> Released:
    """Release a held message as the cockpit's form does: as the signed-in business manager."""
    config = engine.config
    actor = web_actor(config, config.settings.business_manager.email)
    assert actor is not None
    with transaction(engine.database) as session:
        return release(Context(session, config, actor, RELEASED),
                       ReleaseQuarantined(number, "referral", "rang the referrer back"))


def mark_of(engine: Engine, number: int) -> str | None:
    with transaction(engine.database) as session:
        return session.get_one(InboundMessage, number).refile_to


def skipped(engine: Engine) -> list[AuditEntry]:
    with transaction(engine.database) as session:
        return list(session.exec(select(AuditEntry).where(
            AuditEntry.action == "inbound_refile_skipped")))


def moves(graph: GraphHarness) -> int:
    """Count the message moves the loopback Graph server was asked for."""
    return sum(1 for method, path in graph.server.requests
               if method == "POST" and path.endswith("/move"))


def test_a_release_from_the_cockpit_moves_the_copy_to_processed_at_the_next_step(
    server: MailboxHarness, tmp_path: Path,
) -> None:
    # Given a stranger's referral held in quarantine, its copy in the Quarantine folder,
    engine, number = held(server, tmp_path)
    # when the business manager releases it in the cockpit,
    released = release_in_the_cockpit(engine, number)
    # then the release marks its copy to move, and the copy waits for the bot's next step;
    assert released.folders == ("Quarantine", "Processed")
    assert ("its copy moves from Quarantine to Processed, at the bot's next step"
            in released_words(released))
    assert mark_of(engine, number) == "Processed"
    assert server.folder_message_ids("Quarantine") == [MESSAGE_ID]
    # when the bot steps,
    engine.step(NEXT_STEP)
    # then the copy is in Processed, none is left in Quarantine, and the mark is cleared;
    assert server.folder_message_ids("Processed") == [MESSAGE_ID]
    assert server.folder_message_ids("Quarantine") == []
    assert mark_of(engine, number) is None
    # and the next step leaves it there, with nothing to say.
    engine.step(NEXT_STEP + timedelta(minutes=1))
    assert server.folder_message_ids("Processed") == [MESSAGE_ID]
    assert skipped(engine) == []
    engine.database.dispose()


def test_a_refile_that_fails_is_tried_at_the_next_step_then_done_once(
    graph: GraphHarness, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a released message, and Graph unavailable for its move at the next step,
    engine, number = held(graph, tmp_path)
    release_in_the_cockpit(engine, number)
    before = moves(graph)
    graph.server.add_fault(Fault(match="/move", count=1, status=503, retry_after="3600"))
    # when the bot steps,
    with caplog.at_level(logging.WARNING, logger="bot.engine.refile"):
        engine.step(NEXT_STEP)
    # then the copy stays in Quarantine, still marked, and the log names only the error's type;
    assert graph.folder_message_ids("Quarantine") == [MESSAGE_ID]
    assert mark_of(engine, number) == "Processed"
    assert "TransientMailboxError" in caplog.text
    assert "freemail" not in caplog.text and "Referral about" not in caplog.text
    # when the bot steps again, and again,
    engine.step(NEXT_STEP + timedelta(minutes=1))
    engine.step(NEXT_STEP + timedelta(minutes=2))
    # then the copy moved at the second try and was never moved again.
    assert graph.folder_message_ids("Processed") == [MESSAGE_ID]
    assert mark_of(engine, number) is None
    assert moves(graph) - before == 2
    assert skipped(engine) == []
    engine.database.dispose()


def test_a_copy_moved_out_of_quarantine_by_hand_is_left_there_and_audited_once(
    maildir: MaildirHarness, tmp_path: Path,
) -> None:
    # Given a held message whose copy someone moved by hand into a folder of their own,
    engine, number = held(maildir, tmp_path)
    [name] = os.listdir(maildir.root / "quarantine" / "new")
    for subdir in ("new", "cur", "tmp"):
        (maildir.root / "reviewed" / subdir).mkdir(parents=True)
    os.rename(maildir.root / "quarantine" / "new" / name,
              maildir.root / "reviewed" / "new" / name)
    # when it is released and the bot steps twice,
    release_in_the_cockpit(engine, number)
    engine.step(NEXT_STEP)
    engine.step(NEXT_STEP + timedelta(minutes=1))
    # then the copy is left where it was put, the mark cleared, and the audit says so once.
    assert maildir.folder_message_ids("Reviewed") == [MESSAGE_ID]
    assert maildir.folder_message_ids("Processed") == []
    assert mark_of(engine, number) is None
    [entry] = skipped(engine)
    assert entry.actor == "bot"
    assert "not found in Quarantine or Processed; left as is" in entry.detail
    engine.database.dispose()


class DiesAfterTheMove(MaildirMailbox):
    """A real Maildir mailbox whose process is killed the moment a refile's move is done."""

    def refile(self, server_id: str, message_id: str | None, source: str, target: str) -> None:
        super().refile(server_id, message_id, source, target)
        os.kill(os.getpid(), signal.SIGKILL)


def step_and_die(config: Config, root: Path, chat: Path, now: datetime) -> None:
    """Step once in a forked process, on a mailbox that kills it after the move."""
    build_engine(config, DiesAfterTheMove(root, "bot@partnership.test"), RecordingChat(chat)
                 ).step(now)


def test_the_mark_survives_a_crash_between_the_move_and_its_clearing(
    maildir: MaildirHarness, tmp_path: Path,
) -> None:
    # Given a released message,
    engine, number = held(maildir, tmp_path)
    release_in_the_cockpit(engine, number)
    engine.database.dispose()
    # when the process stepping is killed just after moving its copy, before clearing its mark,
    child = FORK.Process(target=step_and_die, args=(
        engine.config, maildir.root, tmp_path / "chat.jsonl", NEXT_STEP))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    # then the copy is in Processed and the mark is still there;
    assert maildir.folder_message_ids("Processed") == [MESSAGE_ID]
    assert mark_of(engine, number) == "Processed"
    # and when the bot steps again, the move finds it already done: the mark is cleared, the
    # one copy stays in Processed, and nothing is reported missing.
    engine.step(NEXT_STEP + timedelta(minutes=1))
    assert mark_of(engine, number) is None
    assert maildir.folder_message_ids("Processed") == [MESSAGE_ID]
    assert maildir.folder_message_ids("Quarantine") == []
    assert skipped(engine) == []
    engine.database.dispose()


def plan(database: DatabaseEngine, statement: str, parameters: Any) -> str:
    """Return how the database would run a statement, with sequential scans priced out."""
    with database.connect() as connection:
        if database.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return " ".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("SET enable_seqscan = off")
        found = " ".join(str(row[0]) for row in connection.exec_driver_sql(
            f"EXPLAIN {statement}", parameters))
        connection.rollback()
        return found


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_steps_look_for_marked_copies_reads_only_the_marked_rows(
    backend: str, maildir: MaildirHarness, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    # Given a released message on each database,
    url = (f"sqlite:///{tmp_path / 'plans.sqlite3'}" if backend == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    engine, number = held(maildir, tmp_path, database_url=url)
    release_in_the_cockpit(engine, number)
    # when the bot steps,
    with captured(engine.database) as statements:
        engine.step(NEXT_STEP)
    # then it looked for marked copies once, through the index of the marked rows alone
    # (not every message the mailbox ever had), and moved this one.
    [(statement, parameters)] = [(statement, parameters) for statement, parameters in statements
                                 if "refile_to IS NOT NULL" in statement]
    assert "ix_inbound_refile" in plan(engine.database, statement, parameters)
    assert maildir.folder_message_ids("Processed") == [MESSAGE_ID]
    engine.database.dispose()

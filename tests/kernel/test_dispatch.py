"""Sending a group of outbox rows: each outcome is kept, and what went is never lost or resent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event
from sqlmodel import select

from bot.kernel import dispatch
from bot.kernel.dispatch import Dispatcher, RetryPolicy
from bot.kernel.mailbox import TransientMailboxError
from bot.kernel.outbox import enqueue_mail
from bot.kernel.outgoing import OutgoingMail
from bot.process.working_days import parse_instant
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import AuditEntry, OutboxMessage
from bot.store.statuses import OutboxStatus

QUEUED = parse_instant("2027-01-13T09:00")
SENT = parse_instant("2027-01-13T09:01")
ROWS = 7


class FailingMailbox:
    """A mailbox whose sends go, except those it was told to refuse or to break on."""

    name = "rapidreview@exampleshire.example"

    def __init__(self, refuse: set[int] = frozenset(), break_on: int | None = None) -> None:
        self.refuse = refuse
        self.break_on = break_on
        self.sent: list[str] = []
        self.looked_up: list[str] = []
        self.calls = 0

    def send_raw(self, mail: OutgoingMail) -> None:
        self.calls += 1
        if self.calls == self.break_on:
            raise RuntimeError("the adapter broke")
        if self.calls in self.refuse:
            raise TransientMailboxError("451 try again later", retry_after=600)
        self.sent.append(mail.message_id)

    def find_sent(self, message_id: str) -> bool:
        self.looked_up.append(message_id)
        return message_id in self.sent


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = (f"sqlite:///{tmp_path / 'outbox.sqlite3'}" if request.param == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine) as session:
        for number in range(ROWS):
            enqueue_mail(session, partnership="exampleshire", key=f"group:{number}",
                         purpose="reminder", sender="rapidreview@exampleshire.example",
                         sender_name="Rapid Review", to=[f"person{number}@homes.example"],
                         subject="A reminder", text="Due today.", now=QUEUED)
    yield engine
    engine.dispose()


def statuses(database: Engine) -> dict[str, str]:
    with transaction(database) as session:
        return {row.idempotency_key: row.status for row in session.exec(select(OutboxMessage))}


def test_a_refused_send_in_a_group_is_retried_and_the_rest_are_sent(database: Engine) -> None:
    # Given seven queued messages, the third of which the server refuses for now,
    mailbox = FailingMailbox(refuse={3})
    # when they are dispatched together,
    report = Dispatcher(database, mailbox).dispatch(SENT)  # type: ignore[arg-type]
    # then six are sent and confirmed, and the third waits for its retry with the error kept,
    assert len(report.sent) == ROWS - 1 and report.retried == ["group:2"]
    found = statuses(database)
    assert found.pop("group:2") == OutboxStatus.PENDING
    assert set(found.values()) == {OutboxStatus.SENT}
    with transaction(database) as session:
        refused = session.exec(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == "group:2")).one()
        sent_entries = session.exec(select(AuditEntry).where(AuditEntry.action == "sent")).all()
    assert refused.attempts == 1 and refused.last_error == "451 try again later"
    # not before the server's Retry-After,
    assert refused.next_attempt_at >= SENT.replace(minute=11)
    # and each send has its audit entry.
    assert len(sent_entries) == ROWS - 1


def test_an_adapter_that_breaks_mid_group_keeps_what_went_and_resends_nothing(
    database: Engine,
) -> None:
    # Given an adapter that breaks unexpectedly on the fourth send of a group,
    mailbox = FailingMailbox(break_on=4)
    # when the group is dispatched, the error goes on up,
    with pytest.raises(RuntimeError):
        Dispatcher(database, mailbox).dispatch(SENT)  # type: ignore[arg-type]
    # but the three that went are confirmed sent, not left 'sending' for a look-up,
    found = statuses(database)
    assert sorted(key for key, status in found.items() if status == OutboxStatus.SENT) == [
        "group:0", "group:1", "group:2"]
    assert mailbox.looked_up == []
    # and when the lease has run out, the other four go once each, each looked for in Sent
    # first, as their outcome is unknown.
    later = SENT.replace(minute=30)
    report = Dispatcher(database, mailbox).dispatch(later)  # type: ignore[arg-type]
    assert len(report.sent) == ROWS - 3 and len(mailbox.looked_up) == ROWS - 3
    assert len(mailbox.sent) == len(set(mailbox.sent)) == ROWS
    assert set(statuses(database).values()) == {OutboxStatus.SENT}


def test_a_long_run_of_sends_is_confirmed_in_several_commits(
    database: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given groups of three,
    monkeypatch.setattr(dispatch, "CONFIRM_BATCH", 3)
    commits = 0

    def count(_connection: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(database, "commit", count)
    # when seven rows are sent,
    mailbox = FailingMailbox()
    report = Dispatcher(database, mailbox, RetryPolicy()).dispatch(SENT)  # type: ignore[arg-type]
    # then all seven went once, confirmed in three commits between the claim and the next
    # claim, which finds nothing more.
    assert len(report.sent) == ROWS == len(set(mailbox.sent))
    assert commits == 1 + 3 + 1
    assert set(statuses(database).values()) == {OutboxStatus.SENT}

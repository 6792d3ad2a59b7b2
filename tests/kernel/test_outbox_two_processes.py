"""Two processes sweeping one PostgreSQL outbox send every row within one sweep of its time."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta
from email.message import EmailMessage
from threading import BrokenBarrierError

import pytest
from sqlmodel import select

from bot.kernel import dispatch
from bot.kernel.dispatch import Dispatcher, RetryPolicy
from bot.kernel.outbox import enqueue_mail
from bot.process.working_days import parse_instant
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import OutboxMessage
from tests.engine.simulation import run_together

# Forked children start at once and inherit the imported bot; each makes its own engine.
FORK = multiprocessing.get_context("fork")
# Under pytest-xdist these campaigns of racing or killed processes run one at a time on one
# worker, as in a serial run, so no two of them race each other for the cores.
pytestmark = pytest.mark.xdist_group("processes")

ROUNDS = 50
ROWS_PER_ROUND = 100
# Small claims make many of them, so each process's claims keep meeting the other's sends.
CLAIM_BATCH = 5
SWEEP = timedelta(seconds=60)
# The first round's rows fall due at 15:00 London time; each round is an hour after the last.
FIRST_DUE = parse_instant("2027-01-13T15:00")


class SendingMailbox:
    """A mailbox whose sends always succeed at once; the outbox rows record when they went."""

    name = "rapidreview@exampleshire.example"

    def send(self, message: EmailMessage) -> None:
        return None

    def send_raw(self, mail: object) -> None:
        return None

    def find_sent(self, message_id: str) -> bool:
        return False


def sweep_in_lockstep(url: str, instants: list[datetime],
                      barrier: multiprocessing.synchronize.Barrier) -> None:
    """Run in a forked child: dispatch at every instant, together with the other child."""
    dispatch.CLAIM_BATCH = CLAIM_BATCH
    database = make_engine(url)
    dispatcher = Dispatcher(database, SendingMailbox(), RetryPolicy())  # type: ignore[arg-type]
    try:
        for instant in instants:
            barrier.wait(timeout=120)
            dispatcher.dispatch(instant)
    except BrokenBarrierError:
        raise SystemExit(3) from None
    finally:
        database.dispose()


@pytest.mark.slow
def test_two_processes_send_every_outbox_row_within_one_sweep_of_its_time(
    postgres_url: str,
) -> None:
    # Given fifty rounds of 400 emails on PostgreSQL, each round due an hour after the last,
    database = make_engine(postgres_url)
    upgrade(database)
    instants = []
    with transaction(database) as session:
        for number in range(ROUNDS):
            due = FIRST_DUE + timedelta(hours=number)
            instants += [due, due + SWEEP]
            for row in range(ROWS_PER_ROUND):
                enqueue_mail(session, partnership="exampleshire", key=f"round-{number}-{row}",
                             purpose="test", sender="rapidreview@exampleshire.example",
                             sender_name="Rapid Review", to=["agency@example.org"],
                             subject="A reminder", text="Due today.", now=due - SWEEP,
                             not_before=due)
    # when two processes sweep the outbox at each round's time and one sweep later, together,
    barrier = FORK.Barrier(2)
    children = [FORK.Process(target=sweep_in_lockstep, args=(postgres_url, instants, barrier))
                for _ in range(2)]
    assert run_together(children, 600) == [0, 0], "a sweeping child failed or hung"
    # then every row was sent, none later than one sweep after it fell due.
    with transaction(database) as session:
        rows = session.exec(select(OutboxMessage)).all()
    database.dispose()
    late = [row.idempotency_key for row in rows if row.sent_at is None
            or row.sent_at > row.next_attempt_at + SWEEP]
    assert len(rows) == ROUNDS * ROWS_PER_ROUND
    assert late == [], f"{len(late)} rows waited out a lease, e.g. {late[:3]}"

"""Two processes stepping one database through the same simulated weeks send each row once."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta
from pathlib import Path
from threading import BrokenBarrierError

import pytest

from bot.config import Config
from bot.engine.step import Engine
from bot.process.working_days import parse_instant
from bot.store.db import make_engine
from tests.engine.simulation import outcome, prepare, run_together, timeline
from tests.recording import RecordingChat, RecordingMailbox

# Forked children start at once and inherit the imported bot; each makes its own engine.
FORK = multiprocessing.get_context("fork")
# Under pytest-xdist these campaigns of racing or killed processes run one at a time on one
# worker, as in a serial run, so no two of them race each other for the cores.
pytestmark = pytest.mark.xdist_group("processes")

# Five referrals in one partnership, their deadlines spread over the same few weeks.
CLOCK_STARTS = [
    parse_instant("2026-12-18T10:00"),
    parse_instant("2026-12-18T14:20"),
    parse_instant("2026-12-21T09:15"),
    parse_instant("2026-12-22T11:05"),
    parse_instant("2026-12-23T16:40"),
]


def step_in_lockstep(url: str, config: Config, sent: Path, instants: list[datetime],
                     barrier: multiprocessing.synchronize.Barrier) -> None:
    """Run in a forked child: step every instant, starting each together with the other child.

    Lockstep keeps both processes at the same instant, as two hosts sharing one clock are; it
    makes them race for the same due actions and outbox rows at every instant.
    """
    database = make_engine(url)
    engine = Engine(config, database, RecordingMailbox(sent),
                    chat=RecordingChat(sent.with_suffix(".chat")))
    try:
        for instant in instants:
            barrier.wait(timeout=120)
            engine.step(instant)
    except BrokenBarrierError:
        # The other child died; its own exit code tells the parent why.
        raise SystemExit(3) from None
    finally:
        database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.mark.slow
def test_two_processes_stepping_one_database_send_each_outbox_row_once(
    database_url: str, tmp_path: Path
) -> None:
    # Given five open cases in one database and their timeline stepped every two hours,
    config = prepare(database_url, CLOCK_STARTS)
    instants = timeline(database_url, timedelta(hours=2))
    sent = tmp_path / "sent.jsonl"
    barrier = FORK.Barrier(2)
    # when two processes step every instant of it at the same time, each with its own engine,
    children = [
        FORK.Process(target=step_in_lockstep,
                     args=(database_url, config, sent, instants, barrier))
        for _ in range(2)
    ]
    assert run_together(children, 240) == [0, 0], "a stepping child failed or hung"
    result = outcome(database_url, sent, instants[-1])
    print(f"\n{database_url.split(':')[0]}: {len(instants)} instants, {result.actions_done}"
          f" actions, sends per process {sorted(result.sender_counts.values())}")
    # then every action due ran once, every row was sent, and each exactly once,
    assert result.actions_done > 0 and not result.pending_actions
    assert not result.unsent_rows
    assert result.sent == result.message_ids
    assert set(result.sent.values()) == {1}
    # Every ballot was posted to chat exactly once too.
    assert result.chat_posts and set(result.chat_posts.values()) == {1}
    assert result.overdue_audits and set(result.overdue_audits.values()) == {1}
    assert len(result.overdue_audits) == result.overdue_milestones
    assert result.audit_ok
    # and both processes did some of the sending.
    assert set(result.sender_counts) == {child.pid for child in children}


def step_freely(url: str, config: Config, sent: Path, instants: list[datetime],
                skew: timedelta) -> None:
    """Run in a forked child: step every instant as fast as it can, its clock off by skew."""
    database = make_engine(url)
    engine = Engine(config, database, RecordingMailbox(sent),
                    chat=RecordingChat(sent.with_suffix(".chat")))
    try:
        for instant in instants:
            engine.step(instant + skew)
    finally:
        database.dispose()


@pytest.mark.slow
def test_a_process_whose_clock_runs_ahead_never_resends_what_another_is_sending(
    database_url: str, tmp_path: Path
) -> None:
    # Given two processes stepping one database without waiting for each other, the second
    # one's clock ten minutes ahead (beyond the outbox lease of five minutes),
    config = prepare(database_url, CLOCK_STARTS)
    instants = timeline(database_url, timedelta(hours=2))
    sent = tmp_path / "sent.jsonl"
    children = [
        FORK.Process(target=step_freely, args=(database_url, config, sent, instants, skew))
        for skew in (timedelta(0), timedelta(minutes=10))
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=240)
    assert [child.exitcode for child in children] == [0, 0]
    result = outcome(database_url, sent, instants[-1] + timedelta(minutes=10))
    # then every row went out exactly once: a row being sent is held, never taken over.
    assert not result.unsent_rows
    assert result.sent == result.message_ids
    assert set(result.sent.values()) == {1}
    # Every ballot was posted to chat exactly once too.
    assert result.chat_posts and set(result.chat_posts.values()) == {1}

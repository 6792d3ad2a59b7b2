"""The audit chain joins at commit, drops rolled-back savepoints, and never deadlocks writers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from bot.kernel import audit
from bot.store.db import make_engine, retry_on_conflict, transaction
from bot.store.migrate import upgrade
from bot.store.models import AuditEntry, PlannedAction

AT = datetime(2026, 12, 18, 10, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Engine:
    database = make_engine(f"sqlite:///{tmp_path}/rrbot.sqlite3")
    upgrade(database)
    return database


def actions_in_chain(database: Engine) -> list[str]:
    with Session(database) as session:
        return list(session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all())


def test_an_entry_recorded_in_a_rolled_back_savepoint_never_joins_the_chain(
    sqlite_database: Engine,
) -> None:
    # Given one transaction whose first savepoint fails and whose second succeeds,
    with transaction(sqlite_database) as session:
        audit.record(session, "exampleshire", "bot", "before", AT)
        with pytest.raises(ValueError), session.begin_nested():
            audit.record(session, "exampleshire", "bot", "undone", AT)
            raise ValueError("the handler failed")
        with session.begin_nested():
            audit.record(session, "exampleshire", "bot", "kept", AT)
    # when a second transaction fails outright,
    with pytest.raises(RuntimeError), transaction(sqlite_database) as session:
        audit.record(session, "exampleshire", "bot", "rolled_back", AT)
        raise RuntimeError("the database went away")
    # then only the entries of committed work are in the chain, in order, and it verifies.
    assert actions_in_chain(sqlite_database) == ["before", "kept"]
    with Session(sqlite_database) as session:
        assert [check.ok for check in audit.verify(session)] == [True]


def test_two_partnerships_recorded_in_one_transaction_each_get_their_own_chain(
    sqlite_database: Engine,
) -> None:
    with transaction(sqlite_database) as session:
        audit.record(session, "westshire", "bot", "one", AT)
        audit.record(session, "eastshire", "bot", "two", AT)
        audit.record(session, "westshire", "bot", "three", AT)
    with Session(sqlite_database) as session:
        checks = audit.verify(session)
    assert {(check.partnership, check.entries, check.ok) for check in checks} == {
        ("eastshire", 1, True), ("westshire", 2, True)}


def lock_row(session: Session, row_id: int | None) -> None:
    session.exec(select(PlannedAction.id).where(PlannedAction.id == row_id).with_for_update())


def wait_until_blocked(database: Engine, pid: int) -> None:
    """Wait (at most 20 s, for a real server) until a PostgreSQL backend waits for a lock."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with database.connect() as connection:
            waiting = connection.execute(text(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"
            ), {"pid": pid}).scalar()
        if waiting == "Lock":
            return
        time.sleep(0.05)  # real-time ok: polling a real server's view of its backends, bounded
    raise AssertionError(f"backend {pid} never waited for the lock")


@pytest.mark.slow
def test_audited_transactions_that_lock_the_same_row_in_turn_never_deadlock(
    postgres_url: str,
) -> None:
    # Given a planned action row, and one transaction (A) that has audited something and
    # then waits for the row, which another transaction (B) holds and then audits (the
    # order in which a due action and an inbound reply met in CI),
    database = make_engine(postgres_url)
    upgrade(database)
    with transaction(database) as session:
        row = PlannedAction(partnership="exampleshire", key="chase", action="chase",
                            due_at=AT)
        session.add(row)
        session.flush()
        row_id = row.id
    b_holds_row, a_connected = threading.Event(), threading.Event()
    a_pid: list[int] = []
    errors: list[BaseException] = []

    def transaction_a() -> None:
        try:
            b_holds_row.wait(timeout=20)
            with transaction(database) as session:
                backend = session.connection().execute(text("SELECT pg_backend_pid()"))
                a_pid.append(backend.scalar_one())
                a_connected.set()
                audit.record(session, "exampleshire", "bot", "a_first", AT)
                session.flush()
                lock_row(session, row_id)
                audit.record(session, "exampleshire", "bot", "a_second", AT)
        except BaseException as exc:  # noqa: BLE001 - the main thread reports it.
            errors.append(exc)
            a_connected.set()

    a = threading.Thread(target=transaction_a)
    a.start()
    # when B locks the row, lets A block on it, then audits and commits,
    with transaction(database) as session:
        lock_row(session, row_id)
        b_holds_row.set()
        a_connected.wait(timeout=20)
        assert a_pid, errors
        wait_until_blocked(database, a_pid[0])
        audit.record(session, "exampleshire", "bot", "b", AT)
    a.join(timeout=30)
    # then both commit (neither is chosen as a deadlock victim) and the chain verifies.
    assert not a.is_alive() and not errors
    assert actions_in_chain(database) == ["b", "a_first", "a_second"]
    with Session(database) as session:
        assert [check.ok for check in audit.verify(session)] == [True]
    database.dispose()


@pytest.mark.slow
def test_a_transaction_chosen_as_a_deadlock_victim_is_run_again(postgres_url: str) -> None:
    # Given two rows, and two units of work that lock them in opposite orders, each waiting
    # for the other to hold its first row, so that PostgreSQL must break a real deadlock,
    database = make_engine(postgres_url)
    upgrade(database)
    with transaction(database) as session:
        rows = [PlannedAction(partnership="exampleshire", key=key, action="chase", due_at=AT)
                for key in ("first", "second")]
        session.add_all(rows)
        session.flush()
        row_ids = [row.id for row in rows]
    both_hold_one = threading.Barrier(2, timeout=20)
    runs: list[str] = []

    def lock_in_order(name: str, order: list[int | None]) -> None:
        runs.append(name)
        with transaction(database) as session:
            for position, row_id in enumerate(order):
                lock_row(session, row_id)
                # Only the first run of each waits for the other: a rerun goes straight on.
                if position == 0 and runs.count(name) == 1:
                    both_hold_one.wait()
            audit.record(session, "exampleshire", "bot", name, AT)

    errors: list[BaseException] = []

    def unit(name: str, order: list[int | None]) -> None:
        try:
            retry_on_conflict(lambda: lock_in_order(name, order))
        except BaseException as exc:  # noqa: BLE001 - the main thread reports it.
            errors.append(exc)

    threads = [threading.Thread(target=unit, args=("up", row_ids)),
               threading.Thread(target=unit, args=("down", row_ids[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # then the victim ran again and both units committed, once each. On a loaded machine the
    # rerun can meet the other unit again and PostgreSQL may pick a victim twice, so the number
    # of reruns is at least one, not exactly one; what commits is exactly one of each.
    assert not errors
    assert len(runs) >= 3 and set(runs) == {"down", "up"}
    assert sorted(actions_in_chain(database)) == ["down", "up"]
    database.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_entries_recorded_in_summer_time_winter_time_and_utc_verify(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    # Given a chain of entries whose instants were given in BST, GMT and UTC,
    from zoneinfo import ZoneInfo

    url = (f"sqlite:///{tmp_path}/rrbot.sqlite3" if backend == "sqlite"
           else request.getfixturevalue("postgres_url"))
    database = make_engine(url)
    upgrade(database)
    london = ZoneInfo("Europe/London")
    instants = [datetime(2027, 6, 1, 10, 0, tzinfo=london),
                datetime(2027, 1, 11, 10, 0, tzinfo=london),
                datetime(2027, 3, 28, 0, 30, 0, 123456, tzinfo=UTC)]
    for number, at in enumerate(instants):
        with transaction(database) as session:
            audit.record(session, "exampleshire", "bot", f"tick_{number}", at)
    # When the chain is recomputed from the database,
    with Session(database) as session:
        checks = audit.verify(session)
    # Then every entry matches: the offset the caller used does not change the hash.
    assert [(check.entries, check.first_broken_id) for check in checks] == [(3, None)]

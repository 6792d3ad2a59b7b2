"""Time one step(now) over 10,000 open cases on SQLite and PostgreSQL: idle, and 100 due.

Usage: .venv/bin/python bench/sweep.py [--due 100] [--sqlite-only] [--postgres-url URL]

The busy step (--due actions, each sending one email) is printed beside its floor, measured
in the same run (bench/floor.py: as many durable SQLite commits of a state change plus its
outbox row, renders of a two-part reminder, and two-part MIME messages assembled as bytes),
as a ratio: best of five rounds of each, interleaved. The goal is at most 5x the floor on
SQLite and 8x on PostgreSQL.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy import Table, func, insert, select, update
from sqlmodel import SQLModel

ROOT = Path(__file__).resolve().parents[1]
# The bench runs from a checkout: bot/ and tests/ are imported from it.
sys.path.insert(0, str(ROOT))

from bench.floor import floor  # noqa: E402
from bot.cases.lifecycle import open_case  # noqa: E402
from bot.config import Config, config_from_document  # noqa: E402
from bot.engine.step import Engine  # noqa: E402
from bot.kernel.mailbox import FetchedMail  # noqa: E402
from bot.process.working_days import parse_instant  # noqa: E402
from bot.service.wiring import open_database  # noqa: E402
from bot.store.db import transaction  # noqa: E402
from bot.store.models import Case, OutboxMessage, PlannedAction  # noqa: E402

CASES = 10_000
DUE = 100
IDLE_RUNS = 9
BUSY_RUNS = 5
FIRST_CLOCK_START = parse_instant("2026-12-18T10:00").astimezone(UTC)
# Case i's clock starts i minutes after the first, so deadlines spread over about a week.
SPREAD = timedelta(minutes=1)
# The sweep instant: ten days in, half a minute past a whole minute, so no deadline equals it.
IDLE_AT = FIRST_CLOCK_START + timedelta(days=10, seconds=30)
# Tables copied from the template case (every table keyed by case except the audit trail).
SKIPPED_TABLES = {"auditentry", "case"}
GOALS = {"idle": 0.1, "busy": 1.0}
# The busy step's goal as a multiple of its floor, by database.
RATIO_GOALS = {"sqlite": 5.0, "postgresql": 8.0}


class NullMailbox:
    """A mailbox with no inbox that counts what it sends (implements bot.kernel.mailbox.Mailbox)."""

    name = "rapidreview@exampleshire.example"

    def __init__(self) -> None:
        self.sent = 0

    def fetch_new(self) -> Iterator[FetchedMail]:
        return iter(())

    def mark_processed(self, server_id: str, folder: str) -> None:
        return None

    def send(self, message: EmailMessage) -> None:
        self.sent += 1

    def send_raw(self, mail: object) -> None:
        self.sent += 1

    def find_sent(self, message_id: str) -> bool:
        return False

    def wait_for_mail(self, timeout: float) -> bool:
        return False

    def check(self) -> list[str]:
        return []

    def close(self) -> None:
        return None


def make_config(url: str) -> Config:
    """Return the example configuration pointed at url."""
    document: dict[str, Any] = tomllib.loads(
        (ROOT / "config.example.toml").read_text(encoding="utf-8")
    )
    document["database"]["url"] = url
    return config_from_document(document)


def populate(database: DatabaseEngine, config: Config, due: int) -> dict[str, int]:
    """Open one case through open_case and copy its rows, shifted in time, to 10,000 cases."""
    with transaction(database) as session:
        template = open_case(session, config, FIRST_CLOCK_START, FIRST_CLOCK_START, "bench")
        template_id, reference = template.id, template.reference
    tables = [table for table in SQLModel.metadata.sorted_tables
              if "case_id" in table.c and table.name not in SKIPPED_TABLES]
    with database.begin() as connection:
        case_row = dict(connection.execute(
            select(Case.__table__).where(Case.__table__.c.id == template_id)  # type: ignore[attr-defined]
        ).mappings().one())
        children = {
            table.name: [dict(row) for row in connection.execute(
                select(table).where(table.c.case_id == template_id)).mappings()]
            for table in tables
        }
        case_table: Table = Case.__table__  # type: ignore[attr-defined]
        for start in range(1, CASES, 1000):
            numbers = range(start, min(CASES, start + 1000))
            cases = [_copy(case_row, number, reference, with_id=True) for number in numbers]
            connection.execute(insert(case_table), cases)
            for table in tables:
                rows = [_copy(row, number, reference, with_id=False) | {"case_id": case["id"]}
                        for number, case in zip(numbers, cases, strict=True)
                        for row in children[table.name]]
                if rows:
                    connection.execute(insert(table), rows)
        # Everything due before the sweep instant happened already: done, and its mail sent.
        actions: Table = PlannedAction.__table__  # type: ignore[attr-defined]
        outbox: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
        connection.execute(update(outbox).values(status="sent", sent_at=IDLE_AT, attempts=1))
        past = connection.execute(
            select(actions.c.key, actions.c.case_id, actions.c.due_at)
            .where(actions.c.status == "pending", actions.c.due_at <= IDLE_AT)
        ).all()
        connection.execute(update(actions).where(actions.c.due_at <= IDLE_AT)
                           .values(status="done", done_at=IDLE_AT))
        rows = [dict(partnership=config.settings.partnership.key, case_id=case_id,
                     idempotency_key=key, channel="mail", purpose="bench",
                     recipients="manager@exampleshire.example", message_id=f"<{key}@bench>",
                     payload=b"x" * 2000, status="sent", attempts=1, created_at=due_at,
                     next_attempt_at=due_at, claimed_at=due_at, sent_at=due_at)
                 for key, case_id, due_at in past]
        for offset in range(0, len(rows), 5000):
            connection.execute(insert(outbox), rows[offset:offset + 5000])
        # Each busy instant, one second apart, gets exactly `due` actions of different cases.
        upcoming = connection.execute(
            # Milestone reminders and deadline checks: each sends one email when it runs.
            select(actions.c.id, actions.c.case_id).where(
                actions.c.status == "pending",
                actions.c.action.in_(["milestone_reminder", "milestone_overdue"]))
            .order_by(actions.c.due_at, actions.c.id)
        ).all()
        chosen: list[int] = []
        seen: set[int] = set()
        for action_id, case_id in upcoming:
            if case_id not in seen:
                seen.add(case_id)
                chosen.append(action_id)
            if len(chosen) == due * BUSY_RUNS:
                break
        for run in range(BUSY_RUNS):
            ids = chosen[run * due:(run + 1) * due]
            connection.execute(update(actions).where(actions.c.id.in_(ids))
                               .values(due_at=busy_at(run)))
        counts = {table.name: connection.execute(select(func.count()).select_from(table)).one()[0]
                  for table in [case_table, *tables]}
    return counts


def busy_at(run: int) -> datetime:
    """Return the instant of busy run number run."""
    return IDLE_AT + timedelta(seconds=run + 1)


def _copy(row: dict[str, Any], number: int, reference: str, with_id: bool) -> dict[str, Any]:
    shift = SPREAD * number
    new_reference = f"BENCH-{number:05d}"
    copied: dict[str, Any] = {}
    for name, value in row.items():
        if name == "id" and not with_id:
            continue
        if isinstance(value, datetime):
            value = value + shift
        elif isinstance(value, str):
            value = value.replace(reference, new_reference)
        copied[name] = value
    if with_id:
        copied["id"] = row["id"] + number
    return copied


def timed(engine: Engine, now: datetime) -> tuple[float, int]:
    """Return the seconds one step took and how many actions it ran."""
    started = time.perf_counter()
    report = engine.step(now)
    return time.perf_counter() - started, len(report.actions)


Result = tuple[str, str, float, float, str, float | None]


def bench(label: str, url: str, due: int) -> list[Result]:
    """Populate a database at url and time the idle and the busy step on it.

    Each busy round is followed by a measure of the floor, so that both see the machine in
    the same state; the best round of each is kept.
    """
    config = make_config(url)
    database = open_database(config)
    try:
        started = time.perf_counter()
        counts = populate(database, config, due)
        print(f"{label}: populated {counts} in {time.perf_counter() - started:.1f} s",
              flush=True)
        mailbox = NullMailbox()
        engine = Engine(config, database, mailbox)
        # A first step warms the connection pool and imports the plugins.
        engine.step(IDLE_AT)
        idle = [timed(engine, IDLE_AT) for _ in range(IDLE_RUNS)]
        assert all(ran == 0 for _seconds, ran in idle)
        busy, floors = [], []
        with tempfile.TemporaryDirectory(prefix="rrbot-floor-") as folder:
            for run in range(BUSY_RUNS):
                busy.append(timed(engine, busy_at(run)))
                floors.append(floor(Path(folder), due))
        assert all(ran == due for _seconds, ran in busy), [ran for _seconds, ran in busy]
        assert mailbox.sent == due * BUSY_RUNS
        idle_seconds = [value for value, _ran in idle]
        busy_seconds = [value for value, _ran in busy]
        median = statistics.median(idle_seconds)
        best = min(busy_seconds)
        return [
            (label, "idle", median, max(idle_seconds),
             "ok" if median < GOALS["idle"] else "MISSED", None),
            (label, f"busy {due}", best, min(floors),
             "ok" if best / min(floors) <= RATIO_GOALS[label] else "MISSED", min(floors)),
        ]
    finally:
        database.dispose()


def main() -> None:
    """Run the benchmark on SQLite and PostgreSQL and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to fill")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--due", type=int, default=DUE, help="actions due in a busy step")
    options = parser.parse_args()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="rrbot-bench-") as folder:
        results += bench("sqlite", f"sqlite:///{Path(folder) / 'bench.sqlite3'}", options.due)
    if options.postgres_url:
        results += bench("postgresql", options.postgres_url, options.due)
    elif not options.sqlite_only:
        from tests.servers.postgres import PostgresServer

        with PostgresServer() as server:
            results += bench("postgresql", server.create_database(f"bench_{uuid.uuid4().hex[:8]}"),
                             options.due)
    print(f"\n{'database':<12}{'step':<10}{'bot ms':>9}{'floor ms':>10}{'ratio':>8}"
          f"{'goal':>7}  verdict")
    for label, name, seconds, other, verdict, floor_seconds in results:
        if floor_seconds is None:
            # The idle step has no floor: its median and worst run against an absolute goal.
            print(f"{label:<12}{name:<10}{seconds * 1000:>9.1f}{'':>10}{'':>8}"
                  f"{GOALS['idle'] * 1000:>5.0f}ms  {verdict} (median; worst"
                  f" {other * 1000:.1f} ms)")
        else:
            print(f"{label:<12}{name:<10}{seconds * 1000:>9.1f}{floor_seconds * 1000:>10.1f}"
                  f"{seconds / floor_seconds:>7.1f}x{RATIO_GOALS[label]:>6.0f}x  {verdict}"
                  " (best of five, interleaved)")


if __name__ == "__main__":
    main()

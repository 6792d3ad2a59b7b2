"""Time one step(now) over 10,000 open cases on SQLite and PostgreSQL: idle, 100 and 1,000 due.

Usage: .venv/bin/python bench/sweep.py [--due 100 --due 1000] [--sqlite-only]
                                       [--postgres-url URL]

Each busy step (--due actions, each sending one email) is printed beside its floor, measured
in the same run (bench/floor.py: as many durable SQLite commits of a state change plus its
outbox row, renders of a two-part reminder, and two-part MIME messages assembled as bytes),
as a ratio: best of five rounds of each, interleaved. The goal is at most 5x the floor on
SQLite and 8x on PostgreSQL (started here with fsync, synchronous commits and full-page
writes on). A last round of the largest burst has a referral arrive as its first reminder
goes out, and says how long the referrer waited for the acknowledgement.
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
from sqlalchemy import Table, func, insert, select, text, update
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
DUE = (100, 1000)
IDLE_RUNS = 9
BUSY_RUNS = 5
FIRST_CLOCK_START = parse_instant("2026-12-18T10:00").astimezone(UTC)
# Case i's clock starts i minutes after the first, so deadlines spread over about a week.
SPREAD = timedelta(minutes=1)
# The sweep instant: ten days in, half a minute past a whole minute, so no deadline equals it.
IDLE_AT = FIRST_CLOCK_START + timedelta(days=10, seconds=30)
# Tables copied from the template case (every table keyed by case except the audit trail).
SKIPPED_TABLES = {"auditentry", "case"}
GOALS = {"idle": 0.1, "busy": 1.0, "acknowledged": 2.0}
# A referral from the corpus, authenticated at the example's mail boundary.
REFERRAL = ROOT / "tests" / "corpus" / "referral_docx_gp.eml"
REFERRER = "lee.safeguarding@gp.example"
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


class ArrivingMailbox(NullMailbox):
    """A NullMailbox whose inbox gets a referral as the first message of a burst goes out.

    It notes when the referral arrived and when the acknowledgement to its sender went.
    """

    def __init__(self) -> None:
        super().__init__()
        self.arrived: float | None = None
        self.acknowledged: float | None = None

    def fetch_new(self) -> Iterator[FetchedMail]:
        if self.arrived is None:
            return iter(())
        return iter([FetchedMail("referral", REFERRAL.read_bytes())])

    def send_raw(self, mail: object) -> None:
        super().send_raw(mail)
        if self.arrived is None:
            self.arrived = time.perf_counter()
        elif self.acknowledged is None and REFERRER in getattr(mail, "recipients", ()):
            self.acknowledged = time.perf_counter()


def make_config(url: str, documents: Path) -> Config:
    """Return the example configuration pointed at url, keeping documents in a folder."""
    document: dict[str, Any] = tomllib.loads(
        (ROOT / "config.example.toml").read_text(encoding="utf-8")
    )
    document["database"]["url"] = url
    document["intake"]["documents_folder"] = str(documents)
    return config_from_document(document)


def populate(database: DatabaseEngine, config: Config, sizes: list[int]) -> dict[str, int]:
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
        # Five rounds of each size, and a last round of the largest with a referral.
        wanted = sum(size * BUSY_RUNS for size in sizes) + max(sizes)
        for action_id, case_id in upcoming:
            if case_id not in seen:
                seen.add(case_id)
                chosen.append(action_id)
            if len(chosen) == wanted:
                break
        for instant, size in busy_instants(sizes):
            ids, chosen = chosen[:size], chosen[size:]
            connection.execute(update(actions).where(actions.c.id.in_(ids))
                               .values(due_at=instant))
        if connection.dialect.name == "postgresql":
            # The cases were given their ids, so PostgreSQL's sequence is moved past them.
            connection.execute(text(
                "SELECT setval(pg_get_serial_sequence('\"case\"', 'id'), max(id)) FROM \"case\""))
        counts = {table.name: connection.execute(select(func.count()).select_from(table)).one()[0]
                  for table in [case_table, *tables]}
    return counts


def busy_instants(sizes: list[int]) -> list[tuple[datetime, int]]:
    """Return each busy round's instant, one second apart, and how many actions fall due."""
    rounds = [size for size in sizes for _run in range(BUSY_RUNS)] + [max(sizes)]
    return [(IDLE_AT + timedelta(seconds=number + 1), size)
            for number, size in enumerate(rounds)]


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


def bench(label: str, url: str, sizes: list[int]) -> list[Result]:
    """Populate a database at url and time the idle and the busy steps on it.

    Each busy round is followed by a measure of the floor, so that both see the machine in
    the same state; the best round of each is kept.
    """
    with tempfile.TemporaryDirectory(prefix="rrbot-documents-") as documents:
        config = make_config(url, Path(documents))
        database = open_database(config)
        try:
            started = time.perf_counter()
            counts = populate(database, config, sizes)
            print(f"{label}: populated {counts} in {time.perf_counter() - started:.1f} s",
                  flush=True)
            return measure(label, config, database, sizes)
        finally:
            database.dispose()


def measure(
    label: str, config: Config, database: DatabaseEngine, sizes: list[int]
) -> list[Result]:
    """Time the idle step, the busy rounds of each size and the burst with a referral."""
    mailbox = NullMailbox()
    engine = Engine(config, database, mailbox)
    # A first step warms the connection pool and imports the plugins.
    engine.step(IDLE_AT)
    idle = [timed(engine, IDLE_AT) for _ in range(IDLE_RUNS)]
    assert all(ran == 0 for _seconds, ran in idle)
    idle_seconds = [value for value, _ran in idle]
    median = statistics.median(idle_seconds)
    results: list[Result] = [(label, "idle", median, max(idle_seconds),
                              "ok" if median < GOALS["idle"] else "MISSED", None)]
    instants = busy_instants(sizes)
    busy: dict[int, list[float]] = {size: [] for size in sizes}
    floors: dict[int, list[float]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="rrbot-floor-") as folder:
        for instant, size in instants[:-1]:
            seconds, ran = timed(engine, instant)
            assert ran == size, (ran, size)
            busy[size].append(seconds)
            floors[size].append(floor(Path(folder), size))
    assert mailbox.sent == sum(size * BUSY_RUNS for size in sizes)
    for size in sizes:
        best, least = min(busy[size]), min(floors[size])
        results.append((label, f"busy {size}", best, least,
                        "ok" if best / least <= RATIO_GOALS[label] else "MISSED", least))
    # The last round: a referral arrives as the burst's first reminder goes out.
    arriving = ArrivingMailbox()
    engine.mailbox = arriving
    instant, size = instants[-1]
    started = time.perf_counter()
    report = engine.step(instant)
    burst = time.perf_counter() - started
    assert "referral" in report.handled, report.handled
    assert arriving.arrived is not None and arriving.acknowledged is not None
    waited = arriving.acknowledged - arriving.arrived
    results.append((label, f"ack {size}", waited, burst,
                    "ok" if waited < GOALS["acknowledged"] else "MISSED", None))
    return results


def main() -> None:
    """Run the benchmark on SQLite and PostgreSQL and print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database to fill")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--due", type=int, action="append",
                        help="actions due in a busy step (repeat for several sizes)")
    options = parser.parse_args()
    sizes = sorted(options.due or DUE)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="rrbot-bench-") as folder:
        results += bench("sqlite", f"sqlite:///{Path(folder) / 'bench.sqlite3'}", sizes)
    if options.postgres_url:
        results += bench("postgresql", options.postgres_url, sizes)
    elif not options.sqlite_only:
        from tests.servers.postgres import PostgresServer

        with PostgresServer(durable=True) as server:
            results += bench("postgresql", server.create_database(f"bench_{uuid.uuid4().hex[:8]}"),
                             sizes)
    print(f"\n{'database':<12}{'step':<10}{'bot ms':>9}{'floor ms':>10}{'ratio':>8}"
          f"{'goal':>7}  verdict")
    for label, name, seconds, other, verdict, floor_seconds in results:
        if name == "idle":
            # The idle step has no floor: its median and worst run against an absolute goal.
            print(f"{label:<12}{name:<10}{seconds * 1000:>9.1f}{'':>10}{'':>8}"
                  f"{GOALS['idle'] * 1000:>5.0f}ms  {verdict} (median; worst"
                  f" {other * 1000:.1f} ms)")
        elif floor_seconds is None:
            # The acknowledgement's wait during a burst, against an absolute goal.
            print(f"{label:<12}{name:<10}{seconds * 1000:>9.1f}{'':>10}{'':>8}"
                  f"{GOALS['acknowledged']:>6.0f}s  {verdict} (referral to acknowledgement"
                  f" during a burst that took {other * 1000:.0f} ms)")
        else:
            print(f"{label:<12}{name:<10}{seconds * 1000:>9.1f}{floor_seconds * 1000:>10.1f}"
                  f"{seconds / floor_seconds:>7.1f}x{RATIO_GOALS[label]:>6.0f}x  {verdict}"
                  " (best of five, interleaved)")


if __name__ == "__main__":
    main()

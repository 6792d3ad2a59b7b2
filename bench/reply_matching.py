"""Time matching a reply to the mail we sent, with a million sent messages, against a key look-up.

Usage: .venv/bin/python bench/reply_matching.py [--messages 1000000] [--lookups 2000]

The database (SQLite, WAL, synchronous=FULL, migrated to head) holds one case and --messages
sent outbox rows. The bot's figure is bot.cases.correspondence.find_case on a reply whose
In-Reply-To names one of them, picked at random; the floor, measured in the same run, is a
SELECT of one outbox row by its primary key. Both run in one session, best of five rounds.
The goal is under 2 ms per match at a million sent messages; the run ends by timing a few
matches with the Message-ID index dropped, to show what it saves.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The bench runs from a checkout: bot/ and tests/ are imported from it.
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, select  # noqa: E402

from bot.cases.correspondence import find_case  # noqa: E402
from bot.cases.lifecycle import open_case  # noqa: E402
from bot.store.db import make_engine, transaction  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402
from bot.store.models import OutboxMessage  # noqa: E402
from tests.factories import build_config  # noqa: E402
from tests.handlers.world import HANDLED  # noqa: E402

ROUNDS = 5


def message_id(number: int) -> str:
    """Return the Message-ID of the numbered sent message."""
    return f"<{number:016x}.{number * 7919 % 10**16:016x}@exampleshire.example>"


def fill(path: Path, case_id: int, messages: int) -> None:
    """Write the sent messages straight through the driver, a hundred thousand a transaction."""
    import sqlite3

    connection = sqlite3.connect(path)
    stamp = "2026-03-02 10:00:00.000000"
    for start in range(0, messages, 100_000):
        rows = [("exampleshire", case_id, f"bench:{n}", "email", "reminder", "[]",
                 message_id(n), b"", "sent", 1, stamp, stamp)
                for n in range(start, min(messages, start + 100_000))]
        connection.executemany(
            "INSERT INTO outboxmessage (partnership, case_id, idempotency_key, channel, purpose,"
            " recipients, message_id, payload, status, attempts, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        connection.commit()
    connection.close()


def reply_to(number: int) -> EmailMessage:
    """Return an agency's reply to the numbered sent message."""
    reply = EmailMessage()
    reply["From"] = "avery.housing@homes.example"
    reply["Subject"] = "Re: information request"
    reply["In-Reply-To"] = message_id(number)
    reply.set_content("Please find our return attached.")
    return reply


def per_call(run: Callable[[int], object], numbers: list[int]) -> float:
    """Return one round's time per call, in milliseconds."""
    started = time.perf_counter()
    for number in numbers:
        run(number)
    return (time.perf_counter() - started) / len(numbers) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = build_config(Path(folder))
        path = Path(folder) / "rrbot.sqlite3"
        database = make_engine(f"sqlite:///{path}")
        upgrade(database)
        with transaction(database) as session:
            case_id = open_case(session, config, HANDLED, HANDLED, "bench").id or 0
        started = time.perf_counter()
        fill(path, case_id, arguments.messages)
        print(f"{arguments.messages:,} sent messages written in "
              f"{time.perf_counter() - started:.1f} s")
        picks = random.Random(18).choices(range(arguments.messages), k=arguments.lookups)
        replies = {number: reply_to(number) for number in picks}
        with Session(database) as session:

            def match(number: int) -> object:
                found = find_case(session, config, replies[number], None)
                assert found is not None and found.case.id == case_id
                return found

            def floor(number: int) -> object:
                return session.exec(select(OutboxMessage.message_id, OutboxMessage.case_id)
                                    .where(OutboxMessage.id == number + 1)).one()

            # The two are interleaved round by round so that both see the same machine.
            rounds = [(per_call(match, picks), per_call(floor, picks)) for _ in range(ROUNDS)]
            bot, key = min(bot for bot, _key in rounds), min(key for _bot, key in rounds)
            print(f"reply matching: {bot:.3f} ms per reply; primary-key look-up: {key:.3f} ms;"
                  f" ratio {bot / key:.1f}x; goal under 2 ms: {'met' if bot < 2 else 'NOT met'}")
        with database.begin() as connection:
            connection.exec_driver_sql("DROP INDEX ix_outbox_message_id")
        with Session(database) as session:
            started = time.perf_counter()
            for number in picks[:3]:
                find_case(session, config, replies[number], None)
            unindexed = (time.perf_counter() - started) / 3 * 1000
        print(f"without the Message-ID index: {unindexed:.1f} ms per reply")
        database.dispose()


if __name__ == "__main__":
    main()

"""The start-up audit check reads only the entries since the last one; `verify` reads them all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, update

from bot.kernel import audit
from bot.store.db import make_engine, transaction
from bot.store.migrate import upgrade
from bot.store.models import AuditEntry

AT = datetime(2026, 12, 18, 10, 0, tzinfo=UTC)


def write_entries(database: Engine, count: int, action: str = "sent") -> None:
    """Commit count audit entries, one transaction each."""
    for _ in range(count):
        with transaction(database) as session:
            audit.record(session, "exampleshire", "bot", action, AT)


def start_up_check(database: Engine) -> list[tuple[int, bool]]:
    """Run the start-up check; return each partnership's entries read and whether intact."""
    with transaction(database) as session:
        return [(check.entries, check.ok) for check in audit.verify_since_checkpoint(session)]


def tamper(database: Engine, entry_id: int) -> None:
    """Edit one entry's detail behind the bot's back."""
    with transaction(database) as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == entry_id)  # type: ignore[arg-type]
                        .values(detail='{"edited": true}'))


def test_the_start_up_check_reads_only_what_was_written_since_the_last(tmp_path: Path) -> None:
    # Given a trail of 200 entries checked once at a start,
    database = make_engine(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    upgrade(database)
    write_entries(database, 200)
    assert start_up_check(database) == [(200, True)]
    # when 5 more are written and the service starts again,
    write_entries(database, 5)
    # then only those 5 are read, and a start with nothing new reads none.
    assert start_up_check(database) == [(5, True)]
    assert start_up_check(database) == [(0, True)]
    database.dispose()


def test_an_edit_after_the_mark_fails_the_start_up_check_and_any_edit_fails_verify(
    tmp_path: Path,
) -> None:
    # Given a trail checked at a start, and entries written after it,
    database = make_engine(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    upgrade(database)
    write_entries(database, 10)
    start_up_check(database)
    write_entries(database, 3)
    # when an entry written since is edited, the next start finds it,
    tamper(database, 12)
    assert start_up_check(database) == [(3, False)]
    # and the mark stays where it was, so every later start finds it again;
    assert start_up_check(database) == [(3, False)]
    # and an edit to the marked entry itself is found at start too;
    tamper(database, 10)
    assert start_up_check(database)[0][1] is False
    # while an edit before the mark is found by the whole-chain verify.
    tamper(database, 2)
    with transaction(database) as session:
        [check] = audit.verify(session)
    assert (check.entries, check.first_broken_id) == (13, 2)
    database.dispose()

"""Database engines and sessions: SQLite (WAL, full sync) by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

log = logging.getLogger(__name__)

T = TypeVar("T")

# Rows claimed per sweep query, so that one step never holds thousands of locks.
CLAIM_BATCH = 200

# PostgreSQL rolls a transaction back with these SQLSTATEs to break a deadlock or a
# serialisation conflict with another transaction; nothing of it happened, so it can run again.
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 5


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, synchronous=FULL, foreign keys and serialised writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event, not the driver, open transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock at once, so two processes never both claim a row.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_sqlite(engine: Engine) -> bool:
    """Say whether the engine is SQLite (which serialises writers instead of locking rows)."""
    return engine.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """Open a session in one transaction: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session


# Each database's INSERT, which knows ON CONFLICT: for statements built once per dialect.
DIALECT_INSERTS: dict[str, Callable[[Table], Insert]] = {
    "sqlite": sqlite_insert, "postgresql": postgresql_insert}


def insert_ignoring_duplicates(dialect: str, table: Table) -> Insert:
    """Return an INSERT on table that skips a row whose unique key is taken (ON CONFLICT)."""
    insert: Any = DIALECT_INSERTS[dialect](table)
    return insert.on_conflict_do_nothing()


def is_conflict(error: BaseException) -> bool:
    """Say whether a database error only means another transaction got in the way."""
    return (isinstance(error, OperationalError)
            and getattr(error.orig, "sqlstate", None) in CONFLICT_SQLSTATES)


def retry_on_conflict(unit: Callable[[], T]) -> T:
    """Run a unit of work that opens its own transaction, again if a conflict rolled it back.

    Only for units whose effects are all in the database: a unit that sends mail must not run
    twice, and the outbox's lease and look-up in Sent deal with those instead.
    """
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return unit()
        except OperationalError as exc:
            if attempt == CONFLICT_ATTEMPTS or not is_conflict(exc):
                raise
            log.warning("a transaction conflicted with another process and is run again"
                        " (attempt %s)", attempt + 1)
    raise AssertionError("unreachable")

"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import bot.store.models  # noqa: F401 - the models fill SQLModel's metadata.
from bot.store.db import make_engine
from bot.store.migrate import upgrade


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrading_to_heads_leaves_nothing_for_autogenerate(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite:///{tmp_path / 'schema.sqlite3'}" if backend == "sqlite"
           else str(request.getfixturevalue("postgres_url")))
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection),
                                       SQLModel.metadata)
    engine.dispose()
    # Type details SQLite cannot express are not differences worth a migration.
    assert [d for d in differences if d[0] != "modify_type"] == []


def test_sqlite_runs_in_wal_mode_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    # Given the embedded default database,
    database = make_engine(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}")
    upgrade(database)
    # then every connection has the durability and integrity settings the engine relies on.
    with database.connect() as connection:
        pragma = {name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                  for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")}
    database.dispose()
    assert pragma == {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1,
                      "busy_timeout": 60000}

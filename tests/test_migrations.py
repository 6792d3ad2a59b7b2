"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import bot.models  # noqa: F401 - the models fill SQLModel's metadata.
from bot.db import make_engine
from bot.migrate import upgrade


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

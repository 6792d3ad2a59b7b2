"""Shared pytest configuration: the real test servers, and the no-child-identity-in-chat check."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from bot.config import Config
from bot.store.models import Case, OutboxMessage
from tests.factories import build_config, write_config

pytest_plugins = ["tests.servers.fixtures"]


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Build the example configuration for this test, e.g. with preset= or mailbox={...}.

    The database is a SQLite file in tmp_path unless database_url is given; see
    tests/factories.py for every keyword.
    """
    def make(**changes: Any) -> Config:
        return build_config(tmp_path, **changes)

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Give the test an empty SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def make_config_file(tmp_path: Path) -> Callable[..., Path]:
    """Write the example configuration for this test into tmp_path and return the file."""
    def make(**changes: Any) -> Path:
        return write_config(tmp_path, **changes)

    return make


def child_markers(connection: Any) -> set[str]:
    """Return every way a case's child could be named: name, its longer parts, birth date."""
    markers: set[str] = set()
    for name, initials, born in connection.execute(
        select(Case.child_name, Case.child_initials, Case.child_dob)  # type: ignore[call-overload]
    ):
        if name:
            markers.add(name)
            markers.update(part for part in re.split(r"[\s-]+", name) if len(part) > 3)
        if initials and len(initials.strip(".")) > 1:
            markers.add(initials)
        if born:
            markers.update({born.isoformat(), born.strftime("%d/%m/%Y")})
    return markers


@pytest.fixture(autouse=True)
def no_child_identity_in_queued_chat() -> Iterator[None]:
    """Fail any test in which a chat message queued in the outbox names a case's child."""
    leaks: list[str] = []

    def check(_mapper: Any, connection: Any, row: OutboxMessage) -> None:
        if row.channel != "chat":
            return
        payload = row.payload.decode("utf-8", "replace")
        leaks.extend(f"{marker!r} in chat row {row.idempotency_key}"
                     for marker in child_markers(connection) if marker in payload)

    event.listen(OutboxMessage, "before_insert", check)
    event.listen(OutboxMessage, "before_update", check)
    try:
        yield
    finally:
        event.remove(OutboxMessage, "before_insert", check)
        event.remove(OutboxMessage, "before_update", check)
    assert not leaks, "a child's identity reached chat: " + "; ".join(leaks[:3])

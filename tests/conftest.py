"""Shared pytest configuration: the real test servers, and the no-child-identity-in-chat check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from bot.store.models import Case, OutboxMessage

pytest_plugins = ["tests.servers.fixtures"]


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

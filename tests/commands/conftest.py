"""A world for the command tests: the example config on SQLite, a case, and who may act."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import col, select

from bot.cases.lifecycle import find_case, open_case
from bot.cases.states import TRANSITIONS, transition
from bot.commands.base import Actor, CommandError, Context
from bot.commands.people import OPERATOR, chat_actor
from bot.config import Config, config_from_document
from bot.engine.step import Engine
from bot.kernel.events import publish
from bot.process.working_days import parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import AuditEntry, Ballot
from tests.recording import RecordingChat, RecordingMailbox

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = "RR-2026-001"
# Friday 18 December 2026 (Day 0); the decision ballot closes at 17:00 on Monday 21 December.
REFERRAL = parse_instant("2026-12-18T10:00")
DECIDED = parse_instant("2026-12-21T14:00")
MANAGER, POLICE_LEAD, HEALTH_LEAD, STRANGER = (
    "U0000000001", "U0000000020", "U0000000030", "U0000000099")

Result = TypeVar("Result")


@dataclass
class World:
    """A configured partnership with one case, and the people who act on it."""

    config: Config
    engine: Engine

    def actor(self, user_id: str, in_workspace: bool = True) -> Actor:
        return chat_actor(self.config, user_id, in_workspace)

    @property
    def manager(self) -> Actor:
        return self.actor(MANAGER)

    @property
    def operator(self) -> Actor:
        return OPERATOR

    def run(self, actor: Actor, command: Callable[[Context, Any], Result], request: Any,
            now: datetime = DECIDED) -> Result | CommandError:
        """Run a command in its own transaction, as chat does: a refusal is committed too."""
        with transaction(self.engine.database) as session:
            try:
                return command(Context(session, self.config, actor, now), request)
            except CommandError as exc:
                return exc

    def audit(self, action: str) -> list[AuditEntry]:
        with transaction(self.engine.database) as session:
            return list(session.exec(select(AuditEntry).where(AuditEntry.action == action)
                                     .order_by(col(AuditEntry.id))))

    def ballot(self, kind: str = "decision") -> Ballot:
        with transaction(self.engine.database) as session:
            found = session.exec(select(Ballot).where(Ballot.kind == kind)
                                 .order_by(col(Ballot.id).desc())).first()
            assert found is not None
            return found


def make_world(tmp_path: Path) -> World:
    document: dict[str, Any] = tomllib.loads(
        (ROOT / "config.example.toml").read_text(encoding="utf-8"))
    document["database"]["url"] = f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    document["partnership"]["closure_dates"] = []
    config = config_from_document(document)
    engine = build_engine(config, RecordingMailbox(tmp_path / "sent.jsonl"),
                          RecordingChat(tmp_path / "chat.jsonl"))
    with transaction(engine.database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        assert case.reference == REFERENCE
    engine.step(REFERRAL)
    return World(config, engine)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Give a world whose case awaits the partners' decision."""
    built = make_world(tmp_path)
    yield built
    built.engine.database.dispose()


@pytest.fixture
def decided(tmp_path: Path) -> Iterator[World]:
    """Give a world whose case was decided at DECIDED, the GP and the hospital asked."""
    built = make_world(tmp_path)
    with transaction(built.engine.database) as session:
        case = find_case(session, REFERENCE)
        for status in ("awaiting_decision", "rapid_review"):
            if status in TRANSITIONS[case.status]:
                transition(session, case, status, "test", DECIDED)
        publish("case_decided", session, built.config, case, DECIDED, decision="rapid_review")
    built.engine.step(DECIDED)
    yield built
    built.engine.database.dispose()

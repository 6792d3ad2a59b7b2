"""Helpers for the multi-process engine tests: a simulated timeline and the child's step loop."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy import text
from sqlmodel import func, select

from bot.cases.lifecycle import open_case
from bot.config import Config
from bot.engine.step import Engine
from bot.kernel import audit
from bot.kernel.actions import discover
from bot.process.working_days import parse_instant
from bot.service.wiring import open_database
from bot.store.db import make_engine, transaction
from bot.store.models import AuditEntry, Milestone, OutboxMessage, PlannedAction
from tests.factories import build_config
from tests.recording import RecordingChat, RecordingMailbox

ROOT = Path(__file__).resolve().parents[2]

# The first referral's clock start: Friday 18 December 2026, 10:00 London time.
FIRST_CLOCK_START = parse_instant("2026-12-18T10:00")


def prepare(url: str, clock_starts: list[datetime]) -> Config:
    """Create the schema and open one case per clock start; close every connection after."""
    # The example (Oldham) configuration pointed at the database url.
    config = build_config(database_url=url)
    database = open_database(config)
    try:
        for clock_start in clock_starts:
            with transaction(database) as session:
                open_case(session, config, clock_start, clock_start, actor="test")
    finally:
        database.dispose()
    # Importing the action plugins once here spares every forked child the imports.
    discover()
    return config


def timeline(url: str, every: timedelta) -> list[datetime]:
    """Return UTC instants from the first clock start to an hour after the last planned action."""
    database = make_engine(url)
    try:
        with transaction(database) as session:
            last = session.exec(select(func.max(PlannedAction.due_at))).one()
    finally:
        database.dispose()
    assert last is not None
    last = last.astimezone(UTC)
    start = FIRST_CLOCK_START.astimezone(UTC)
    instants = []
    at = start
    while at <= last:
        instants.append(at)
        at += every
    instants.append(last + timedelta(hours=1))
    return instants


def read_progress(path: Path) -> int:
    """Return the index of the next instant to step (0 if nothing was stepped yet)."""
    try:
        return int(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        return 0


def write_progress(path: Path, index: int) -> None:
    """Record the next instant to step; the rename makes the record whole or absent."""
    scratch = path.with_name(f"{path.name}.{os.getpid()}")
    scratch.write_text(str(index), encoding="ascii")
    os.replace(scratch, path)


def run_together(children: list[Any], seconds: float) -> list[int | None]:
    """Start forked children, wait for them, kill any still running; return their exit codes.

    A child that had to be killed (it hung) has None as its exit code.
    """
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=seconds)
    codes = [child.exitcode for child in children]
    for child in children:
        if child.exitcode is None:
            child.kill()
            child.join()
    return codes


def resume_child(
    url: str, config: Config, mailbox_path: Path, instants: list[datetime], progress: Path
) -> None:
    """Run in a forked child: step from where the last process stopped to the end of time.

    The clock only moves forward, as a restarted bot's does: the instant a killed process was
    stepping is stepped again, then the ones after it.
    """
    # A forked child never touches its parent's connections: it makes its own engine.
    database = make_engine(url)
    engine = Engine(config, database, RecordingMailbox(mailbox_path),
                    chat=RecordingChat(mailbox_path.with_suffix(".chat")))
    for index in range(read_progress(progress), len(instants)):
        engine.step(instants[index])
        write_progress(progress, index + 1)
    database.dispose()


@dataclass
class Outcome:
    """What the database and the recording mailbox hold at the end of a simulation."""

    pending_actions: list[str]
    actions_done: int
    unsent_rows: list[tuple[str, str]]
    message_ids: Counter[str]
    sent: Counter[str]
    overdue_audits: Counter[str]
    overdue_milestones: int
    audit_ok: bool
    found_in_sent: int
    sender_counts: Counter[int]
    chat_posts: Counter[str]


def outcome(url: str, mailbox_path: Path, until: datetime) -> Outcome:
    """Collect what the assertions of the multi-process tests look at."""
    database = make_engine(url)
    recording = RecordingMailbox(mailbox_path)
    try:
        with transaction(database) as session:
            actions = session.exec(
                select(PlannedAction).where(PlannedAction.due_at <= until)
            ).all()
            rows = session.exec(select(OutboxMessage)).all()
            overdue = session.exec(
                select(AuditEntry).where(AuditEntry.action == "milestone_overdue")
            ).all()
            found = session.exec(
                select(AuditEntry).where(
                    AuditEntry.action == "sent",
                    AuditEntry.detail.contains("found in Sent"),  # type: ignore[attr-defined]
                )
            ).all()
            overdue_milestones = session.exec(
                select(func.count()).select_from(Milestone).where(Milestone.status == "overdue")
            ).one()
            checks = audit.verify(session)
            if database.dialect.name == "sqlite":
                integrity = session.connection().execute(text("PRAGMA integrity_check")).all()
                assert integrity == [("ok",)], integrity
            return Outcome(
                pending_actions=[a.key for a in actions if a.status != "done"],
                actions_done=sum(1 for a in actions if a.status == "done"),
                unsent_rows=[(r.idempotency_key, r.status) for r in rows if r.status != "sent"],
                message_ids=Counter(r.message_id for r in rows if r.channel == "mail"),
                chat_posts=RecordingChat(mailbox_path.with_suffix(".chat")).post_counts(),
                sent=recording.send_counts(),
                overdue_audits=Counter(
                    f"{entry.case_id}:{_milestone_of(entry.detail)}" for entry in overdue
                ),
                overdue_milestones=overdue_milestones,
                audit_ok=all(check.ok for check in checks),
                found_in_sent=len(found),
                sender_counts=Counter(int(record["pid"]) for record in recording.records()),
            )
    finally:
        database.dispose()


def _milestone_of(detail: str) -> str:
    return str(json.loads(detail).get("milestone"))


def sending_rows(url: str) -> int:
    """Count outbox rows left 'sending', i.e. claimed by a process that stopped mid-send."""
    database: DatabaseEngine = make_engine(url)
    try:
        with transaction(database) as session:
            return int(session.exec(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.status == "sending")
            ).one())
    finally:
        database.dispose()

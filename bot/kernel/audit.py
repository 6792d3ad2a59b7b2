"""The append-only audit trail: each entry hashes the one before, so an edit shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as AnySession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select

from bot.process.working_days import as_aware
from bot.store.models import AuditEntry, AuditHead

GENESIS = "0" * 64
# The action of the entry a purge leaves: verify lists these as the trail's tombstones.
TOMBSTONE_ACTION = "case_purged"
# Where a session keeps the entries it has yet to chain, and where each savepoint began.
PENDING = "audit_pending"
SAVEPOINT_MARKS = "audit_savepoints"


def _digest(entry: AuditEntry) -> str:
    # The instant is hashed in UTC, the form it is stored and read back in, whatever offset
    # the caller gave it (a summer-time --now is an hour ahead of UTC).
    at = as_aware(entry.at).astimezone(UTC)
    body = json.dumps(
        [entry.partnership, at.isoformat(), entry.actor, entry.action, entry.case_id,
         entry.detail, entry.prev_hash],
        separators=(",", ":"), ensure_ascii=True,
    )
    return hashlib.sha256(body.encode("ascii")).hexdigest()


def record(
    session: Session,
    partnership: str,
    actor: str,
    action: str,
    at: datetime,
    case_id: int | None = None,
    **detail: Any,
) -> None:
    """Add one entry to the caller's transaction; it is chained when the transaction commits."""
    _pending(session).append(AuditEntry(
        partnership=partnership, at=as_aware(at).astimezone(UTC), actor=actor, action=action,
        case_id=case_id,
        detail=json.dumps(detail, sort_keys=True, default=str), prev_hash="", hash="",
    ))


def _pending(session: AnySession) -> list[AuditEntry]:
    pending: list[AuditEntry] = session.info.setdefault(PENDING, [])
    return pending


# The listeners are on SQLAlchemy's own Session, so every kind of session chains its entries.
@event.listens_for(AnySession, "after_transaction_create")
def _mark_savepoint(session: AnySession, transaction: SessionTransaction) -> None:
    # A savepoint remembers how many entries came before it, to drop its own if it rolls back.
    if transaction.nested:
        session.info.setdefault(SAVEPOINT_MARKS, {})[id(transaction)] = len(_pending(session))


@event.listens_for(AnySession, "after_soft_rollback")
def _drop_rolled_back(session: AnySession, previous: SessionTransaction) -> None:
    # Entries recorded in work that was rolled back never happened, so they are not chained.
    if previous.nested:
        mark = session.info.get(SAVEPOINT_MARKS, {}).pop(id(previous), None)
        if mark is not None:
            del _pending(session)[mark:]
    else:
        session.info.pop(PENDING, None)
        session.info.pop(SAVEPOINT_MARKS, None)


@event.listens_for(AnySession, "before_commit")
def _chain_pending(session: AnySession) -> None:
    """Chain the transaction's entries to each partnership's head, as the last thing it does."""
    # Releasing a savepoint is not the end of the transaction: its entries wait for that.
    if session.in_nested_transaction() or not session.info.get(PENDING):
        return
    # Every other change is written first, so that the head row is the last lock the
    # transaction takes, and is held only while its entries are inserted. A transaction
    # holding the head then never waits for another lock, so no two can deadlock on it.
    session.flush()
    entries: list[AuditEntry] = session.info.pop(PENDING)
    session.info.pop(SAVEPOINT_MARKS, None)
    # Heads are locked in one order, so two transactions touching the same partnerships
    # queue up rather than wait for each other.
    for partnership in sorted({entry.partnership for entry in entries}):
        head = session.scalars(
            select(AuditHead).where(AuditHead.partnership == partnership).with_for_update()
        ).first()
        if head is None:
            head = AuditHead(partnership=partnership, last_hash=GENESIS)
        chained = [entry for entry in entries if entry.partnership == partnership]
        last_hash = head.last_hash
        for entry in chained:
            entry.prev_hash = last_hash
            entry.hash = last_hash = _digest(entry)
        session.add_all(chained)
        session.flush()
        # The head changes once, after its entries have their ids: one UPDATE per commit.
        head.last_hash, head.last_id = last_hash, chained[-1].id or 0
        session.add(head)
    session.flush()


@dataclass(frozen=True)
class Tombstone:
    """A case whose identifying records were purged: which, when, under which rule."""

    reference: str
    at: datetime
    actor: str
    rule: str


@dataclass(frozen=True)
class AuditCheck:
    """The result of recomputing a partnership's chain, with the purges it records."""

    partnership: str
    entries: int
    first_broken_id: int | None
    tombstones: tuple[Tombstone, ...] = ()

    @property
    def ok(self) -> bool:
        """Say whether every entry matched."""
        return self.first_broken_id is None


def verify(session: Session) -> list[AuditCheck]:
    """Recompute every partnership's chain and name the first entry that does not match."""
    results = []
    partnerships = session.exec(select(AuditEntry.partnership).distinct()).all()
    for partnership in sorted(partnerships):
        previous = GENESIS
        broken: int | None = None
        count = 0
        tombstones = []
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.partnership == partnership)
            .order_by(col(AuditEntry.id))
        )
        for entry in entries:
            count += 1
            if broken is None and (entry.prev_hash != previous or _digest(entry) != entry.hash):
                broken = entry.id
            previous = entry.hash
            if entry.action == TOMBSTONE_ACTION:
                detail = json.loads(entry.detail)
                tombstones.append(Tombstone(str(detail.get("reference", entry.case_id)),
                                            as_aware(entry.at), entry.actor,
                                            str(detail.get("rule", "-"))))
        head = session.get(AuditHead, partnership)
        if broken is None and head is not None and head.last_hash != previous:
            broken = head.last_id
        results.append(AuditCheck(partnership, count, broken, tuple(tombstones)))
    return results

"""The append-only audit trail: each entry hashes the one before, so an edit shows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, event, insert, update
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
ENTRIES: Table = AuditEntry.__table__  # type: ignore[attr-defined]
HEADS: Table = AuditHead.__table__  # type: ignore[attr-defined]
# Entries go in as one statement, made once, their ids returned in the order given.
_INSERT_ENTRIES = insert(ENTRIES).returning(ENTRIES.c.id, sort_by_parameter_order=True)


@dataclass
class _Entry:
    """An entry recorded in a transaction, waiting for the commit to chain and write it."""

    partnership: str
    at: datetime
    actor: str
    action: str
    case_id: int | None
    detail: str
    prev_hash: str = ""
    hash: str = ""


def _digest(entry: AuditEntry | _Entry) -> str:
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
    _pending(session).append(_Entry(
        partnership, as_aware(at).astimezone(UTC), actor, action, case_id,
        json.dumps(detail, sort_keys=True, default=str),
    ))


def _pending(session: AnySession) -> list[_Entry]:
    pending: list[_Entry] = session.info.setdefault(PENDING, [])
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
    entries: list[_Entry] = session.info.pop(PENDING)
    session.info.pop(SAVEPOINT_MARKS, None)
    # Heads are locked in one order, so two transactions touching the same partnerships
    # queue up rather than wait for each other.
    for partnership in sorted({entry.partnership for entry in entries}):
        head = session.execute(
            select(HEADS.c.last_hash).where(HEADS.c.partnership == partnership)
            .with_for_update()
        ).first()
        chained = [entry for entry in entries if entry.partnership == partnership]
        last_hash = GENESIS if head is None else head.last_hash
        for entry in chained:
            entry.prev_hash = last_hash
            entry.hash = last_hash = _digest(entry)
        # The entries go in as one statement, in order, and the newest one's id is kept.
        ids = session.execute(_INSERT_ENTRIES, [vars(entry) for entry in chained]).scalars().all()
        # The head changes once, after its entries have their ids: one UPDATE per commit.
        if head is None:
            session.execute(insert(HEADS).values(partnership=partnership, last_hash=last_hash,
                                                 last_id=ids[-1]))
        else:
            session.execute(update(HEADS).where(HEADS.c.partnership == partnership)
                            .values(last_hash=last_hash, last_id=ids[-1]))


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
    """Recompute every partnership's whole chain and name the first entry that does not match."""
    results = []
    partnerships = session.exec(select(AuditEntry.partnership).distinct()).all()
    for partnership in sorted(partnerships):
        walk = _Walk(GENESIS)
        walk.over(session.exec(
            select(AuditEntry).where(AuditEntry.partnership == partnership)
            .order_by(col(AuditEntry.id))
        ))
        head = session.get(AuditHead, partnership)
        if walk.broken is None and head is not None and head.last_hash != walk.previous:
            walk.broken = head.last_id
        results.append(AuditCheck(partnership, walk.count, walk.broken, tuple(walk.tombstones)))
    return results


def verify_since_checkpoint(session: Session) -> list[AuditCheck]:
    """Check each chain from the newest entry found intact before, and move that mark on.

    The work is the entries written since the last check, not every entry ever written: the
    service runs this at start, and `rrbot audit verify` still recomputes the whole chain.
    """
    results = []
    # Each head is locked while its chain is checked, so no entry joins it half-way.
    heads = session.exec(select(AuditHead).order_by(col(AuditHead.partnership))
                         .with_for_update()).all()
    for head in heads:
        walk = _Walk(head.verified_hash)
        if head.verified_id:
            # The mark's own entry must still carry the hash it had when it was checked.
            anchor = session.get(AuditEntry, head.verified_id)
            if anchor is None or anchor.hash != head.verified_hash:
                walk.broken = head.verified_id
        walk.over(session.exec(
            select(AuditEntry).where(AuditEntry.partnership == head.partnership,
                                     col(AuditEntry.id) > head.verified_id)
            .order_by(col(AuditEntry.id))
        ))
        if walk.broken is None and head.last_hash != walk.previous:
            walk.broken = head.last_id
        if walk.broken is None and walk.last_id:
            head.verified_id, head.verified_hash = walk.last_id, walk.previous
            session.add(head)
        results.append(AuditCheck(head.partnership, walk.count, walk.broken))
    return results


@dataclass
class _Walk:
    """A pass along a chain: how far it got, the last hash, the first entry that broke it."""

    previous: str
    count: int = 0
    last_id: int = 0
    broken: int | None = None
    tombstones: list[Tombstone] = field(default_factory=list)

    def over(self, entries: Iterable[AuditEntry]) -> None:
        """Recompute each entry's hash in order, noting the first that does not match."""
        for entry in entries:
            self.count += 1
            if self.broken is None and (entry.prev_hash != self.previous
                                        or _digest(entry) != entry.hash):
                self.broken = entry.id
            self.previous, self.last_id = entry.hash, entry.id or 0
            if entry.action == TOMBSTONE_ACTION:
                detail = json.loads(entry.detail)
                self.tombstones.append(Tombstone(str(detail.get("reference", entry.case_id)),
                                                 as_aware(entry.at), entry.actor,
                                                 str(detail.get("rule", "-"))))

"""The append-only audit trail: each entry hashes the one before, so an edit shows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def _digest(entry: AuditEntry) -> str:
    body = json.dumps(
        [entry.partnership, entry.at.isoformat(), entry.actor, entry.action, entry.case_id,
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
) -> AuditEntry:
    """Append one entry in the caller's transaction, chained to the partnership's last one."""
    # Locking the head row makes concurrent appends queue up instead of forking the chain; the
    # lock lasts the whole transaction, so the row is read once per transaction.
    cached: dict[str, AuditHead] = session.info.setdefault("audit_heads", {})
    head = cached.get(partnership)
    # A head whose insert a rolled-back savepoint undid is no longer in the session.
    if head is None or head not in session:
        head = session.exec(
            select(AuditHead).where(AuditHead.partnership == partnership).with_for_update()
        ).first()
        if head is None:
            head = AuditHead(partnership=partnership, last_hash=GENESIS)
            session.add(head)
        cached[partnership] = head
    entry = AuditEntry(
        partnership=partnership, at=at, actor=actor, action=action, case_id=case_id,
        detail=json.dumps(detail, sort_keys=True, default=str), prev_hash=head.last_hash,
        hash="",
    )
    entry.hash = _digest(entry)
    session.add(entry)
    session.flush()
    head.last_hash = entry.hash
    head.last_id = entry.id or 0
    session.add(head)
    return entry


@dataclass(frozen=True)
class AuditCheck:
    """The result of recomputing a partnership's chain."""

    partnership: str
    entries: int
    first_broken_id: int | None

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
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.partnership == partnership)
            .order_by(col(AuditEntry.id))
        )
        for entry in entries:
            count += 1
            if broken is None and (entry.prev_hash != previous or _digest(entry) != entry.hash):
                broken = entry.id
            previous = entry.hash
        head = session.get(AuditHead, partnership)
        if broken is None and head is not None and head.last_hash != previous:
            broken = head.last_id
        results.append(AuditCheck(partnership, count, broken))
    return results

"""Messages the outbox gave up on: listed for the business manager, sent again or let go."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.kernel import audit
from bot.store.models import OutboxMessage
from bot.store.statuses import OutboxStatus


def dead_letters(session: Session, partnership: str) -> list[OutboxMessage]:
    """Return the partnership's undelivered messages, oldest first."""
    return list(session.exec(select(OutboxMessage).where(
        OutboxMessage.partnership == partnership, OutboxMessage.status == OutboxStatus.DEAD,
    ).order_by(col(OutboxMessage.id))))


def resend(session: Session, partnership: str, outbox_id: int, now: datetime,
           actor: str) -> OutboxMessage:
    """Queue an undelivered message again, at once, with a fresh count of attempts."""
    row = _dead(session, partnership, outbox_id)
    row.status, row.attempts, row.next_attempt_at = OutboxStatus.PENDING, 0, now
    session.add(row)
    audit.record(session, partnership, actor, "dead_letter_resent", now, row.case_id,
                 outbox_id=row.id, purpose=row.purpose)
    return row


def give_up(session: Session, partnership: str, outbox_id: int, reason: str, now: datetime,
            actor: str) -> OutboxMessage:
    """Stop flagging an undelivered message: it will not be sent, and the reason is kept."""
    if not reason.strip():
        raise ValueError("say why the message need not be sent (e.g. sent by hand instead)")
    row = _dead(session, partnership, outbox_id)
    row.status = OutboxStatus.ABANDONED
    session.add(row)
    audit.record(session, partnership, actor, "dead_letter_given_up", now, row.case_id,
                 outbox_id=row.id, purpose=row.purpose, reason=reason.strip())
    return row


def _dead(session: Session, partnership: str, outbox_id: int) -> OutboxMessage:
    row = session.get(OutboxMessage, outbox_id)
    if row is None or row.partnership != partnership:
        raise ValueError(f"there is no message {outbox_id}")
    if row.status != OutboxStatus.DEAD:
        raise ValueError(f"message {outbox_id} is not undelivered (it is {row.status})")
    return row

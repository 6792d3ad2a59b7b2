"""Delivery receipts: act at most once on a delivery (a Slack click, an email vote) by its key."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from bot.store.models import DeliveryReceipt


def receipt_seen(session: Session, key: str) -> bool:
    """Say whether a delivery with this key was already acted on."""
    return session.exec(select(DeliveryReceipt).where(DeliveryReceipt.key == key)).first() \
        is not None


def remember_receipt(
    session: Session, partnership: str, key: str, now: datetime, ballot_id: int | None
) -> None:
    """Record a delivery as acted on (the unique key stops a concurrent repeat)."""
    session.add(DeliveryReceipt(partnership=partnership, key=key[:200], ballot_id=ballot_id,
                                received_at=now))
    session.flush()

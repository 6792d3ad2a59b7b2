"""The transactional outbox: queue a message in the same transaction as the change causing it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import Session, select

from bot.kernel import audit
from bot.kernel.compose import compose_mail
from bot.kernel.headers import (
    UnsafeHeader,
    clean_message_id,
    message_id_for,
    safe_text,
)
from bot.kernel.installation import installation_secret
from bot.store.db import insert_ignoring_duplicates
from bot.store.models import OutboxMessage
from bot.store.statuses import OutboxChannel, OutboxStatus

OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email."""

    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"
    # An iCalendar method (REQUEST, CANCEL) makes the file a meeting message: it goes inside
    # the multipart/alternative as text/calendar with that method, where Outlook looks for it.
    method: str | None = None


def enqueue_mail(
    session: Session,
    *,
    partnership: str,
    key: str,
    purpose: str,
    sender: str,
    sender_name: str,
    to: Sequence[str],
    subject: str,
    text: str,
    now: datetime,
    html: str | None = None,
    cc: Sequence[str] = (),
    case_id: int | None = None,
    attachments: Sequence[Attachment] = (),
    in_reply_to: str | None = None,
    auto_submitted: str = "auto-generated",
    not_before: datetime | None = None,
    send_by: datetime | None = None,
) -> Queued:
    """Queue an email in the caller's transaction; a key already queued returns that row."""
    domain = sender.rpartition("@")[2]
    message_id = message_id_for(key, domain, installation_secret(session))
    for address in [sender, *to, *cc]:
        if not safe_text(address):
            raise UnsafeHeader("an address of an outgoing message holds a line break")
    # Only an id in RFC 5322's own form is threaded on; anything else is left off.
    in_reply_to = clean_message_id(in_reply_to)
    # The message is composed as its bytes: every header goes through one builder, which folds
    # and encodes it and refuses a line break, even one that decodes from an encoded word.
    payload = compose_mail(
        sender=sender, sender_name=display_name(sender_name), to=to, cc=cc,
        subject=one_line(subject), date=now, message_id=message_id, key=key, text=text,
        html=html, in_reply_to=in_reply_to, auto_submitted=auto_submitted,
        attachments=[Attachment(one_line(attachment.filename) or "attachment",
                                attachment.content, attachment.maintype, attachment.subtype,
                                attachment.method) for attachment in attachments],
    )
    return _store(session, _row(
        partnership=partnership, case_id=case_id, idempotency_key=key,
        channel=OutboxChannel.MAIL, purpose=purpose, recipients=", ".join([*to, *cc]),
        message_id=message_id, payload=payload, created_at=now,
        next_attempt_at=not_before or now, send_by=send_by))


def enqueue_chat(
    session: Session,
    *,
    partnership: str,
    key: str,
    purpose: str,
    payload: dict[str, Any],
    now: datetime,
    recipient: str = "",
    case_id: int | None = None,
) -> Queued:
    """Queue a chat message (operations: bot.kernel.chat); a key already queued returns it."""
    return _store(session, _row(
        partnership=partnership, case_id=case_id, idempotency_key=key,
        channel=OutboxChannel.CHAT, purpose=purpose, recipients=recipient,
        message_id=message_id_for(key, "chat"),
        payload=json.dumps(payload, sort_keys=True).encode("utf-8"), created_at=now,
        next_attempt_at=now))


@dataclass(frozen=True)
class Queued:
    """A message in the outbox: its row, key, Message-ID, bytes and when it was queued."""

    id: int
    idempotency_key: str
    message_id: str
    payload: bytes
    created_at: datetime


def _row(**values: Any) -> dict[str, Any]:
    """Return an outbox row's columns: the given values over a new row's defaults."""
    return {"status": OutboxStatus.PENDING, "attempts": 0, "claimed_at": None,
            "sent_at": None, "last_error": None, "send_by": None, **values}


@cache
def _insert_row(dialect: str) -> ReturningInsert[Any]:
    """Return the statement that queues a row, made once so that it is compiled once."""
    return insert_ignoring_duplicates(dialect, OUTBOX).returning(OUTBOX.c.id)


def _store(session: Session, row: dict[str, Any]) -> Queued:
    """Insert a row with one statement, audited in the same transaction; say what is queued.

    A new row the caller has added (the case a message is about, say) is written first;
    other changes wait for the commit. A row queued under the same key before (by this
    process or another) is left as it is, and is what is returned.
    """
    if session.new:
        session.flush()
    # The statement goes to the connection, so the session does not flush for it.
    row_id = session.connection().execute(_insert_row(session.get_bind().dialect.name),
                                          row).scalar()
    if row_id is None:
        existing = session.exec(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == row["idempotency_key"])).one()
        return Queued(existing.id or 0, existing.idempotency_key, existing.message_id,
                      existing.payload, existing.created_at)
    audit.record(session, row["partnership"], "bot", "queued", row["created_at"],
                 row["case_id"], purpose=row["purpose"], outbox_id=row_id,
                 recipients=row["recipients"])
    return Queued(row_id, row["idempotency_key"], row["message_id"], row["payload"],
                  row["created_at"])


def display_name(name: str) -> str:
    """Make a name safe to show before an address.

    The email library drops the quotes round a long display name when it folds the header,
    so characters that would then be read as address syntax are left out.
    """
    kept = "".join(" " if character in '<>@,;:\\"[]()' else character for character in name)
    return one_line(kept)[:78]


def one_line(value: str) -> str:
    """Fold line breaks and control characters out of a header value onto one line."""
    return " ".join(value.translate(_CONTROLS).split())


# Every control character (C0 and DEL) becomes a space.
_CONTROLS = {code: " " for code in [*range(32), 0x7F]}

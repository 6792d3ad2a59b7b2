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
from bot.store.statuses import OutboxChannel

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
) -> OutboxMessage:
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
    row = OutboxMessage(
        partnership=partnership, case_id=case_id, idempotency_key=key,
        channel=OutboxChannel.MAIL,
        purpose=purpose, recipients=", ".join([*to, *cc]), message_id=message_id,
        payload=payload, created_at=now, next_attempt_at=not_before or now,
        send_by=send_by,
    )
    return _store(session, row)


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
) -> OutboxMessage:
    """Queue a chat message (operations: bot.kernel.chat); a key already queued returns it."""
    existing = _queued(session, key)
    if existing is not None:
        return existing
    row = OutboxMessage(
        partnership=partnership, case_id=case_id, idempotency_key=key,
        channel=OutboxChannel.CHAT,
        purpose=purpose, recipients=recipient, message_id=message_id_for(key, "chat"),
        payload=json.dumps(payload, sort_keys=True).encode("utf-8"), created_at=now,
        next_attempt_at=now,
    )
    return _store(session, row)


def _queued(session: Session, key: str) -> OutboxMessage | None:
    return session.exec(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
    ).first()


@cache
def _insert_row(dialect: str) -> ReturningInsert[tuple[int]]:
    """Return the statement that queues a row, made once so that it is compiled once."""
    return insert_ignoring_duplicates(dialect, OUTBOX).returning(OUTBOX.c.id)


def _store(session: Session, row: OutboxMessage) -> OutboxMessage:
    """Insert a row with one statement, audited in the same transaction; return it with its id.

    A new row the caller has added (the case a message is about, say) is written first;
    other changes wait for the commit. A row another transaction queued under the same key
    in the meantime wins, and is returned.
    """
    if session.new:
        session.flush()
    values = {column.name: getattr(row, column.name) for column in OUTBOX.columns
              if column.name != "id"}
    # The statement goes to the connection, so the session does not flush for it.
    row.id = session.connection().execute(_insert_row(session.get_bind().dialect.name),
                                          values).scalar()
    if row.id is None:
        existing = _queued(session, row.idempotency_key)
        assert existing is not None
        return existing
    audit.record(session, row.partnership, "bot", "queued", row.created_at, row.case_id,
                 purpose=row.purpose, outbox_id=row.id, recipients=row.recipients)
    return row


def display_name(name: str) -> str:
    """Make a name safe to show before an address.

    The email library drops the quotes round a long display name when it folds the header,
    so characters that would then be read as address syntax are left out.
    """
    kept = "".join(" " if character in '<>@,;:\\"[]()' else character for character in name)
    return one_line(kept)[:78]


def one_line(value: str) -> str:
    """Fold line breaks and control characters out of a header value onto one line."""
    printable = "".join(" " if ord(character) < 32 or character == "\x7f" else character
                        for character in value)
    return " ".join(printable.split())

"""The transactional outbox: queue a message with the change that causes it, send it once."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot import audit
from bot.db import CLAIM_BATCH, transaction
from bot.mailbox import OUTBOX_KEY_HEADER, Mailbox, MailboxError, TransientMailboxError
from bot.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email."""

    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential back-off with jitter, and when to give up."""

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8
    # A row left 'sending' longer than this is presumed to belong to a crashed process.
    lease_seconds: float = 300.0

    def delay(self, key: str, attempts: int, retry_after: float | None) -> timedelta:
        """Return how long to wait before the next attempt (never less than Retry-After)."""
        backoff = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        # Jitter is seeded by the row and attempt, so a re-run of a simulation repeats itself.
        jitter = random.Random(f"{key}:{attempts}").uniform(0.5, 1.0)
        return timedelta(seconds=max(backoff * jitter, retry_after or 0.0))


def message_id_for(idempotency_key: str, domain: str) -> str:
    """Derive the Message-ID of an outbox row from its idempotency key."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    return f"<rr.{digest}@{domain}>"


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
) -> OutboxMessage:
    """Queue an email in the caller's transaction; a key already queued returns that row."""
    existing = session.exec(
        select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
    ).first()
    if existing is not None:
        return existing
    domain = sender.rpartition("@")[2]
    message_id = message_id_for(key, domain)
    message = EmailMessage()
    # Headers go through the email library's API, which folds and encodes them safely.
    message["From"] = formataddr((display_name(sender_name), sender))
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = one_line(subject)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    message[OUTBOX_KEY_HEADER] = key
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for attachment in attachments:
        message.add_attachment(
            attachment.content, maintype=attachment.maintype, subtype=attachment.subtype,
            filename=attachment.filename,
        )
    row = OutboxMessage(
        partnership=partnership, case_id=case_id, idempotency_key=key, channel="mail",
        purpose=purpose, recipients=", ".join([*to, *cc]), message_id=message_id,
        payload=message.as_bytes(), created_at=now, next_attempt_at=now,
    )
    session.add(row)
    session.flush()
    audit.record(session, partnership, "bot", "queued", now, case_id, purpose=purpose,
                 outbox_id=row.id, recipients=row.recipients)
    return row


def display_name(name: str) -> str:
    """Make a name safe to show before an address.

    The email library drops the quotes round a long display name when it folds the header,
    so characters that would then be read as address syntax are left out.
    """
    kept = "".join(" " if character in '<>@,;:\\"[]()' else character for character in name)
    return one_line(kept)[:78]


def one_line(value: str) -> str:
    """Fold any line breaks out of a header value, so no text can start a header of its own."""
    return " ".join(value.split())


@dataclass
class DispatchReport:
    """What one dispatch pass did."""

    sent: list[str] = field(default_factory=list)
    found_in_sent: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)


@dataclass
class Dispatcher:
    """Sends due outbox rows through the mailbox: claim, send, confirm, in that order."""

    engine: Engine
    mailbox: Mailbox
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def dispatch(self, now: datetime) -> DispatchReport:
        """Send every row due at now, looking up in Sent any whose last outcome is unknown."""
        report = DispatchReport()
        while True:
            claimed = self._claim(now)
            if not claimed:
                return report
            for row_id, message_id, key, uncertain in claimed:
                self._deliver(row_id, message_id, key, uncertain, now, report)

    def _claim(self, now: datetime) -> list[tuple[int, str, str, bool]]:
        lease_expired = now - timedelta(seconds=self.policy.lease_seconds)
        with transaction(self.engine) as session:
            rows = session.exec(
                select(OutboxMessage)
                .where(
                    (col(OutboxMessage.status) == "pending")
                    & (col(OutboxMessage.next_attempt_at) <= now)
                    | (col(OutboxMessage.status) == "sending")
                    & (col(OutboxMessage.claimed_at) <= lease_expired)
                )
                .order_by(col(OutboxMessage.next_attempt_at))
                .limit(CLAIM_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            claimed = []
            for row in rows:
                # A row still marked 'sending' was being sent when its process stopped, and a
                # failed attempt may have reached some recipients: both are looked up first.
                uncertain = row.status == "sending" or row.attempts > 0
                row.status = "sending"
                row.claimed_at = now
                session.add(row)
                claimed.append((row.id or 0, row.message_id, row.idempotency_key, uncertain))
            return claimed

    def _deliver(
        self, row_id: int, message_id: str, key: str, uncertain: bool, now: datetime,
        report: DispatchReport,
    ) -> None:
        try:
            if uncertain and self.mailbox.find_sent(message_id):
                self._finish(row_id, now, "found in Sent after an interrupted send")
                report.found_in_sent.append(key)
                return
            with transaction(self.engine) as session:
                payload = session.get_one(OutboxMessage, row_id).payload
            self.mailbox.send(_parse(payload))
        except MailboxError as exc:
            retry_after = exc.retry_after if isinstance(exc, TransientMailboxError) else None
            self._failed(row_id, key, now, str(exc), retry_after, report)
            return
        self._finish(row_id, now, None)
        report.sent.append(key)

    def _finish(self, row_id: int, now: datetime, note: str | None) -> None:
        with transaction(self.engine) as session:
            row = session.get_one(OutboxMessage, row_id)
            row.status = "sent"
            row.sent_at = now
            row.attempts += 1
            session.add(row)
            audit.record(session, row.partnership, "bot", "sent", now, row.case_id,
                         purpose=row.purpose, outbox_id=row.id, message_id=row.message_id,
                         note=note)
        # Only the purpose is logged: recipients and subjects may identify a family.
        log.info("sent outbox row %s (%s)", row_id, row.purpose)

    def _failed(
        self, row_id: int, key: str, now: datetime, error: str, retry_after: float | None,
        report: DispatchReport,
    ) -> None:
        with transaction(self.engine) as session:
            row = session.get_one(OutboxMessage, row_id)
            row.attempts += 1
            row.last_error = error[:500]
            if row.attempts >= self.policy.max_attempts:
                row.status = "dead"
                report.dead.append(key)
                audit.record(session, row.partnership, "bot", "dead_letter", now, row.case_id,
                             purpose=row.purpose, outbox_id=row.id, error=row.last_error)
            else:
                row.status = "pending"
                row.next_attempt_at = now + self.policy.delay(key, row.attempts, retry_after)
                report.retried.append(key)
            session.add(row)
        log.warning("outbox row %s not sent (attempt %s): %s", row_id, row.attempts, error)


def _parse(payload: bytes) -> EmailMessage:
    parsed = message_from_bytes(payload, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed

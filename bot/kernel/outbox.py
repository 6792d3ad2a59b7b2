"""The transactional outbox: queue a message with the change that causes it, send it once."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.kernel import audit
from bot.kernel.compose import compose_mail
from bot.kernel.headers import (
    UnsafeHeader,
    clean_message_id,
    message_id_for,
    safe_text,
)
from bot.kernel.installation import installation_secret
from bot.kernel.mailbox import (
    Mailbox,
    MailboxError,
    TransientMailboxError,
)
from bot.kernel.outgoing import dated, from_bytes
from bot.store.db import CLAIM_BATCH, retry_on_conflict, transaction
from bot.store.models import OutboxMessage
from bot.store.statuses import OutboxChannel, OutboxStatus

if TYPE_CHECKING:
    from bot.kernel.chat import ChatChannel

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential back-off with jitter, and when to give up."""

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8
    # A row left 'sending' longer than this is taken over by another process. Sending holds
    # the row and re-checks its status in one transaction, so a takeover never sends twice;
    # the lease decides how soon a stopped process's rows are retried (after a look in Sent).
    lease_seconds: float = 300.0

    def delay(self, key: str, attempts: int, retry_after: float | None) -> timedelta:
        """Return how long to wait before the next attempt (never less than Retry-After)."""
        backoff = min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        # Jitter is seeded by the row and attempt, so a re-run of a simulation repeats itself.
        jitter = random.Random(f"{key}:{attempts}").uniform(0.5, 1.0)
        return timedelta(seconds=max(backoff * jitter, retry_after or 0.0))


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
    existing = _queued(session, key)
    if existing is not None:
        return existing
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


def _store(session: Session, row: OutboxMessage) -> OutboxMessage:
    # Queueing is audited in the same transaction as the row itself.
    session.add(row)
    session.flush()
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


@dataclass(frozen=True)
class Claim:
    """An outbox row this process has claimed for sending."""

    row_id: int
    key: str
    uncertain: bool
    channel: str = OutboxChannel.MAIL


@dataclass
class DispatchReport:
    """What one dispatch pass did."""

    sent: list[str] = field(default_factory=list)
    found_in_sent: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


@dataclass
class Dispatcher:
    """Sends due outbox rows through the mailbox: claim, send, confirm, in that order."""

    engine: Engine
    mailbox: Mailbox
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Rows for chat wait in the outbox until a chat channel is given.
    chat: ChatChannel | None = None

    def dispatch(self, now: datetime) -> DispatchReport:
        """Send every row due at now, looking up in Sent any whose last outcome is unknown."""
        report = DispatchReport()
        while True:
            claimed = retry_on_conflict(partial(self._claim, now))
            if not claimed:
                return report
            for claim in claimed:
                if claim.channel == OutboxChannel.CHAT:
                    self._deliver_chat(claim, now, report)
                else:
                    self._deliver(claim, now, report)

    def _claim(self, now: datetime) -> list[Claim]:
        lease_expired = now - timedelta(seconds=self.policy.lease_seconds)
        channels = ([OutboxChannel.MAIL, OutboxChannel.CHAT] if self.chat is not None
                    else [OutboxChannel.MAIL])
        with transaction(self.engine) as session:
            rows = session.exec(
                select(OutboxMessage)
                .where(
                    (col(OutboxMessage.status) == OutboxStatus.PENDING)
                    & (col(OutboxMessage.next_attempt_at) <= now)
                    | (col(OutboxMessage.status) == OutboxStatus.SENDING)
                    & (col(OutboxMessage.claimed_at) <= lease_expired)
                )
                .where(col(OutboxMessage.channel).in_(channels))
                .order_by(col(OutboxMessage.next_attempt_at))
                .limit(CLAIM_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            claimed = []
            for row in rows:
                # A row still marked 'sending' was being sent when its process stopped, and a
                # failed attempt may have reached some recipients: both are looked up first.
                uncertain = row.status == OutboxStatus.SENDING or row.attempts > 0
                row.status = OutboxStatus.SENDING
                row.claimed_at = now
                session.add(row)
                claimed.append(Claim(row.id or 0, row.idempotency_key, uncertain, row.channel))
            return claimed

    def _deliver(self, claim: Claim, now: datetime, report: DispatchReport) -> None:
        failure: MailboxError | None = None
        # The row stays locked for the whole send, so another process (even one whose clock
        # runs ahead and thinks the lease has run out) skips it rather than sending it again.
        with transaction(self.engine) as session:
            row = _held_for_sending(session, claim)
            if row is None:
                return
            try:
                if claim.uncertain and self.mailbox.find_sent(row.message_id):
                    self._mark_sent(session, row, now, "found in Sent after an interrupted send")
                    report.found_in_sent.append(claim.key)
                    return
                # A message due by a cut-off is never sent after it without a person's
                # go-ahead, even when an earlier attempt before the cut-off failed.
                if row.send_by is not None and now > row.send_by:
                    row.status = OutboxStatus.HELD
                    session.add(row)
                    audit.record(session, row.partnership, "bot", "held_after_cutoff", now,
                                 row.case_id, purpose=row.purpose, outbox_id=row.id,
                                 attempts=row.attempts)
                    report.held.append(claim.key)
                    return
                # The stored bytes are sent as they are, dated when they go, not when queued:
                # a submission held for the business manager's go-ahead must not carry the
                # earlier date.
                self.mailbox.send_raw(dated(from_bytes(row.payload, row.message_id), now))
            except MailboxError as exc:
                failure = exc
            else:
                self._mark_sent(session, row, now, None)
                report.sent.append(claim.key)
        if failure is not None:
            retry_after = failure.retry_after if isinstance(
                failure, TransientMailboxError) else None
            self._failed(claim.row_id, claim.key, now, str(failure), retry_after, report)

    def _deliver_chat(self, claim: Claim, now: datetime, report: DispatchReport) -> None:
        from bot.kernel.chat import ChatError, deliver

        assert self.chat is not None
        failure: ChatError | None = None
        # As with mail, the row stays locked while it is sent, and is marked in the same
        # transaction; the ballot's message reference is stored in it too.
        with transaction(self.engine) as session:
            row = _held_for_sending(session, claim)
            if row is None:
                return
            try:
                note = deliver(self.chat, session, row, claim.uncertain)
            except ChatError as exc:
                failure = exc
            else:
                self._mark_sent(session, row, now, note or None)
                report.sent.append(claim.key)
        if failure is not None:
            self._failed(claim.row_id, claim.key, now, str(failure), failure.retry_after,
                         report)

    def _mark_sent(
        self, session: Session, row: OutboxMessage, now: datetime, note: str | None
    ) -> None:
        row.status = OutboxStatus.SENT
        row.sent_at = now
        row.attempts += 1
        session.add(row)
        audit.record(session, row.partnership, "bot", "sent", now, row.case_id,
                     purpose=row.purpose, outbox_id=row.id, message_id=row.message_id,
                     note=note)
        # Only the purpose is logged: recipients and subjects may identify a family.
        log.info("sent outbox row %s (%s)", row.id, row.purpose)

    def _failed(
        self, row_id: int, key: str, now: datetime, error: str, retry_after: float | None,
        report: DispatchReport,
    ) -> None:
        attempts = retry_on_conflict(partial(self._record_failure, row_id, key, now, error,
                                             retry_after))
        if attempts >= self.policy.max_attempts:
            report.dead.append(key)
        else:
            report.retried.append(key)
        log.warning("outbox row %s not sent (attempt %s): %s", row_id, attempts, error)

    def _record_failure(
        self, row_id: int, key: str, now: datetime, error: str, retry_after: float | None
    ) -> int:
        """Count a failed attempt: retry later, or give up after the last; say how many."""
        with transaction(self.engine) as session:
            row = session.get_one(OutboxMessage, row_id)
            row.attempts += 1
            row.last_error = error[:500]
            if row.attempts >= self.policy.max_attempts:
                row.status = OutboxStatus.DEAD
                audit.record(session, row.partnership, "bot", "dead_letter", now, row.case_id,
                             purpose=row.purpose, outbox_id=row.id, error=row.last_error)
            else:
                row.status = OutboxStatus.PENDING
                row.next_attempt_at = now + self.policy.delay(key, row.attempts, retry_after)
            session.add(row)
            return row.attempts


def _held_for_sending(session: Session, claim: Claim) -> OutboxMessage | None:
    """Lock a claimed row for its send; None if another process has sent it or it has gone.

    The lock is waited for, not skipped: on PostgreSQL another process's claim query keeps a
    lock on a row it read before our claim committed and then found claimed, until its own
    claim commits a moment later. Skipping that row left it 'sending' for the whole lease.
    A process that took the row over and is sending it holds the lock until it has marked
    it sent, so the wait ends with the row no longer 'sending' and it is not sent twice.
    """
    return session.exec(
        select(OutboxMessage)
        .where(OutboxMessage.id == claim.row_id, OutboxMessage.status == OutboxStatus.SENDING)
        .with_for_update()
    ).first()

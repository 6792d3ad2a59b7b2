"""Sending the outbox: claim due rows, send each once, confirm the sends a group per commit."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Row, bindparam, select, update
from sqlmodel import Session

from bot.kernel import audit
from bot.kernel.mailbox import Mailbox, MailboxError, TransientMailboxError
from bot.kernel.outbox import OUTBOX
from bot.kernel.outgoing import dated, from_bytes
from bot.store.db import CLAIM_BATCH, retry_on_conflict, transaction
from bot.store.models import OutboxMessage
from bot.store.statuses import OutboxChannel, OutboxStatus

if TYPE_CHECKING:
    from bot.kernel.chat import ChatChannel

log = logging.getLogger(__name__)

# Mail sends confirmed per commit, and the longest a group of them holds its rows' locks (on
# SQLite, the database's write lock): a slow mail server never keeps writers waiting long.
CONFIRM_BATCH = 100
CONFIRM_SECONDS = 0.5


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
class _Outcome:
    """What became of one claimed mail row, written back with the rest of its group."""

    row_id: int
    status: str
    attempts: int
    sent_at: datetime | None
    next_attempt_at: datetime
    last_error: str | None


@dataclass
class Dispatcher:
    """Sends due outbox rows through the mailbox: claim, send, confirm, in that order."""

    engine: Engine
    mailbox: Mailbox
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    # Rows for chat wait in the outbox until a chat channel is given.
    chat: ChatChannel | None = None

    def dispatch(self, now: datetime, report: DispatchReport | None = None) -> DispatchReport:
        """Send every row due at now, looking up in Sent any whose last outcome is unknown.

        What was done is added to report, if one is given, and returned.
        """
        report = DispatchReport() if report is None else report
        while True:
            claimed = retry_on_conflict(partial(self._claim, now))
            if not claimed:
                return report
            waiting = [claim for claim in claimed if claim.channel == OutboxChannel.MAIL]
            while waiting:
                waiting = self._deliver_group(waiting, now, report)
            for claim in claimed:
                if claim.channel == OutboxChannel.CHAT:
                    self._deliver_chat(claim, now, report)

    def _claim(self, now: datetime) -> list[Claim]:
        lease_expired = now - timedelta(seconds=self.policy.lease_seconds)
        channels = ([OutboxChannel.MAIL, OutboxChannel.CHAT] if self.chat is not None
                    else [OutboxChannel.MAIL])
        with transaction(self.engine) as session:
            rows = session.execute(
                select(OUTBOX.c.id, OUTBOX.c.idempotency_key, OUTBOX.c.status,
                       OUTBOX.c.attempts, OUTBOX.c.channel)
                .where((OUTBOX.c.status == OutboxStatus.PENDING)
                       & (OUTBOX.c.next_attempt_at <= now)
                       | (OUTBOX.c.status == OutboxStatus.SENDING)
                       & (OUTBOX.c.claimed_at <= lease_expired))
                .where(OUTBOX.c.channel.in_(channels))
                .order_by(OUTBOX.c.next_attempt_at)
                .limit(CLAIM_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if rows:
                session.execute(update(OUTBOX).where(OUTBOX.c.id.in_([row.id for row in rows]))
                                .values(status=OutboxStatus.SENDING, claimed_at=now))
            # A row still marked 'sending' was being sent when its process stopped, and a
            # failed attempt may have reached some recipients: both are looked up first.
            return [Claim(row.id, row.idempotency_key,
                          row.status == OutboxStatus.SENDING or row.attempts > 0, row.channel)
                    for row in rows]

    def _deliver_group(
        self, claims: list[Claim], now: datetime, report: DispatchReport
    ) -> list[Claim]:
        """Send the first claimed mail rows and confirm them in one commit; return the rest.

        The rows stay locked from before their sends until their outcomes are committed, so
        another process (even one whose clock runs ahead and thinks the lease has run out)
        skips them rather than sending them again. A crash before the commit leaves the
        group's rows 'sending', and each is looked up in Sent before it is sent again: a
        group costs more look-ups after a crash, never a second copy.
        """
        started = time.monotonic()
        outcomes: list[_Outcome] = []
        failures: list[tuple[int, int, str]] = []
        interrupted: Exception | None = None
        left = claims[CONFIRM_BATCH:]
        with transaction(self.engine) as session:
            rows = _held_for_sending(session, [claim.row_id for claim in claims[:CONFIRM_BATCH]])
            for index, claim in enumerate(claims[:CONFIRM_BATCH]):
                if index and time.monotonic() - started > CONFIRM_SECONDS:
                    left = claims[index:]
                    break
                row = rows.get(claim.row_id)
                # A row another process has sent, or that has gone, is not sent again.
                if row is None:
                    continue
                try:
                    outcomes.append(self._send(session, row, claim, now, report))
                except MailboxError as exc:
                    retry_after = (exc.retry_after if isinstance(exc, TransientMailboxError)
                                   else None)
                    outcomes.append(self._failure(session, row, now, str(exc), retry_after))
                    failures.append((row.id, outcomes[-1].attempts, str(exc)))
                except Exception as exc:  # noqa: BLE001 - raised again below.
                    # The sends already made are confirmed before the error goes on up.
                    interrupted = exc
                    break
            if outcomes:
                session.execute(_WRITE_OUTCOME, [vars(outcome) for outcome in outcomes])
        _log_sent([(outcome.row_id, rows[outcome.row_id].purpose) for outcome in outcomes
                   if outcome.status == OutboxStatus.SENT])
        for row_id, attempts, error in failures:
            self._report_failure(report, rows[row_id].idempotency_key, row_id, attempts, error)
        if interrupted is not None:
            raise interrupted
        return left

    def _send(
        self, session: Session, row: Row[Any], claim: Claim, now: datetime,
        report: DispatchReport,
    ) -> _Outcome:
        """Send one locked row, unless it is in Sent already or past its cut-off."""
        if claim.uncertain and self.mailbox.find_sent(row.message_id):
            _audit_sent(session, row, now, "found in Sent after an interrupted send")
            report.found_in_sent.append(claim.key)
            return _Outcome(row.id, OutboxStatus.SENT, row.attempts + 1, now,
                            row.next_attempt_at, row.last_error)
        # A message due by a cut-off is never sent after it without a person's go-ahead,
        # even when an earlier attempt before the cut-off failed.
        if row.send_by is not None and now > row.send_by:
            audit.record(session, row.partnership, "bot", "held_after_cutoff", now,
                         row.case_id, purpose=row.purpose, outbox_id=row.id,
                         attempts=row.attempts)
            report.held.append(claim.key)
            return _Outcome(row.id, OutboxStatus.HELD, row.attempts, None,
                            row.next_attempt_at, row.last_error)
        # The stored bytes are sent as they are, dated when they go, not when queued: a
        # submission held for the business manager's go-ahead must not carry the earlier date.
        self.mailbox.send_raw(dated(from_bytes(row.payload, row.message_id), now))
        _audit_sent(session, row, now, None)
        report.sent.append(claim.key)
        return _Outcome(row.id, OutboxStatus.SENT, row.attempts + 1, now, row.next_attempt_at,
                        row.last_error)

    def _failure(
        self, session: Session, row: Any, now: datetime, error: str, retry_after: float | None
    ) -> _Outcome:
        """Count a failed attempt: retry later (not before Retry-After), or give up."""
        attempts = row.attempts + 1
        last_error = error[:500]
        if attempts >= self.policy.max_attempts:
            audit.record(session, row.partnership, "bot", "dead_letter", now, row.case_id,
                         purpose=row.purpose, outbox_id=row.id, error=last_error)
            return _Outcome(row.id, OutboxStatus.DEAD, attempts, None, row.next_attempt_at,
                            last_error)
        return _Outcome(row.id, OutboxStatus.PENDING, attempts, None,
                        now + self.policy.delay(row.idempotency_key, attempts, retry_after),
                        last_error)

    def _deliver_chat(self, claim: Claim, now: datetime, report: DispatchReport) -> None:
        from bot.kernel.chat import ChatError, deliver

        assert self.chat is not None
        failure: ChatError | None = None
        # As with mail, the row stays locked while it is sent, and is marked in the same
        # transaction; the ballot's message reference is stored in it too.
        with transaction(self.engine) as session:
            row = session.get(OutboxMessage, claim.row_id, with_for_update=True)
            if row is None or row.status != OutboxStatus.SENDING:
                return
            try:
                note = deliver(self.chat, session, row, claim.uncertain)
            except ChatError as exc:
                failure = exc
            else:
                row.status, row.sent_at, row.attempts = OutboxStatus.SENT, now, row.attempts + 1
                session.add(row)
                _audit_sent(session, row, now, note or None)
                report.sent.append(claim.key)
        if failure is None:
            _log_sent([(claim.row_id, row.purpose)])
        if failure is not None:
            attempts = retry_on_conflict(partial(self._record_chat_failure, claim, now,
                                                 str(failure), failure.retry_after))
            self._report_failure(report, claim.key, claim.row_id, attempts, str(failure))

    def _record_chat_failure(
        self, claim: Claim, now: datetime, error: str, retry_after: float | None
    ) -> int:
        """Count a failed chat attempt in its own transaction; say how many there have been."""
        with transaction(self.engine) as session:
            row = session.get_one(OutboxMessage, claim.row_id)
            outcome = self._failure(session, row, now, error, retry_after)
            row.status, row.attempts = outcome.status, outcome.attempts
            row.next_attempt_at, row.last_error = outcome.next_attempt_at, outcome.last_error
            session.add(row)
            return row.attempts

    def _report_failure(
        self, report: DispatchReport, key: str, row_id: int, attempts: int, error: str
    ) -> None:
        (report.dead if attempts >= self.policy.max_attempts else report.retried).append(key)
        log.warning("outbox row %s not sent (attempt %s): %s", row_id, attempts, error)


# One statement writes back every outcome of a group, as one executemany: the SET clause is
# made of the outcome's other fields.
_WRITE_OUTCOME = update(OUTBOX).where(OUTBOX.c.id == bindparam("row_id"))


def _held_for_sending(session: Session, row_ids: list[int]) -> dict[int, Row[Any]]:
    """Lock claimed rows for their sends; leave out any another process sent, or that went.

    The locks are waited for, not skipped: on PostgreSQL another process's claim query keeps a
    lock on a row it read before our claim committed and then found claimed, until its own
    claim commits a moment later. Skipping that row left it 'sending' for the whole lease.
    A process that took a row over and is sending it holds the lock until it has marked it
    sent, so the wait ends with the row no longer 'sending' and it is not sent twice. The
    rows are locked in the order of their ids, so two processes never wait for each other.
    """
    rows = session.execute(
        select(OUTBOX).where(OUTBOX.c.id.in_(row_ids),
                             OUTBOX.c.status == OutboxStatus.SENDING)
        .order_by(OUTBOX.c.id).with_for_update()
    ).all()
    return {row.id: row for row in rows}


def _audit_sent(session: Session, row: Any, now: datetime, note: str | None) -> None:
    """Record a row as sent in the audit trail."""
    audit.record(session, row.partnership, "bot", "sent", now, row.case_id,
                 purpose=row.purpose, outbox_id=row.id, message_id=row.message_id, note=note)


def _log_sent(sent: list[tuple[int, str]]) -> None:
    """Log the rows that went, once their transaction has committed.

    A log that cannot be written at once (a full pipe, a slow journal) then never holds the
    rows' locks. Only the purpose is logged: recipients and subjects may identify a family.
    """
    for row_id, purpose in sent:
        log.info("sent outbox row %s (%s)", row_id, purpose)

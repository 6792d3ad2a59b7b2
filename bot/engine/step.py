"""The engine's one entry point, step(now): take in mail, run due actions, send the outbox."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from functools import partial
from itertools import islice

from sqlalchemy import Engine as DatabaseEngine
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bot.config import Config
from bot.engine.mailbox_watch import watch_mailbox
from bot.engine.pipeline import InboundContext, Outcome, handle
from bot.engine.refile import refile_released
from bot.kernel import audit
from bot.kernel.actions import ActionContext, PeriodicFunction, find_action, periodic_jobs
from bot.kernel.chat import ChatChannel
from bot.kernel.dispatch import Dispatcher, DispatchReport, RetryPolicy
from bot.kernel.headers import clean_message_id
from bot.kernel.mailbox import FetchedMail, Mailbox, MailboxError
from bot.process.working_days import as_aware
from bot.store.db import retry_on_conflict, transaction
from bot.store.models import Case, InboundMessage, PlannedAction
from bot.store.statuses import InboundStatus, PlannedActionStatus

log = logging.getLogger(__name__)

# Inbound messages stored, and handled, per transaction.
INGEST_BATCH = 100
HANDLE_BATCH = 25
# Due actions run per transaction; between two slices new mail is taken in and the outbox sent.
ACTION_SLICE = 100


@dataclass
class StepReport:
    """What one step did, for logs, the CLI and tests."""

    fetched: int = 0
    handled: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    dispatch: DispatchReport = field(default_factory=DispatchReport)
    # Why the inbound mail could not be fetched this step, if it could not.
    mailbox_error: str | None = None

    @property
    def idle(self) -> bool:
        """Say whether the step found nothing to do."""
        return not (self.fetched or self.handled or self.actions or self.dispatch.sent
                    or self.dispatch.retried or self.dispatch.found_in_sent)


@dataclass
class Engine:
    """The bot's state machine over time; the database is the truth, the clock is given."""

    config: Config
    database: DatabaseEngine
    mailbox: Mailbox
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    # The chat backend queued chat rows go to; without one they wait in the outbox.
    chat: ChatChannel | None = None

    def step(self, now: datetime) -> StepReport:
        """Do everything due at now; a second call at the same instant does nothing more."""
        now = as_aware(now).astimezone(UTC)
        report = StepReport()
        self.take_in_mail(now, report)
        # Released messages' copies leave Quarantine, unless the mailbox could not be reached.
        if report.mailbox_error is None:
            refile_released(self.database, self.config, self.mailbox, now)
        # People hear once per outage when the mailbox has been unreachable too long.
        watch_mailbox(self.database, self.config, now, report.mailbox_error)
        self.plan_periodic_jobs(now)
        dispatcher = Dispatcher(self.database, self.mailbox, self.retry_policy, self.chat)
        # Between slices of a long run of due actions, mail that has come in meanwhile is
        # handled and what is queued is sent, so a referral's acknowledgement never waits
        # for a burst of reminders to end.
        report.actions = self.run_due_actions(now, between_slices=partial(
            self._between_slices, now, report, dispatcher))
        dispatcher.dispatch(now, report.dispatch)
        return report

    def take_in_mail(self, now: datetime, report: StepReport) -> None:
        """Store and handle new mail, unless the mailbox has already failed in this step."""
        if report.mailbox_error is not None:
            return
        try:
            report.fetched += self.ingest(now)
            report.handled += self.handle_inbound(now)
        except MailboxError as exc:
            # A mailbox that cannot be reached must not stop the clock: reminders, deadlines,
            # escalations and the outbox (which retries its own sends) still run.
            report.mailbox_error = str(exc)
            log.warning("mailbox unavailable; inbound mail waits: %s", type(exc).__name__)

    def _between_slices(self, now: datetime, report: StepReport, dispatcher: Dispatcher) -> None:
        self.take_in_mail(now, report)
        dispatcher.dispatch(now, report.dispatch)

    def ingest(self, now: datetime) -> int:
        """Store every new message from the mailbox; move ones already dealt with."""
        stored = 0
        fetched = iter(self.mailbox.fetch_new())
        # Messages are stored a batch per transaction: one commit, not one per message. A
        # crash before the commit loses nothing, as the mail is still in the inbox.
        while batch := list(islice(fetched, INGEST_BATCH)):
            added, to_move = retry_on_conflict(partial(self._store_batch, batch, now))
            stored += added
            # A message seen before and already dealt with only needs moving out of the inbox.
            for server_id, folder in to_move:
                self._move(server_id, folder)
        return stored

    def _store_batch(
        self, batch: list[FetchedMail], now: datetime
    ) -> tuple[int, list[tuple[str, str]]]:
        stored = 0
        to_move: list[tuple[str, str]] = []
        with transaction(self.database) as session:
            for mail in batch:
                known = session.exec(select(InboundMessage).where(
                    InboundMessage.mailbox == self.mailbox.name,
                    InboundMessage.server_id == mail.server_id,
                )).first()
                message_id = _message_id(mail.raw)
                reused: InboundMessage | None = None
                if known is None and message_id is not None:
                    known = session.exec(select(InboundMessage).where(
                        InboundMessage.partnership == self.config.settings.partnership.key,
                        InboundMessage.message_id == message_id,
                    )).first()
                    # The same id on a different message is kept and shown, never dropped.
                    if known is not None and not same_message(known.raw, mail.raw):
                        known, reused = None, known
                if known is None:
                    # Day 0 is when the mail arrived, not when the bot got to it, so the
                    # server's arrival time is kept; one ahead of our clock is capped at now.
                    received_at = now if mail.arrived_at is None else min(mail.arrived_at, now)
                    row = InboundMessage(
                        partnership=self.config.settings.partnership.key,
                        mailbox=self.mailbox.name, server_id=mail.server_id,
                        message_id=None if reused else message_id, received_at=received_at,
                        raw=mail.raw,
                    )
                    session.add(row)
                    stored += 1
                    if reused is not None:
                        self._quarantine_reused(session, row, reused, now)
                        to_move.append((mail.server_id, self.config.settings.mailbox
                                        .quarantine_folder))
                    continue
                folder = self._folder(known.status)
                if folder is not None:
                    to_move.append((mail.server_id, folder))
        return stored, to_move

    def _quarantine_reused(
        self, session: Session, row: InboundMessage, earlier: InboundMessage, now: datetime
    ) -> None:
        """Keep a different message that reuses an earlier one's Message-ID, in Quarantine."""
        row.status, row.kind, row.handled_at = (InboundStatus.QUARANTINED, "reused_message_id",
                                                now)
        row.reason = (f"reused Message-ID: an earlier, different message (inbound "
                      f"{earlier.id}) had the same one")
        session.add(row)
        session.flush()
        audit.record(session, row.partnership, "bot", "inbound_quarantined", now, None,
                     inbound_id=row.id, kind=row.kind, reason=row.reason)

    def handle_inbound(self, now: datetime) -> list[str]:
        """Run the handler pipeline over stored messages not yet dealt with."""
        handled: list[str] = []
        while True:
            row_ids: list[int] = []
            try:
                results = retry_on_conflict(partial(self._handle_batch, now, row_ids))
            except Exception:
                # A failure before any message was claimed (the database is down) is raised.
                if not row_ids:
                    raise
                # A batch that cannot be committed is handled again one message at a time,
                # so that only the message at fault is quarantined.
                results = [self._handle_alone(row_id, now) for row_id in row_ids]
            if not results:
                return handled
            for kind, server_id, folder in results:
                handled.append(kind)
                if folder is not None:
                    self._move(server_id, folder)

    def _handle_batch(
        self, now: datetime, row_ids: list[int]
    ) -> list[tuple[str, str, str | None]]:
        """Handle the next batch of new messages in one transaction, noting which it claimed."""
        row_ids.clear()
        with transaction(self.database) as session:
            rows = session.exec(
                select(InboundMessage).where(InboundMessage.status == InboundStatus.NEW)
                .order_by(col(InboundMessage.id)).limit(HANDLE_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            row_ids.extend(row.id or 0 for row in rows)
            # Each handler runs in a savepoint (bot.engine.pipeline), so one message's failure does
            # not undo the others handled in this transaction.
            return [self._handle(session, row, now) for row in rows]

    def _handle(
        self, session: Session, row: InboundMessage, now: datetime
    ) -> tuple[str, str, str | None]:
        outcome = handle(InboundContext(session, now, self.config), row)
        row.status, row.kind = outcome.status, outcome.kind
        row.reason, row.handled_at = outcome.reason or None, now
        row.case_id = outcome.case_id or row.case_id
        session.add(row)
        audit.record(session, row.partnership, "bot", f"inbound_{outcome.status}", now,
                     row.case_id, inbound_id=row.id, kind=outcome.kind, reason=outcome.reason)
        return outcome.kind, row.server_id, self._folder(outcome.status)

    def _handle_alone(self, row_id: int, now: datetime) -> tuple[str, str, str | None]:
        try:
            return retry_on_conflict(partial(self._handle_one, row_id, now))
        except Exception as exc:
            # A message whose handling cannot even be committed is quarantined, so that it
            # never blocks the inbox.
            outcome, server_id = self._quarantine_failed(row_id, now, exc)
            return outcome.kind, server_id, self._folder(outcome.status)

    def _handle_one(self, row_id: int, now: datetime) -> tuple[str, str, str | None]:
        with transaction(self.database) as session:
            row = session.get_one(InboundMessage, row_id)
            if row.status != InboundStatus.NEW:
                return row.kind or row.status, row.server_id, self._folder(row.status)
            return self._handle(session, row, now)

    def plan_periodic_jobs(self, now: datetime) -> None:
        """Let each recurring job (the digest, say) plan its next run if none is pending."""
        for name, plan_next in periodic_jobs():
            try:
                retry_on_conflict(partial(self._plan_periodic_job, plan_next, now))
            except IntegrityError:
                # Another process planned the same run first; its row is the one that counts.
                log.debug("periodic job %s was planned by another process", name)

    def _plan_periodic_job(self, plan_next: PeriodicFunction, now: datetime) -> None:
        with transaction(self.database) as session:
            plan_next(ActionContext(session, now, self.config))

    def run_due_actions(
        self, now: datetime, between_slices: Callable[[], None] | None = None
    ) -> list[str]:
        """Run every planned action due at now, a slice per transaction, each exactly once.

        between_slices, if given, is called after each full slice while more may be due.
        """
        done = []
        while True:
            batch = retry_on_conflict(partial(self._run_due_batch, now))
            done.extend(batch)
            if len(batch) < ACTION_SLICE:
                return done
            if between_slices is not None:
                between_slices()

    def _run_due_batch(self, now: datetime) -> list[str]:
        """Claim a batch of due actions, run them and mark them done, all in one transaction.

        The batch is marked done by one statement before it runs: the transaction commits
        all of it or none of it, so marking first or last is the same to the database. The
        cases the batch is about are read in one query, so each action finds its case loaded,
        and each kind of action may read ahead what its rows will look up (prepare).
        """
        with transaction(self.database) as session:
            due = session.exec(
                select(PlannedAction)
                .where(PlannedAction.status == PlannedActionStatus.PENDING,
                       col(PlannedAction.due_at) <= now)
                .order_by(col(PlannedAction.due_at), col(PlannedAction.id))
                .limit(ACTION_SLICE).with_for_update(skip_locked=True)
            ).all()
            if not due:
                return []
            session.execute(update(PlannedAction).where(
                col(PlannedAction.id).in_([planned.id for planned in due])
            ).values(status=PlannedActionStatus.DONE, done_at=now)
              .execution_options(synchronize_session=False))
            case_ids = {planned.case_id for planned in due if planned.case_id is not None}
            # The session holds loaded rows only while they are referenced, so they are kept.
            cases = session.exec(select(Case).where(col(Case.id).in_(case_ids))).all()
            context = ActionContext(session, now, self.config, self.mailbox)
            for name in sorted({planned.action for planned in due}):
                find_action(name).prepare_slice(
                    context, [planned for planned in due if planned.action == name])
            for planned in due:
                set_committed_value(planned, "status", PlannedActionStatus.DONE)
                set_committed_value(planned, "done_at", now)
                find_action(planned.action).run(context, planned)
            del cases
            return [planned.key for planned in due]

    def _quarantine_failed(
        self, row_id: int, now: datetime, error: Exception
    ) -> tuple[Outcome, str]:
        outcome = Outcome(InboundStatus.QUARANTINED, "handler_error",
                          f"handling failed: {type(error).__name__}: {error}"[:500])
        # Only the error's type is logged: its text may quote the message.
        log.error("inbound row %s could not be handled: %s", row_id, type(error).__name__)
        with transaction(self.database) as session:
            row = session.get_one(InboundMessage, row_id)
            row.status, row.kind, row.reason = outcome.status, outcome.kind, outcome.reason
            row.handled_at = now
            session.add(row)
            audit.record(session, row.partnership, "bot", "inbound_quarantined", now,
                         row.case_id, inbound_id=row.id, kind=outcome.kind,
                         reason=outcome.reason)
            return outcome, row.server_id

    def _move(self, server_id: str, folder: str) -> None:
        """Move a message dealt with out of the inbox; one that will not move is tried again.

        Its row is already committed, so the next step's ingest finds it known and moves it
        then; one stuck message never holds up the messages behind it.
        """
        try:
            self.mailbox.mark_processed(server_id, folder)
        except MailboxError as exc:
            log.warning("a message could not be moved to %s: %s", folder, type(exc).__name__)

    def _folder(self, status: str) -> str | None:
        if status == InboundStatus.PROCESSED:
            return self.config.settings.mailbox.processed_folder
        if status == InboundStatus.QUARANTINED:
            return self.config.settings.mailbox.quarantine_folder
        return None


def _message_id(raw: bytes) -> str | None:
    try:
        value = BytesHeaderParser().parsebytes(raw).get("Message-ID")
    except Exception:  # noqa: BLE001 - a header we cannot read is simply not a key.
        return None
    # Only an id in RFC 5322's form is stored (and so ever reused in In-Reply-To).
    return clean_message_id(str(value)) if value else None


# The headers that, with the body, make two deliveries the same message: the same mail
# reaching the mailbox by two routes differs only in its trace headers.
SAME_MESSAGE_HEADERS = ("From", "To", "Cc", "Subject", "Date", "Message-ID")


def same_message(earlier: bytes, later: bytes) -> bool:
    """Say whether two deliveries are one message: same body and the same author's headers."""
    if earlier == later:
        return True
    parts = []
    for raw in (earlier, later):
        ends = [found + size for found, size in ((raw.find(b"\r\n\r\n"), 4),
                                                 (raw.find(b"\n\n"), 2)) if found >= 0]
        body = raw[min(ends):] if ends else b""
        try:
            headers = BytesHeaderParser().parsebytes(raw)
            fields = tuple(" ".join(str(headers.get(name, "")).split())
                           for name in SAME_MESSAGE_HEADERS)
        except Exception:  # noqa: BLE001 - headers we cannot read are not the same.
            return False
        parts.append((fields, body.replace(b"\r\n", b"\n")))
    return parts[0] == parts[1]

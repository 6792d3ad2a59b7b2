"""The submission's jobs: send on sign-off, confirm it is in Sent, warn while it is at risk."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session, col, select

from bot.ballots.members import members
from bot.config import Config
from bot.kernel import audit
from bot.kernel.actions import ActionContext, action
from bot.kernel.events import Event, subscribe
from bot.kernel.mailbox import MailboxError
from bot.mail.notify import notify
from bot.process.working_days import london_time
from bot.report.submission import (
    CONFIRM_AFTER,
    CONFIRM_ATTEMPTS,
    SubmissionCheck,
    SubmissionConfirmation,
    SubmissionRefused,
    plan_confirmation,
    plan_risk_checks,
    queue_submission,
    record_submitted,
)
from bot.store.models import Ballot, Case, Document, OutboxMessage, PlannedAction
from bot.store.statuses import BallotKind, CaseStatus, OutboxStatus

log = logging.getLogger(__name__)

@subscribe("case_opened")
def plan_submission_warnings(event: Event) -> None:
    """Plan the warnings that fire if the report is not on its way in time."""
    plan_risk_checks(event.session, event.config, event.case)


@subscribe("clock_restarted")
def replan_submission_warnings(event: Event) -> None:
    """Move the warnings to the new cut-off when Day 0 moves (Doncaster's notification)."""
    plan_risk_checks(event.session, event.config, event.case)


@subscribe("report_signed_off")
def submit_when_signed_off(event: Event) -> None:
    """Queue the submission of the approved version; tell the business manager if it may not."""
    try:
        queue_submission(event.session, event.config, event.case,
                         str(event.payload["report_sha256"]), event.now, actor="bot")
    except SubmissionRefused as refused:
        audit.record(event.session, event.case.partnership, "bot", "submission_refused",
                     event.now, event.case.id, reason=str(refused))
        _warn(event.session, event.config, event.case, event.now, "refused", str(refused),
              leads=False)


@action("confirm_submission", SubmissionConfirmation)
def confirm(
    context: ActionContext, planned: PlannedAction, look: SubmissionConfirmation
) -> None:
    """Look for the sent submission in Sent; record it, or look again a little later."""
    case = context.session.get_one(Case, planned.case_id)
    row = context.session.exec(select(OutboxMessage).where(
        OutboxMessage.idempotency_key == look.outbox_key)).one()
    if case.submitted_at is not None:
        return
    if row.status == OutboxStatus.SENT and _in_sent(context, row):
        record_submitted(context.session, context.config, case, row, context.now)
        return
    if row.status == OutboxStatus.HELD:
        _warn(context.session, context.config, case, context.now, "held",
              "the report was not sent before the cut-off and is held: run `rrbot report "
              f"submit {case.reference} --late` to send it late", leads=True)
        return
    if row.status == OutboxStatus.DEAD:
        _warn(context.session, context.config, case, context.now, f"dead:{row.id}",
              f"the report could not be sent ({row.last_error}); put the fault right, then "
              f"run `rrbot report submit {case.reference}` to send it again", leads=True)
        return
    if row.status == OutboxStatus.SUPERSEDED:
        return
    # While the row waits (a hold, a retry after a failure) the look-ups are not used up:
    # only a sent message that Sent does not show counts towards giving up.
    waiting = row.status in {OutboxStatus.PENDING, OutboxStatus.SENDING}
    if not waiting and look.looks >= CONFIRM_ATTEMPTS:
        _warn(context.session, context.config, case, context.now, "not_in_sent",
              f"the report was sent at {london_time(row.sent_at or row.created_at)} but is not"
              " in Sent; check the Sent "
              "folder and the National Panel's acknowledgement", leads=False)
        return
    # A wait is counted on the same look; a look used up starts the count of waits again.
    looks, waits = (look.looks, look.waits + 1) if waiting else (look.looks + 1, 0)
    plan_confirmation(context.session, case, SubmissionConfirmation(
        outbox_key=look.outbox_key, looks=looks, waits=waits),
        max(context.now, row.next_attempt_at) + CONFIRM_AFTER)


def _in_sent(context: ActionContext, row: OutboxMessage) -> bool:
    """Say whether Sent shows the row; a mailbox that cannot be reached shows nothing yet."""
    if context.mailbox is None:
        return True
    try:
        return context.mailbox.find_sent(row.message_id)
    except MailboxError as exc:
        # The look-up is tried again later; the other due actions in this batch go on.
        log.warning("could not look in Sent for the submission: %s", type(exc).__name__)
        return False


@action("submission_risk", SubmissionCheck)
def risk(context: ActionContext, planned: PlannedAction, warning: SubmissionCheck) -> None:
    """At each warning point, tell the people the preset says if the report is at risk."""
    case = context.session.get_one(Case, planned.case_id)
    if case.submitted_at is not None or case.status in {
            CaseStatus.CLOSED, CaseStatus.NO_FURTHER_ACTION, CaseStatus.LEARNING_REVIEW}:
        return
    session, check = context.session, warning.check
    if check == "no_report":
        has_report = session.exec(select(Document).where(
            Document.case_id == case.id, Document.kind == "report")).first()
        if has_report is None:
            _warn(session, context.config, case, context.now, check,
                  "no version of the Rapid Review report has been received", leads=False)
    elif check == "no_quorum":
        approved = session.exec(select(Ballot).where(
            Ballot.case_id == case.id, Ballot.kind == BallotKind.SIGNOFF,
            Ballot.outcome == "approve")).first()
        if approved is None:
            _warn(session, context.config, case, context.now, check,
                  "the report has not been signed off by the partners needed", leads=True)
    elif check == "not_sent":
        sent = session.exec(select(OutboxMessage).where(
            OutboxMessage.case_id == case.id, OutboxMessage.purpose == "submission",
            col(OutboxMessage.status) == OutboxStatus.SENT)).first()
        if sent is None:
            _warn(session, context.config, case, context.now, check,
                  "URGENT: the report has not been sent to the National Panel", leads=True)
    else:
        _warn(session, context.config, case, context.now, check,
              "URGENT: the report is not confirmed in Sent and the cut-off is close",
              leads=True)


def _warn(session: Session, config: Config, case: Case, now: datetime, check: str,
          problem: str, leads: bool) -> None:
    settings = config.settings
    people = [(settings.business_manager.name, settings.business_manager.email)]
    if leads:
        people += [(m.name, m.email) for m in members(config) if m.role == "lead"]
    for name, address in people:
        notify(session, config, "submission_risk", to=[address],
               key=f"{case.reference}:risk:{check}:{address.lower()}", now=now,
               case_id=case.id, values=dict(recipient_name=name,
                                            case_reference=case.reference, problem=problem))

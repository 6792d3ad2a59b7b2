"""Chasing a ballot: reminders to partners yet to vote, the at-risk warning, and their plan."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from bot.ballots.members import PARTNER_LABELS, members
from bot.ballots.notices import alert_manager
from bot.ballots.views import votes_on
from bot.config import Config
from bot.kernel.actions import ActionArguments, ActionPlan, plan_actions
from bot.kernel.outbox import enqueue_chat
from bot.process.working_days import short_time
from bot.process.working_hours import working_hours_before
from bot.store.models import Ballot, Case, PlannedAction
from bot.store.statuses import BallotKind, BallotStatus, PlannedActionStatus


class BallotStep(ActionArguments):
    """The ballot a reminder, at-risk warning or deadline is about."""

    ballot_id: int


def remind_partners(
    session: Session, config: Config, ballot_id: int, key: str, now: datetime
) -> int:
    """Send a direct message to each member of each partner that has not voted; count them."""
    ballot = session.get_one(Ballot, ballot_id)
    if ballot.status != BallotStatus.OPEN:
        return 0
    case = session.get_one(Case, ballot.case_id)
    voted = {vote.partner_key for vote in votes_on(session, ballot)}
    what = "partner decision" if ballot.kind == BallotKind.DECISION else "report sign-off"
    sent = 0
    for member in members(config):
        if member.partner_key in voted or not member.slack_user_id:
            continue
        text = (f"Reminder: the {what} ballot for {case.reference} closes"
                f" {short_time(ballot.closes_at, config.calendar)}, and"
                f" {PARTNER_LABELS[member.partner_key]} has not voted yet. Please vote in the"
                " partners' channel (the lead or any deputy may vote).")
        enqueue_chat(session, partnership=case.partnership, key=f"{key}:{member.slack_user_id}",
                     purpose="ballot_reminder",
                     payload={"operation": "direct", "user_id": member.slack_user_id,
                              "text": text},
                     now=now, recipient=member.slack_user_id, case_id=case.id)
        sent += 1
    return sent


def warn_if_at_risk(
    session: Session, config: Config, ballot_id: int, key: str, now: datetime
) -> bool:
    """Warn the business manager when a ballot near its deadline still lacks quorum."""
    ballot = session.get_one(Ballot, ballot_id)
    if ballot.status != BallotStatus.OPEN:
        return False
    case = session.get_one(Case, ballot.case_id)
    alert_manager(session, config, case, ballot, "at_risk", now, key)
    return True


def plan_chasing(
    session: Session, config: Config, case: Case, ballot: Ballot, now: datetime
) -> None:
    """Plan a ballot's reminders, at-risk warning and deadline on the preset's working hours."""
    quorum = config.preset.quorum
    prefix = f"{case.reference}:ballot:{ballot.id}"
    wanted = [
        (f"{prefix}:remind:{number}", "ballot_reminder",
         working_hours_before(config.calendar, ballot.closes_at, hours))
        for number, hours in enumerate(quorum.remind_working_hours_before)
    ]
    wanted.append((f"{prefix}:at_risk", "ballot_at_risk",
                   working_hours_before(config.calendar, ballot.closes_at,
                                        quorum.at_risk_working_hours_before)))
    wanted.append((f"{prefix}:deadline", "ballot_deadline", ballot.closes_at))
    step = BallotStep(ballot_id=ballot.id or 0)
    # A reminder whose time has already passed would only repeat the ballot just posted.
    plan_actions(session, [
        ActionPlan(case.partnership, case.id, key, action_name, step, due_at)
        for key, action_name, due_at in wanted
        if due_at > now or action_name == "ballot_deadline"
    ])
    session.flush()


def cancel_chasing(session: Session, case: Case, ballot: Ballot, now: datetime) -> None:
    """Cancel whatever chasing of a ballot is still pending."""
    prefix = f"{case.reference}:ballot:{ballot.id}:"
    # The case narrows the look-up to the case's own actions through its index.
    for planned in session.exec(select(PlannedAction).where(
        PlannedAction.case_id == case.id, col(PlannedAction.key).startswith(prefix),
        PlannedAction.status == PlannedActionStatus.PENDING,
    )):
        planned.status, planned.done_at = PlannedActionStatus.CANCELLED, now
        session.add(planned)

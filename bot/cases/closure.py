"""The end of a case: the National Panel's response, a local review, dates set by hand, closing."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, col, select

from bot.agencies.follow_up import stop_chasing_outstanding
from bot.cases.lifecycle import mark_milestone_done, replan
from bot.cases.states import TRANSITIONS, transition
from bot.config import Config
from bot.kernel import audit
from bot.kernel.events import publish
from bot.store.models import Case, Milestone, PlannedAction
from bot.store.statuses import CaseStatus, MilestoneStatus, PlannedActionStatus

# What the National Panel may say of a Rapid Review, in the words the case shows.
PANEL_RESPONSES = {
    "no_further_review": "agrees that no further review is needed",
    "local_review": "agrees that a local child safeguarding practice review is appropriate",
    "national_review": "will carry out a national review",
    "more_information": "asks for more information",
}
# The milestones the Panel's response completes, where the preset has them.
PANEL_MILESTONES = ("national_panel_meeting", "national_panel_reply")
COMMISSIONED_KEY = "local_review_commissioned"
OPEN_MILESTONES = (MilestoneStatus.PENDING, MilestoneStatus.OVERDUE)


class CaseClosed(ValueError):
    """The case is closed: nothing more is done on it."""


def record_panel_response(
    session: Session, config: Config, case: Case, decision: str, at: datetime, actor: str,
) -> bool:
    """Record the Panel's response; close the case unless more is to come. Say if it closed."""
    if decision not in PANEL_RESPONSES:
        raise ValueError(f"--decision: choose {', '.join(PANEL_RESPONSES)}")
    _refuse_closed(case)
    if case.submitted_at is None:
        raise ValueError(f"{case.reference}: the report has not gone to the National Panel yet")
    case.panel_response, case.panel_responded_at = decision, at
    session.add(case)
    audit.record(session, case.partnership, actor, "panel_response", at, case.id,
                 decision=decision)
    for key in PANEL_MILESTONES:
        if _milestone(session, case, key, OPEN_MILESTONES) is not None:
            mark_milestone_done(session, config, case, key, at, actor)
    if decision == "more_information" or local_review_commissioned(session, case):
        return False
    close_case(session, config, case, f"the National Panel {PANEL_RESPONSES[decision]}", at,
               actor)
    return True


def close_case(
    session: Session, config: Config, case: Case, reason: str, now: datetime, actor: str
) -> None:
    """Close a case: nothing more is chased or planned for it, and the reason is recorded."""
    _refuse_closed(case)
    if not reason.strip():
        raise ValueError("--reason: say why the case is closed")
    stop_chasing_outstanding(session, config, case, now, actor, "the case was closed")
    pending = session.exec(select(PlannedAction).where(
        PlannedAction.case_id == case.id, PlannedAction.status == PlannedActionStatus.PENDING))
    cancelled = 0
    for planned in pending:
        planned.status, planned.done_at = PlannedActionStatus.CANCELLED, now
        session.add(planned)
        cancelled += 1
    case.close_reason = reason.strip()
    transition(session, case, CaseStatus.CLOSED, actor, now)
    audit.record(session, case.partnership, actor, "case_closed", now, case.id,
                 reason=case.close_reason, cancelled_actions=cancelled)
    # What was planned ahead for the case outside the bot (the meeting) is cancelled too.
    publish("case_closed", session, config, case, now)


def commission_local_review(
    session: Session, config: Config, case: Case, at: datetime, actor: str
) -> None:
    """Start a local review's own timeline: six months to completion from this decision."""
    _refuse_closed(case)
    if local_review_commissioned(session, case):
        raise ValueError(f"{case.reference}: a local review is already commissioned")
    steps = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.status == MilestoneStatus.NOT_APPLICABLE)).all()
    keys = {m.key for m in config.preset.milestones if m.applies == "local_review"}
    if COMMISSIONED_KEY not in keys:
        raise ValueError(f"the process has no {COMMISSIONED_KEY!r} milestone to start a local"
                         " review from")
    for milestone in steps:
        if milestone.key in keys:
            milestone.status = MilestoneStatus.PENDING
            session.add(milestone)
    session.flush()
    audit.record(session, case.partnership, actor, "local_review_commissioned", at, case.id)
    # Marking the decision done dates the review's steps from it and plans their reminders.
    mark_milestone_done(session, config, case, COMMISSIONED_KEY, at, actor)
    if CaseStatus.LOCAL_REVIEW in TRANSITIONS[case.status]:
        transition(session, case, CaseStatus.LOCAL_REVIEW, actor, at)


def set_milestone_date(
    session: Session, config: Config, case: Case, key: str, on: date, now: datetime, actor: str,
) -> Milestone:
    """Set the date of a step a person decides (the publication): the steps before it move."""
    _refuse_closed(case)
    definition = config.preset.milestone(key)
    if not definition.dated_by_hand:
        raise ValueError(f"{key} is dated by the plan; only a date set by hand can be changed")
    milestone = _milestone(session, case, key, OPEN_MILESTONES)
    if milestone is None:
        raise ValueError(f"{case.reference}: {key} is not an open step of the case"
                         " (is a local review commissioned?)")
    due = config.calendar.at(on, definition.at)
    previous = milestone.due_at
    milestone.due_at, milestone.due_set_by_hand = due, True
    milestone.status = MilestoneStatus.PENDING
    session.add(milestone)
    session.flush()
    audit.record(session, case.partnership, actor, "milestone_dated", now, case.id,
                 milestone=key, previous=previous, due=due)
    replan(session, config, case, now, dated_by_hand=key if previous != due else None)
    return milestone


def local_review_commissioned(session: Session, case: Case) -> bool:
    """Say whether a local review was commissioned on the case."""
    return _milestone(session, case, COMMISSIONED_KEY, (MilestoneStatus.DONE,)) is not None


def _milestone(
    session: Session, case: Case, key: str, statuses: tuple[str, ...]
) -> Milestone | None:
    return session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == key,
        col(Milestone.status).in_(statuses))).first()


def _refuse_closed(case: Case) -> None:
    if case.status == CaseStatus.CLOSED:
        raise CaseClosed(f"{case.reference} is closed")

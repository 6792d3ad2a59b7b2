"""Milestone actions: remind the business manager before a deadline, warn when it passes."""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlmodel import col, select

from bot.cases.lifecycle import MilestoneStep
from bot.kernel import audit
from bot.kernel.actions import ActionContext, action
from bot.mail.notify import notify
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import as_aware
from bot.store.models import Case, Milestone, PlannedAction
from bot.store.statuses import CaseStatus, MilestoneStatus


def read_milestones(
    context: ActionContext, due: list[tuple[PlannedAction, MilestoneStep]]
) -> None:
    """Read the milestones a slice of due reminders is about in one query, for _load."""
    wanted = {(planned.case_id, step.milestone) for planned, step in due}
    # The cases' index finds the rows (SQLite scans the table for a list of pairs), and the
    # few of the same cases and keys that were not asked for are left out here.
    with context.session.no_autoflush:
        found = context.session.exec(select(Milestone).where(
            col(Milestone.case_id).in_({case_id for case_id, _key in wanted}),
            col(Milestone.key).in_({key for _case_id, key in wanted}))).all()
    # The session keeps loaded rows only while they are referenced, so they are kept here.
    read: dict[tuple[int | None, str], Milestone] = context.session.info.setdefault(
        READ_AHEAD, {})
    read.update({(milestone.case_id, milestone.key): milestone for milestone in found
                 if (milestone.case_id, milestone.key) in wanted})


# Where a sweep's transaction keeps the milestones read ahead, by case and key.
READ_AHEAD = "milestones_read_ahead"
# The look-up is one statement made once: SQLAlchemy then compiles and keys it once, which
# takes more than half the time of a look-up made anew each time.
_MILESTONE = select(Milestone).where(Milestone.case_id == bindparam("case_id"),
                                     Milestone.key == bindparam("key"))


@action("milestone_reminder", MilestoneStep, prepare=read_milestones)
def remind(context: ActionContext, planned: PlannedAction, step: MilestoneStep) -> None:
    """Before a milestone's deadline, tell the business manager if it is still open."""
    case, milestone = _load(context, planned, step)
    if milestone.status == MilestoneStatus.PENDING and as_aware(context.now) < milestone.due_at:
        _tell_business_manager(context, planned, case, milestone, "milestone_reminder")


@action("milestone_overdue", MilestoneStep, prepare=read_milestones)
def overdue(context: ActionContext, planned: PlannedAction, step: MilestoneStep) -> None:
    """At a milestone's deadline, mark it overdue and warn the business manager if not done."""
    case, milestone = _load(context, planned, step)
    if milestone.status != MilestoneStatus.PENDING or case.status == CaseStatus.CLOSED:
        return
    milestone.status = MilestoneStatus.OVERDUE
    context.session.add(milestone)
    audit.record(context.session, case.partnership, "bot", "milestone_overdue", context.now,
                 case.id, milestone=milestone.key)
    _tell_business_manager(context, planned, case, milestone, "milestone_overdue")


def _load(
    context: ActionContext, planned: PlannedAction, step: MilestoneStep
) -> tuple[Case, Milestone]:
    case = context.session.get_one(Case, planned.case_id)
    milestone = context.session.info.get(READ_AHEAD, {}).get((case.id, step.milestone))
    if milestone is None:
        # Milestones are made when their case opens, never in a sweep, so the look-up need
        # not write the sweep's earlier changes first: they go together at the commit.
        with context.session.no_autoflush:
            milestone = context.session.exec(
                _MILESTONE, params={"case_id": case.id, "key": step.milestone}).one()
    return case, milestone


def _tell_business_manager(
    context: ActionContext, planned: PlannedAction, case: Case, milestone: Milestone,
    purpose: str,
) -> None:
    settings = context.config.settings
    calendar = context.config.calendar
    manager = settings.business_manager
    notify(context.session, context.config, purpose, to=[manager.email], key=planned.key,
           now=context.now, case_id=case.id, values=dict(
               recipient_name=manager.name, case_reference=case.reference,
               milestone_label=milestone.label, due=milestone.due_at,
               statutory=milestone.statutory,
               today_day=calendar.day_number(case.day0, calendar.local_date(context.now)),
               submission_day=context.config.preset.milestone(SUBMISSION_KEY).day or "-"))

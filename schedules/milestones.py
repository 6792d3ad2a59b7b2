"""Milestone actions: remind the business manager before a deadline, warn when it passes."""

from __future__ import annotations

from sqlmodel import select

from bot.cases.lifecycle import MilestoneStep
from bot.kernel import audit
from bot.kernel.actions import ActionContext, action
from bot.mail.notify import notify
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import as_aware
from bot.store.models import Case, Milestone, PlannedAction
from bot.store.statuses import CaseStatus, MilestoneStatus


@action("milestone_reminder", MilestoneStep)
def remind(context: ActionContext, planned: PlannedAction, step: MilestoneStep) -> None:
    """Before a milestone's deadline, tell the business manager if it is still open."""
    case, milestone = _load(context, planned, step)
    if milestone.status == MilestoneStatus.PENDING and as_aware(context.now) < milestone.due_at:
        _tell_business_manager(context, planned, case, milestone, "milestone_reminder")


@action("milestone_overdue", MilestoneStep)
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
    milestone = context.session.exec(
        select(Milestone).where(Milestone.case_id == case.id, Milestone.key == step.milestone)
    ).one()
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

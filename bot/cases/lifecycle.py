"""Opening a case, dating its milestones and planning the actions their deadlines need."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, func, select

from bot.config import Config
from bot.kernel import audit
from bot.kernel.actions import ActionArguments, ActionPlan, plan_actions
from bot.kernel.events import publish
from bot.process.preset import NOTIFICATION_KEY, Reminder
from bot.process.timeline import plan, reminder_at
from bot.process.working_days import as_aware
from bot.store.models import Case, CursorState, Milestone
from bot.store.statuses import CaseStatus, MilestoneStatus

# Statutory milestones with no reminders of their own warn the business manager a working
# day ahead, so that no statutory deadline passes without warning in good time.
DEFAULT_STATUTORY_REMINDERS = (Reminder(working_days_before=1),)


class CaseNotFound(LookupError):
    """No case has that reference."""


class MilestoneStep(ActionArguments):
    """The milestone a reminder or deadline check is about, by its key in the preset."""

    milestone: str


def next_reference(session: Session, config: Config, year: int) -> str:
    """Return the next free case reference of the year, e.g. RR-2026-007."""
    prefix = f"{config.settings.partnership.case_reference_prefix}-{year}-"
    # The year's last number is kept in one row, locked while the case is opened, so the
    # next one is a primary-key look-up however many cases there have been.
    key = f"case-reference:{prefix}"
    sequence = session.exec(
        select(CursorState).where(CursorState.key == key).with_for_update()
    ).first()
    if sequence is None:
        # The year's first case (or the first since the row was kept) counts the year's once.
        count = session.exec(
            select(func.count()).select_from(Case).where(col(Case.reference).startswith(prefix))
        ).one()
        sequence = CursorState(key=key, value=str(count))
    number = int(sequence.value) + 1
    sequence.value = str(number)
    session.add(sequence)
    return f"{prefix}{number:03d}"


def open_case(
    session: Session,
    config: Config,
    clock_start: datetime,
    now: datetime,
    actor: str,
    referrer_email: str | None = None,
) -> Case:
    """Open a case whose clock started at clock_start, with its milestones and actions."""
    clock_start = as_aware(clock_start).astimezone(UTC)
    partnership = config.settings.partnership.key
    case_plan = plan(config.preset, config.calendar, clock_start)
    case = Case(
        partnership=partnership,
        reference=next_reference(session, config, case_plan.day0.year),
        preset=config.preset.name, status=CaseStatus.RECEIVED, clock_start=clock_start,
        day0=case_plan.day0, opened_at=now, referrer_email=referrer_email,
    )
    session.add(case)
    session.flush()
    for planned in case_plan.milestones:
        applies = planned.applies == "always"
        session.add(Milestone(
            partnership=partnership, case_id=case.id or 0, key=planned.key, label=planned.label,
            due_at=planned.due, day=planned.day, statutory=planned.statutory,
            status=MilestoneStatus.PENDING if applies else MilestoneStatus.NOT_APPLICABLE,
        ))
    session.flush()
    schedule_milestone_actions(session, config, case)
    audit.record(session, partnership, actor, "case_opened", now, case.id,
                 reference=case.reference, preset=case.preset,
                 clock_start=clock_start.isoformat())
    publish("case_opened", session, config, case, now)
    return case


def schedule_milestone_actions(session: Session, config: Config, case: Case) -> None:
    """Plan (or move) the reminder and deadline check of every pending milestone."""
    milestones = session.exec(
        select(Milestone).where(Milestone.case_id == case.id,
                                Milestone.status == MilestoneStatus.PENDING)
    ).all()
    plans = []
    for milestone in milestones:
        definition = config.preset.milestone(milestone.key)
        # A date set by hand marks an event outside the partnership (the Panel's meeting, a
        # publication): steps are counted from it, but it is not itself chased.
        if definition.dated_by_hand and not definition.statutory:
            continue
        reminders = definition.remind or (
            list(DEFAULT_STATUTORY_REMINDERS) if milestone.statutory else []
        )
        wanted = {f"{case.reference}:{milestone.key}:due": ("milestone_overdue", milestone.due_at)}
        for number, reminder in enumerate(reminders):
            at = reminder_at(config.calendar, milestone.due_at, reminder)
            wanted[f"{case.reference}:{milestone.key}:remind:{number}"] = ("milestone_reminder", at)
        step = MilestoneStep(milestone=milestone.key)
        plans += [ActionPlan(case.partnership, case.id, key, action_name, step, due_at)
                  for key, (action_name, due_at) in wanted.items()]
    # Every milestone's actions are planned in one statement, not one look-up each.
    plan_actions(session, plans)


def find_case(session: Session, reference: str) -> Case:
    """Return the case with that reference."""
    case = session.exec(select(Case).where(Case.reference == reference)).first()
    if case is None:
        raise CaseNotFound(f"no case {reference!r}")
    return case


def mark_milestone_done(
    session: Session, config: Config, case: Case, key: str, at: datetime, actor: str
) -> Milestone:
    """Record a milestone as done, re-date the milestones counted from it, move their actions."""
    milestone = session.exec(
        select(Milestone).where(Milestone.case_id == case.id, Milestone.key == key)
    ).first()
    if milestone is None:
        raise KeyError(f"case {case.reference} has no milestone {key!r}")
    if milestone.status == MilestoneStatus.DONE:
        return milestone
    milestone.status = MilestoneStatus.DONE
    milestone.done_at = at
    session.add(milestone)
    audit.record(session, case.partnership, actor, "milestone_done", at, case.id, milestone=key)
    restarted = (key == NOTIFICATION_KEY
                 and config.preset.clock_starts == "national_panel_notified"
                 and _restart_clock(session, config, case, at, actor))
    replan(session, config, case, at)
    # What is planned from the new dates outside the milestones (the submission's warnings)
    # moves with them.
    if restarted:
        publish("clock_restarted", session, config, case, at)
    return milestone


def _restart_clock(
    session: Session, config: Config, case: Case, notified_at: datetime, actor: str
) -> bool:
    """Count the case from the National Panel notification, where the preset says it starts.

    The case was dated from the referral until then; every step still pending is re-dated by
    the caller, and one already overdue stays overdue (its warnings have gone). Say whether
    Day 0 moved.
    """
    notified_at = as_aware(notified_at).astimezone(UTC)
    day0 = config.calendar.day0(notified_at)
    if day0 == case.day0:
        return False
    audit.record(session, case.partnership, actor, "clock_restarted", notified_at, case.id,
                 previous_day0=case.day0.isoformat(), day0=day0.isoformat())
    case.clock_start, case.day0 = notified_at, day0
    session.add(case)
    return True


def replan(
    session: Session, config: Config, case: Case, at: datetime, dated_by_hand: str | None = None
) -> None:
    """Re-date the pending milestones from what is done and set by hand; move their actions.

    dated_by_hand names a milestone whose date a person has just changed, which moved too.
    """
    moved = [dated_by_hand] if dated_by_hand else []
    moved += _replan(session, config, case)
    if moved:
        publish("milestones_moved", session, config, case, at, moved=moved)


def _replan(session: Session, config: Config, case: Case) -> list[str]:
    """Re-date every pending milestone from the plan; return the keys of those that moved."""
    moved = []
    milestones = session.exec(select(Milestone).where(Milestone.case_id == case.id)).all()
    done = {m.key: m.done_at for m in milestones if m.status == MilestoneStatus.DONE and m.done_at}
    fixed = {m.key: m.due_at for m in milestones if m.due_set_by_hand}
    case_plan = plan(config.preset, config.calendar, case.clock_start, done, fixed)
    for milestone in milestones:
        if (milestone.status == MilestoneStatus.PENDING
                and milestone.due_at != case_plan.due(milestone.key)):
            milestone.due_at = case_plan.due(milestone.key)
            milestone.day = case_plan.get(milestone.key).day
            session.add(milestone)
            moved.append(milestone.key)
    session.flush()
    schedule_milestone_actions(session, config, case)
    return moved

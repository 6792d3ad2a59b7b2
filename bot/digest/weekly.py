"""The Monday summary: the past week's cases opened, closed and their statutory steps."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from bot.cases.states import OPEN_STATUSES
from bot.config import Config
from bot.digest.attention import short_date, short_time, words
from bot.digest.daily import child_identity
from bot.digest.lines import ClosedCase, MilestoneTime, WeeklySummary
from bot.store.models import Case, Milestone
from bot.store.statuses import MilestoneStatus


def build_weekly_summary(
    session: Session, config: Config, now: datetime, week_start: date
) -> WeeklySummary:
    """Build the summary of the cases closed in the seven days from week_start (a Monday)."""
    calendar = config.calendar
    start = calendar.at(week_start, datetime.min.time())
    end = calendar.at(week_start + timedelta(days=7), datetime.min.time())
    closed_cases = session.exec(
        select(Case).where(col(Case.closed_at) >= start, col(Case.closed_at) < end)
        .order_by(col(Case.closed_at), col(Case.reference))
    ).all()
    open_count = len(session.exec(
        select(Case.id).where(col(Case.status).in_(sorted(OPEN_STATUSES)))
    ).all())
    week_end = week_start + timedelta(days=6)
    return WeeklySummary(
        partnership=config.settings.partnership.name,
        week_label=f"{short_date(week_start)} to {short_date(week_end)}",
        generated=short_time(now, calendar),
        closed=[_closed_case(session, config, case) for case in closed_cases],
        open_count=open_count,
    )


def _closed_case(session: Session, config: Config, case: Case) -> ClosedCase:
    calendar = config.calendar
    milestones = session.exec(
        select(Milestone).where(Milestone.case_id == case.id)
        .order_by(col(Milestone.due_at), col(Milestone.id))
    ).all()
    times = []
    for milestone in milestones:
        if milestone.status == MilestoneStatus.NOT_APPLICABLE:
            continue
        done_day = None
        if milestone.status == MilestoneStatus.DONE and milestone.done_at is not None:
            done_day = calendar.working_days_between(case.day0,
                                                     calendar.local_date(milestone.done_at))
            outcome = "late" if milestone.done_at > milestone.due_at else "on time"
        else:
            outcome = "not done"
        times.append(MilestoneTime(milestone.label, milestone.day, done_day, outcome))
    return ClosedCase(
        reference=case.reference,
        child=child_identity(case, config),
        decision=words(case.decision) if case.decision else "-",
        day0=short_date(case.day0),
        closed=short_time(case.closed_at, calendar) if case.closed_at else "-",
        milestones=times,
    )

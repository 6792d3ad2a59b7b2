"""Read-only views of the cases for people: the CLI list now, the digest later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from bot.config import Config
from bot.process.working_days import london_time
from bot.store.models import Case, Milestone
from bot.store.statuses import MilestoneStatus


def case_summaries(session: Session, config: Config, now: datetime) -> list[dict[str, Any]]:
    """Each case with its working day, status and next open milestone (case references only)."""
    calendar = config.calendar
    summaries = []
    for case in session.exec(select(Case).order_by(col(Case.id))):
        upcoming = session.exec(
            select(Milestone)
            .where(Milestone.case_id == case.id, col(Milestone.status).in_([
                MilestoneStatus.PENDING, MilestoneStatus.OVERDUE]))
            .order_by(col(Milestone.due_at))
        ).first()
        summaries.append({
            "reference": case.reference,
            "status": case.status,
            "day0": case.day0.isoformat(),
            "day": calendar.working_days_between(case.day0, calendar.local_date(now)),
            "next_milestone": upcoming.key if upcoming else None,
            "next_milestone_name": upcoming.label if upcoming else None,
            "next_due": upcoming.due_at.astimezone(calendar.zone).isoformat() if upcoming
            else None,
            # The same instant as people read it, in London time.
            "next_due_words": london_time(upcoming.due_at, calendar.zone) if upcoming else None,
            "overdue": session.exec(
                select(Milestone.key).where(Milestone.case_id == case.id,
                                            Milestone.status == MilestoneStatus.OVERDUE)
            ).all(),
        })
    return summaries

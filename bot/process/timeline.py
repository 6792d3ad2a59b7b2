"""Turn a process preset and a clock-start instant into the dated plan of a case."""

from __future__ import annotations

import calendar as gregorian
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.process.preset import Milestone, Preset, Reminder
from bot.process.working_days import WorkingCalendar, as_aware


@dataclass(frozen=True)
class PlannedMilestone:
    """One milestone of one case: when it falls and which working day that is."""

    key: str
    label: str
    due: datetime
    day: int | None
    statutory: bool
    applies: str

    def as_json(self, calendar: WorkingCalendar) -> dict[str, Any]:
        """Describe the milestone for `rrbot timeline --json` (due in London time)."""
        return {
            "key": self.key,
            "label": self.label,
            "day": self.day,
            "due": self.due.astimezone(calendar.zone).isoformat(),
        }


@dataclass(frozen=True)
class Timeline:
    """The plan of one case: its Day 0 and each milestone in order of its due instant."""

    preset: str
    clock_start: datetime
    day0: date
    milestones: tuple[PlannedMilestone, ...]

    def due(self, key: str) -> datetime:
        """Return the due instant of a milestone."""
        return self.get(key).due

    def get(self, key: str) -> PlannedMilestone:
        """Return the planned milestone with that key."""
        for milestone in self.milestones:
            if milestone.key == key:
                return milestone
        raise KeyError(key)

    def as_json(self, calendar: WorkingCalendar) -> dict[str, Any]:
        """Describe the plan in the shape `rrbot timeline --json` prints."""
        return {
            "preset": self.preset,
            "day0": self.day0.isoformat(),
            "milestones": [milestone.as_json(calendar) for milestone in self.milestones],
        }


def plan(
    preset: Preset,
    calendar: WorkingCalendar,
    clock_start: datetime,
    done: Mapping[str, datetime] | None = None,
    fixed: Mapping[str, datetime] | None = None,
) -> Timeline:
    """Date every milestone of a case whose clock started at clock_start.

    A milestone counted from another one counts from the instant that one was actually done
    when `done` has it, else from its planned due instant. A milestone in `fixed` (a date a
    person set, such as the publication date) falls then, whatever its offset says.
    """
    clock_start = as_aware(clock_start).astimezone(UTC)
    day0 = calendar.day0(clock_start)
    by_key = {milestone.key: milestone for milestone in preset.milestones}
    done = {key: as_aware(instant).astimezone(UTC) for key, instant in (done or {}).items()}
    due: dict[str, datetime] = {key: as_aware(instant).astimezone(UTC)
                                for key, instant in (fixed or {}).items() if key in by_key}

    def resolve(key: str) -> datetime:
        if key not in due:
            due[key] = _due(by_key[key], calendar, day0, clock_start, base_of)
        return due[key]

    def base_of(key: str) -> datetime:
        return done[key] if key in done else resolve(key)

    for milestone in preset.milestones:
        resolve(milestone.key)
    planned = [
        PlannedMilestone(
            key=milestone.key,
            label=milestone.label,
            due=due[milestone.key],
            day=calendar.day_number(day0, calendar.local_date(due[milestone.key])),
            statutory=milestone.statutory,
            applies=milestone.applies,
        )
        for milestone in preset.milestones
    ]
    # A stable sort keeps the preset's order for milestones that fall at the same instant.
    planned.sort(key=lambda milestone: milestone.due)
    return Timeline(preset.name, clock_start, day0, tuple(planned))


def _due(
    milestone: Milestone,
    calendar: WorkingCalendar,
    day0: date,
    clock_start: datetime,
    base_of: Any,
) -> datetime:
    if milestone.day is not None:
        return calendar.at(calendar.day_n(day0, milestone.day), milestone.at)
    if milestone.before is not None:
        assert milestone.working_days is not None
        target = calendar.add_working_days(calendar.local_date(base_of(milestone.before)),
                                           -milestone.working_days)
        return calendar.at(target, milestone.at)
    base = base_of(milestone.after) if milestone.after else clock_start
    if milestone.hours is not None:
        return base + timedelta(hours=milestone.hours)
    base_date = calendar.local_date(base)
    if milestone.working_days is not None:
        target = calendar.add_working_days(base_date, milestone.working_days)
        return calendar.at(target, milestone.at)
    assert milestone.months is not None
    return calendar.at(add_months(base_date, milestone.months), milestone.at)


def add_months(day: date, months: int) -> date:
    """Add calendar months, keeping the day of the month where it exists (31 Jan -> 28 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, gregorian.monthrange(year, month)[1]))


def reminder_at(calendar: WorkingCalendar, due: datetime, reminder: Reminder) -> datetime:
    """Return the instant of a reminder before a due instant."""
    if reminder.hours_before is not None:
        return due - timedelta(hours=reminder.hours_before)
    assert reminder.working_days_before is not None
    local_due = due.astimezone(calendar.zone)
    day = calendar.add_working_days(local_due.date(), -reminder.working_days_before)
    return calendar.at(day, reminder.at or local_due.time())

"""Working-hours arithmetic: the instant that lies so many working hours before another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.process.working_days import WorkingCalendar, as_aware


def working_hours_before(calendar: WorkingCalendar, instant: datetime, hours: float) -> datetime:
    """Return the instant that lies the given working hours before instant."""
    remaining = timedelta(hours=hours)
    local = as_aware(instant).astimezone(calendar.zone)
    cursor = local
    for _ in range(3660):
        if remaining <= timedelta(0):
            return cursor.astimezone(UTC)
        day = cursor.date()
        if calendar.is_working_day(day):
            start = datetime.combine(day, calendar.hours.start, tzinfo=calendar.zone)
            top = min(cursor, datetime.combine(day, calendar.hours.end, tzinfo=calendar.zone))
            if top > start:
                if top - start >= remaining:
                    return (top - remaining).astimezone(UTC)
                remaining -= top - start
        cursor = datetime.combine(day - timedelta(days=1), calendar.hours.end,
                                  tzinfo=calendar.zone)
    raise ValueError("no working hours found within ten years; check the closure dates")

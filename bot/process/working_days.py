"""England and Wales working days in Europe/London: Day 0, Day N, cut-offs and clock hours."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")

# Far enough ahead for any case's later steps (a local review runs six months), and a guard
# against runaway loops when a configuration closes every day.
_MAX_SEARCH_DAYS = 3660


@dataclass(frozen=True)
class WorkingHours:
    """The working day's opening and closing times; "by Day N" means by the closing time."""

    start: time = time(9, 0)
    end: time = time(17, 0)


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days are Monday to Friday minus bank holidays (GB, ENG) and closure dates."""

    closures: frozenset[date] = field(default_factory=frozenset)
    hours: WorkingHours = field(default_factory=WorkingHours)
    zone: ZoneInfo = LONDON

    @classmethod
    def build(
        cls, closures: Iterable[date] = (), hours: WorkingHours | None = None
    ) -> WorkingCalendar:
        """Make a calendar from a partnership's closure dates and working hours."""
        return cls(frozenset(closures), hours or WorkingHours())

    @cached_property
    def _bank_holidays(self) -> holidays.HolidayBase:
        # The holidays package fills in each year the first time a date in it is asked about.
        return holidays.country_holidays("GB", subdiv="ENG")

    def bank_holiday_name(self, day: date) -> str | None:
        """Name the England and Wales bank holiday on that date, if there is one."""
        name = self._bank_holidays.get(day)
        return str(name) if name else None

    def is_working_day(self, day: date) -> bool:
        """Say whether the date is a working day for this partnership."""
        return day.weekday() < 5 and day not in self._bank_holidays and day not in self.closures

    def local_date(self, instant: datetime) -> date:
        """Return the Europe/London calendar date of an aware instant."""
        return as_aware(instant).astimezone(self.zone).date()

    def day0(self, clock_start: datetime) -> date:
        """Day 0 is the London date of the clock-starting event, whatever the hour or day."""
        return self.local_date(clock_start)

    def add_working_days(self, start: date, count: int) -> date:
        """Return the date count working days after start (before it when count is negative).

        Zero returns start itself, working day or not.
        """
        step = 1 if count >= 0 else -1
        remaining = abs(count)
        day = start
        searched = 0
        while remaining:
            day += timedelta(days=step)
            searched += 1
            if searched > _MAX_SEARCH_DAYS:
                raise ValueError("no working day found within ten years; check the closure dates")
            if self.is_working_day(day):
                remaining -= 1
        return day

    def day_n(self, day0: date, n: int) -> date:
        """Day N is the Nth working day after Day 0 (Day 0 itself when N is 0)."""
        if n < 0:
            raise ValueError("a day number cannot be negative")
        return self.add_working_days(day0, n)

    def working_days_between(self, start: date, end: date) -> int:
        """Count the working days in the half-open range (start, end]."""
        if end <= start:
            return 0
        return sum(
            1 for offset in range(1, (end - start).days + 1)
            if self.is_working_day(start + timedelta(days=offset))
        )

    def day_number(self, day0: date, day: date) -> int | None:
        """Return N when the date is Day N of a case that started on day0, else None."""
        if day == day0:
            return 0
        if day < day0 or not self.is_working_day(day):
            return None
        return self.working_days_between(day0, day)

    def at(self, day: date, clock: time | None = None) -> datetime:
        """Return the UTC instant of a London wall-clock time on a date (default: closing time).

        A time that does not exist (the hour lost when BST starts) moves forward to the
        first instant that does; an ambiguous one (the hour repeated in October) takes the
        earlier, BST, reading, which is the stricter deadline.
        """
        # Fold 0 (PEP 495) reads a gap time with the offset before the change, which lands
        # after the gap, and an ambiguous time as its first (BST) occurrence.
        wall = datetime.combine(day, clock or self.hours.end, tzinfo=self.zone)
        return wall.astimezone(UTC)

    def next_working_moment(self, instant: datetime) -> datetime:
        """Return the instant itself if inside working hours, else the next opening time."""
        local = as_aware(instant).astimezone(self.zone)
        day = local.date()
        if self.is_working_day(day) and self.hours.start <= local.time() < self.hours.end:
            return as_aware(instant).astimezone(UTC)
        if not self.is_working_day(day) or local.time() >= self.hours.end:
            day = self.add_working_days(day, 1)
        return self.at(day, self.hours.start)


def as_aware(instant: datetime) -> datetime:
    """Refuse naive datetimes: every instant in the bot carries its offset."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()} has no time zone")
    return instant


def short_time(instant: datetime, calendar: WorkingCalendar) -> str:
    """Show an instant briefly in the calendar's (London) time: "16:00 Wed 13 Jan"."""
    local = as_aware(instant).astimezone(calendar.zone)
    return f"{local:%H:%M} {local:%a} {local.day} {local:%b}"


def london_time(instant: datetime, zone: ZoneInfo = LONDON) -> str:
    """Show an instant to people in words, in London time: "16:00 on Wednesday 13 January 2027".

    The one way an instant is written for a person (email, chat, the command line): never ISO
    8601 or UTC.
    """
    local = as_aware(instant).astimezone(zone)
    return f"{local:%H:%M} on {local:%A} {local.day} {local:%B %Y}"


# The years an instant given by a person may fall in.
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def parse_instant(text: str, zone: ZoneInfo = LONDON) -> datetime:
    """Parse an ISO 8601 date or date-time; without an offset it is London local time."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 date or date-time") from exc
    # A year far from now is a typing slip (0027 for 2027); 9999 would also overflow the
    # working-day arithmetic, so both are refused here with the reason.
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise ValueError(f"{text.strip()!r} is not between the years {EARLIEST_YEAR} and "
                         f"{LATEST_YEAR}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed

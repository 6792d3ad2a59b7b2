"""Dates as agencies write them: UK order, partial dates and ranges, kept as written."""

from __future__ import annotations

import calendar as gregorian
import re
from dataclasses import dataclass
from datetime import date, datetime, time

# How exact a written date is: a day, a month, a year, or a range between two of them.
DAY, MONTH, YEAR, RANGE = "day", "month", "year", "range"

MONTHS = {name.lower(): number for number, name in enumerate(gregorian.month_name) if name}
MONTHS.update({name.lower(): number for number, name in enumerate(gregorian.month_abbr) if name})
MONTHS["sept"] = 9
MONTH_WORD = "|".join(sorted(MONTHS, key=len, reverse=True))
# 03/04/2026, 3.4.26, 03-04-2026: day first, as in every UK form.
NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::\d{2})?)?$")
# 3 April 2026, 3rd Apr 2026, April 3 2026.
DAY_MONTH_YEAR = re.compile(rf"^(\d{{1,2}})(?:st|nd|rd|th)?\s+({MONTH_WORD})\.?,?\s+(\d{{4}})$")
MONTH_DAY_YEAR = re.compile(rf"^({MONTH_WORD})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})$")
MONTH_YEAR = re.compile(rf"^({MONTH_WORD})\.?,?\s+(\d{{4}})$")
NUMERIC_MONTH_YEAR = re.compile(r"^(\d{1,2})/(\d{4})$")
YEAR_ONLY = re.compile(r"^(\d{4})$")
# Two dates joined by "to", "until", "-" or "–" (spaces around a dash, so 03-04-2026 stays one).
RANGE_JOIN = re.compile(r"\s+(?:to|until|till|-|–|—)\s+|\s*(?:–|—)\s*", re.IGNORECASE)
CLOCK = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?$", re.IGNORECASE)
HOURS_MINUTES = re.compile(r"^(\d{2})(\d{2})(?:\s*(?:hrs|hours|h))?$", re.IGNORECASE)
# The years a chronology may plausibly mention; anything outside is not taken as a date.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2100


@dataclass(frozen=True)
class WrittenDate:
    """A date as written, with the first day it can mean, the last, and how exact it is."""

    text: str
    start: date
    end: date
    precision: str

    @property
    def sort_key(self) -> str:
        """Return a value that sorts written dates in time order (the earliest day first)."""
        return f"{self.start.isoformat()}~{self.end.isoformat()}"

    def overlaps(self, other: WrittenDate) -> bool:
        """Say whether two written dates can mean the same day."""
        return self.start <= other.end and other.start <= self.end


def read_date(value: object) -> WrittenDate | None:
    """Read a cell or field as a written date; None when it is not one."""
    if isinstance(value, datetime):
        return WrittenDate(f"{value.day:02d}/{value.month:02d}/{value.year}", value.date(),
                           value.date(), DAY)
    if isinstance(value, date):
        return WrittenDate(f"{value.day:02d}/{value.month:02d}/{value.year}", value, value, DAY)
    text = " ".join(str(value or "").split())
    if not text or len(text) > 60:
        return None
    single = _single(text)
    if single is not None:
        return single
    parts = RANGE_JOIN.split(text)
    if len(parts) == 2:
        first, last = _single(parts[0].strip()), _single(parts[1].strip())
        if first is None and last is not None:
            # "March - April 2025": the first part borrows the second's year.
            first = _single(f"{parts[0].strip()} {last.start.year}")
        if first is not None and last is not None and first.start <= last.end:
            return WrittenDate(text, first.start, last.end, RANGE)
    return None


def read_time(value: object) -> time | None:
    """Read a time of day written as 14:30, 2.30pm, 1430 or 9am; None when it is not one."""
    if isinstance(value, time):
        return value
    if isinstance(value, datetime):
        return value.time()
    text = str(value or "").strip().lower()
    if not text:
        return None
    found = CLOCK.match(text)
    if found and (found.group(2) or found.group(3)):
        hour, minute = int(found.group(1)), int(found.group(2) or 0)
        suffix = (found.group(3) or "").replace(".", "")
        if suffix == "pm" and hour < 12:
            hour += 12
        if suffix == "am" and hour == 12:
            hour = 0
        return time(hour, minute) if hour < 24 and minute < 60 else None
    found = HOURS_MINUTES.match(text)
    if found and int(found.group(1)) < 24 and int(found.group(2)) < 60:
        return time(int(found.group(1)), int(found.group(2)))
    return None


def _single(text: str) -> WrittenDate | None:
    lowered = text.lower().strip().rstrip(".")
    lowered = re.sub(r"\s+", " ", lowered)
    try:
        return _exact_day(text, lowered) or _month_or_year(text, lowered)
    except ValueError:
        # A day that does not exist (31/02/2026) is not a date.
        return None


def _exact_day(text: str, lowered: str) -> WrittenDate | None:
    day = month = year = None
    if found := NUMERIC.match(lowered):
        day, month, year = int(found.group(1)), int(found.group(2)), int(found.group(3))
        if year < 100:
            year += 2000 if year < 70 else 1900
    elif found := ISO.match(lowered):
        year, month, day = int(found.group(1)), int(found.group(2)), int(found.group(3))
    elif found := DAY_MONTH_YEAR.match(lowered):
        day, month, year = int(found.group(1)), MONTHS[found.group(2)], int(found.group(3))
    elif found := MONTH_DAY_YEAR.match(lowered):
        month, day, year = MONTHS[found.group(1)], int(found.group(2)), int(found.group(3))
    if year is None or month is None or day is None or not _plausible(year):
        return None
    exact = date(year, month, day)
    return WrittenDate(text, exact, exact, DAY)


def _month_or_year(text: str, lowered: str) -> WrittenDate | None:
    month = year = None
    if found := MONTH_YEAR.match(lowered):
        month, year = MONTHS[found.group(1)], int(found.group(2))
    elif found := NUMERIC_MONTH_YEAR.match(lowered):
        month, year = int(found.group(1)), int(found.group(2))
    elif found := YEAR_ONLY.match(lowered):
        year = int(found.group(1))
        if not _plausible(year):
            return None
        return WrittenDate(text, date(year, 1, 1), date(year, 12, 31), YEAR)
    if year is None or month is None or not _plausible(year) or not 1 <= month <= 12:
        return None
    last = gregorian.monthrange(year, month)[1]
    return WrittenDate(text, date(year, month, 1), date(year, month, last), MONTH)


def _plausible(year: int) -> bool:
    return EARLIEST_YEAR <= year <= LATEST_YEAR


def in_words(day: date | None) -> str:
    """Write a date the way people read it: "Tuesday 14 July 2026" ("" for none)."""
    return f"{day:%A} {day.day} {day:%B %Y}" if day else ""

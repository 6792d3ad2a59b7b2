"""A chronology row as read from a return, and the header row that says which column is which."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

from bot.papers.dates import WrittenDate, read_date, read_time

# The chronology's fields and the column headings that name them, as agencies write them.
HEADINGS: dict[str, tuple[str, ...]] = {
    "date": ("date", "date and time", "date time", "date of event", "event date", "when",
             "date of contact"),
    "time": ("time", "time of event", "time if known"),
    "agency": ("agency", "organisation", "organization", "service", "agency organisation"),
    "event": ("event", "events", "description", "details", "what happened", "event contact",
              "summary", "summary of event", "entry", "contact", "details of event",
              "event details", "information", "event description"),
    "source": ("source", "record", "source of information", "recorded in", "system",
               "reference", "source record", "record reference", "where recorded"),
}
# A header row must name at least these fields to be taken as one.
NEEDED = ("date", "event")
# A cell longer than this is cut (a pasted record is not a chronology entry).
MAX_CELL = 4000
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ChronologyRow:
    """One event an agency recorded: when, what, from which record, and where we read it."""

    agency: str
    when: WrittenDate | None
    time: time | None
    event: str
    source: str
    # Where the row was read: the file and its row ("chronology.xlsx, row 7").
    origin: str
    # The date as written when it could not be read as one (the row is kept, undated).
    written_date: str = ""

    @property
    def sort_key(self) -> tuple[str, str, str]:
        """Sort by day, then time (a row with no time first), then agency."""
        day = self.when.sort_key if self.when else "9999"
        clock = self.time.isoformat() if self.time else ""
        return day, clock, self.agency

    @property
    def date_text(self) -> str:
        """Return the date as the agency wrote it."""
        return self.when.text if self.when else self.written_date


def normal_heading(text: object) -> str:
    """Lower-case a heading and keep only its words ("Event / Contact:" is "event contact")."""
    return " ".join(re.findall(r"[a-z]+", str(text or "").lower()))


def field_of(heading: object) -> str | None:
    """Return the chronology field a column heading or label names, None for none."""
    text = normal_heading(heading)
    if not text:
        return None
    for field, names in HEADINGS.items():
        if text in names or any(text.startswith(name + " ") for name in names if len(name) > 3):
            return field
    return None


def header_columns(cells: Sequence[object]) -> dict[str, int] | None:
    """Return each field's column when the cells are a chronology header row, else None."""
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        field = field_of(cell)
        if field is not None and field not in columns:
            columns[field] = index
    if all(field in columns for field in NEEDED):
        return columns
    return None


def row_from_cells(
    cells: Sequence[object], columns: dict[str, int], agency: str, origin: str, source: str
) -> ChronologyRow | str | None:
    """Make a row of the cells under a header; a problem in words, or None for an empty row."""
    def cell(field: str) -> object:
        index = columns.get(field)
        if index is None or index >= len(cells):
            return None
        return cells[index]

    raw_date, raw_event = cell("date"), cell("event")
    event = _text(raw_event)
    if not event and not _text(raw_date):
        return None
    if isinstance(raw_event, str) and raw_event.startswith("="):
        return f"{origin}: the event is a formula, which was not worked out"
    if isinstance(raw_date, str) and raw_date.startswith("="):
        return f"{origin}: the date is a formula, which was not worked out"
    when = read_date(raw_date)
    clock = read_time(cell("time"))
    if when is None:
        when, clock = _date_and_time(_text(raw_date), clock)
    if when is not None and clock is None and isinstance(raw_date, datetime):
        clock = raw_date.time() if (raw_date.hour, raw_date.minute) != (0, 0) else None
    written_source = _text(cell("source"))
    return ChronologyRow(agency=agency, when=when, time=clock, event=event or "(no event given)",
                         source=written_source or source, origin=origin,
                         written_date="" if when else _text(raw_date))


def _date_and_time(text: str, clock: time | None) -> tuple[WrittenDate | None, time | None]:
    # "03/04/2026 14:30" or "03/04/2026 at 2pm": a date with its time in one cell.
    found = re.match(r"^(.*?\d)[ ,]+(?:at\s+)?(\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm)?)$", text,
                     re.IGNORECASE)
    if not found:
        return None, clock
    when = read_date(found.group(1))
    return (when, clock or read_time(found.group(2))) if when else (None, clock)


def _text(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime") and not isinstance(value, str):
        return str(value)
    # Control characters are not allowed in the Word and Excel files the rows go into.
    return CONTROL.sub("", " ".join(str(value).split()))[:MAX_CELL]

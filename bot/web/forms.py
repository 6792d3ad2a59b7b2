"""The action forms' fields: how each is shown, read back and checked, with errors in words."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from starlette.datastructures import FormData, UploadFile

from bot.config import Config

# What a field is: a line of text, an email address, a paragraph, a date (day, month, year),
# a time, one of a list (select or radios), a yes/no box, or a file.
KINDS = frozenset({"text", "email", "textarea", "date", "time", "select", "radios",
                   "checkbox", "file"})
EMAIL = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
CLOCK = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*$")


@dataclass(frozen=True)
class Field:
    """One question on a form."""

    name: str
    label: str
    kind: str = "text"
    hint: str = ""
    required: bool = True
    # The choices of a select or radios, as (value, label); filled in per case when shown.
    options: tuple[tuple[str, str], ...] = ()
    # Where the error summary links to: the first box of a date, the first radio.
    anchor_suffix: str = ""


@dataclass
class FilledForm:
    """What a person entered: the values read so far and an error for each field that is wrong."""

    values: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


async def read_form(form: FormData, fields: tuple[Field, ...], config: Config) -> FilledForm:
    """Read and check each field; the value of a date is a London date, of a time a time."""
    filled = FilledForm()
    for question in fields:
        if question.kind == "date":
            parts = [str(form.get(f"{question.name}-{part}", "")).strip()
                     for part in ("day", "month", "year")]
            filled.raw.update({f"{question.name}-{p}": v for p, v in
                               zip(("day", "month", "year"), parts, strict=True)})
            _date(filled, question, parts)
            continue
        if question.kind == "file":
            upload = form.get(question.name)
            if isinstance(upload, UploadFile) and upload.filename:
                filled.values[question.name] = (upload.filename, await upload.read())
            elif question.required:
                filled.errors[question.name] = f"Choose the {question.label.lower()}"
            continue
        text = str(form.get(question.name, "")).strip()
        filled.raw[question.name] = text
        if question.kind == "checkbox":
            filled.values[question.name] = bool(text)
        elif not text:
            if question.required:
                verb = "Choose" if question.kind in {"select", "radios"} else "Enter"
                filled.errors[question.name] = f"{verb} {_lower(question.label)}"
            else:
                filled.values[question.name] = None
        elif question.kind == "email" and not EMAIL.match(text):
            filled.errors[question.name] = (f"Enter {_lower(question.label)} like "
                                            "name@agency.example")
        elif question.kind == "time":
            _time(filled, question, text)
        elif question.options and text not in {value for value, _ in question.options}:
            filled.errors[question.name] = f"Choose {_lower(question.label)} from the list"
        else:
            filled.values[question.name] = text
    return filled


def at(config: Config, day: date, clock: time | None) -> datetime:
    """Return the instant of a London date and time (the end of the working day by default)."""
    return config.calendar.at(day, clock or config.settings.partnership.working_hours_end)


def _date(filled: FilledForm, question: Field, parts: list[str]) -> None:
    if not any(parts):
        if question.required:
            filled.errors[question.name] = f"Enter {_lower(question.label)}"
        else:
            filled.values[question.name] = None
        return
    try:
        day, month, year = (int(part) for part in parts)
        filled.values[question.name] = date(year if year > 99 else 2000 + year, month, day)
    except ValueError:
        filled.errors[question.name] = (f"{question.label} must be a real date, for example"
                                        " 8 1 2027")


def _time(filled: FilledForm, question: Field, text: str) -> None:
    found = CLOCK.match(text)
    try:
        if found is None:
            raise ValueError(text)
        filled.values[question.name] = time(int(found.group(1)), int(found.group(2)))
    except ValueError:
        filled.errors[question.name] = (f"{question.label} must be a time like 16:00")


def _lower(label: str) -> str:
    return label[:1].lower() + label[1:]

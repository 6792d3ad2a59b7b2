"""The /rapidreview chat command: its words read into the commands, their results into replies."""

from __future__ import annotations

from datetime import date, datetime

from bot.commands.agencies import AddAgency, ExtendDeadline, add_agency, extend_request
from bot.commands.base import CommandError, Context, NotAllowed
from bot.commands.cases import CaseStanding, case_status
from bot.config import Config
from bot.process.working_days import WorkingCalendar, parse_instant, short_time

USAGE = (
    "Usage: /rapidreview status [CASE] | /rapidreview extend CASE AGENCY DATE"
    " | /rapidreview add-agency CASE AGENCY"
)


def run_command(context: Context, text: str) -> str:
    """Run one /rapidreview command in the caller's transaction and return the reply."""
    words = text.split()
    if not words or words[0] == "help":
        return USAGE
    verb, arguments = words[0].lower(), words[1:]
    calendar = context.config.calendar
    if verb == "status" and len(arguments) <= 1:
        try:
            return "\n".join(status_lines(context, *arguments))
        except CommandError as exc:
            return str(exc)
    try:
        if verb == "extend" and len(arguments) == 3:
            due = parse_due(context.config, arguments[2])
            extended = extend_request(context, ExtendDeadline(arguments[0], arguments[1], due))
            return (f"{extended.case_reference}: {arguments[1]} now has until"
                    f" {short_time(due, calendar)}.")
        if verb == "add-agency" and len(arguments) == 2:
            added = add_agency(context, AddAgency(arguments[0], arguments[1]))
            by = f" by {short_time(added.due_at, calendar)}" if added.due_at else ""
            return f"{added.case_reference}: {arguments[1]} has been asked for information{by}."
    except NotAllowed as exc:
        return str(exc)
    except CommandError as exc:
        return f"Not done: {exc}"
    return USAGE


def parse_due(config: Config, text: str) -> datetime:
    """Read a new deadline: a date means the end of that working day, else an ISO instant."""
    try:
        return config.calendar.at(date.fromisoformat(text))
    except ValueError:
        pass
    try:
        return parse_instant(text)
    except ValueError:
        raise CommandError(
            f"{text!r} is not a date like 2027-01-08 or 2027-01-08T12:00") from None


def status_lines(context: Context, reference: str | None = None) -> list[str]:
    """Say where each open case (or the named one) is: its day and what is outstanding."""
    statuses = case_status(context, reference)
    if not statuses:
        return ["No open cases."]
    return [_status_text(status, context.config.calendar) for status in statuses]


def _status_text(status: CaseStanding, calendar: WorkingCalendar) -> str:
    lines = [f"{status.reference}: day {status.day} of {status.last_day or '-'},"
             f" {status.status.replace('_', ' ')}"]
    for step in status.outstanding:
        late = " (OVERDUE)" if step.overdue else ""
        lines.append(f"  - {step.label}: due {short_time(step.due_at, calendar)}{late}")
    lines.extend(f"  - {ballot.title}: {ballot.progress}" for ballot in status.ballots)
    if status.waiting_for:
        lines.append("  - waiting for returns from: " + ", ".join(status.waiting_for))
    return "\n".join(lines)

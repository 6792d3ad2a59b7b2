"""The /rapidreview chat command: status for anyone, extend and add-agency for the manager."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, col, select

from bot.agencies import requests as agency_requests
from bot.ballots.lifecycle import ballot_view
from bot.cases.lifecycle import CaseNotFound, find_case
from bot.cases.states import OPEN_STATUSES
from bot.config import Config
from bot.kernel import audit
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import parse_instant, short_time
from bot.store.models import AgencyRequest, Ballot, Case, Milestone

USAGE = (
    "Usage: /rapidreview status [CASE] | /rapidreview extend CASE AGENCY DATE"
    " | /rapidreview add-agency CASE AGENCY"
)
# How many outstanding steps the status of one case lists.
OUTSTANDING_SHOWN = 3


def run_command(session: Session, config: Config, user_id: str, text: str, now: datetime) -> str:
    """Run one /rapidreview command in the caller's transaction and return the reply."""
    words = text.split()
    if not words or words[0] == "help":
        return USAGE
    verb, arguments = words[0].lower(), words[1:]
    partnership = config.settings.partnership.key
    if verb == "status" and len(arguments) <= 1:
        try:
            return "\n".join(status_lines(session, config, now, *arguments))
        except CaseNotFound as exc:
            return str(exc)
    if verb not in ("extend", "add-agency"):
        return USAGE
    if user_id != config.settings.business_manager.slack_user_id:
        audit.record(session, partnership, f"slack:{user_id}", "chat_command_refused", now,
                     command=verb)
        return "Sorry, only the partnership's business manager can change agency requests."
    actor = f"slack:{user_id}"
    try:
        if verb == "extend" and len(arguments) == 3:
            case = find_case(session, arguments[0])
            due = parse_due(config, arguments[2])
            agency_requests.extend_request(session, config, case, arguments[1], due, now, actor)
            until = short_time(due, config.calendar)
            return f"{case.reference}: {arguments[1]} now has until {until}."
        if verb == "add-agency" and len(arguments) == 2:
            case = find_case(session, arguments[0])
            request = agency_requests.add_agency(session, config, case, arguments[1], now, actor)
            by = f" by {short_time(request.due_at, config.calendar)}" if request.due_at else ""
            return f"{case.reference}: {arguments[1]} has been asked for information{by}."
    except (CaseNotFound, ValueError) as exc:
        return f"Not done: {exc.args[0] if exc.args else exc}"
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
        raise ValueError(f"{text!r} is not a date like 2027-01-08 or 2027-01-08T12:00") from None


def status_lines(
    session: Session, config: Config, now: datetime, reference: str | None = None
) -> list[str]:
    """Say where each open case (or the named one) is: its day and what is outstanding."""
    if reference is not None:
        cases = [find_case(session, reference)]
    else:
        cases = list(session.exec(
            select(Case).where(col(Case.status).in_(sorted(OPEN_STATUSES)))
            .order_by(col(Case.id))
        ).all())
    if not cases:
        return ["No open cases."]
    return [_case_status(session, config, case, now) for case in cases]


def _case_status(session: Session, config: Config, case: Case, now: datetime) -> str:
    calendar = config.calendar
    day = calendar.working_days_between(case.day0, calendar.local_date(now))
    last_day = config.preset.milestone(SUBMISSION_KEY).day or "-"
    lines = [f"{case.reference}: day {day} of {last_day}, {case.status.replace('_', ' ')}"]
    outstanding = session.exec(
        select(Milestone).where(Milestone.case_id == case.id,
                                col(Milestone.status).in_(["pending", "overdue"]))
        .order_by(col(Milestone.due_at)).limit(OUTSTANDING_SHOWN)
    ).all()
    for milestone in outstanding:
        late = " (OVERDUE)" if milestone.status == "overdue" else ""
        due = short_time(milestone.due_at, config.calendar)
        lines.append(f"  - {milestone.label}: due {due}{late}")
    for ballot in session.exec(select(Ballot).where(Ballot.case_id == case.id,
                                                    Ballot.status == "open")):
        view = ballot_view(session, config, case, ballot)
        lines.append(f"  - {view.title.split(': ', 1)[-1]}: {view.progress}")
    names = {agency.key: agency.name for agency in config.settings.agencies}
    waiting = [names.get(request.agency_key, request.agency_key) for request in session.exec(
        select(AgencyRequest).where(AgencyRequest.case_id == case.id)
    ) if request.status not in agency_requests.CLOSED_STATUSES]
    if waiting:
        lines.append("  - waiting for returns from: " + ", ".join(waiting))
    return "\n".join(lines)

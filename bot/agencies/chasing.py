"""Chasing an agency request: reminders before the deadline, escalations after it, their plan."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from bot.config import Config
from bot.kernel.actions import ActionArguments, ActionPlan, plan_action, plan_actions
from bot.process.timeline import reminder_at
from bot.store.models import AgencyRequest, Case, OutboxMessage, PlannedAction
from bot.store.statuses import AgencyRequestKind, PlannedActionStatus

# The end of an agency request's own key: "request" the first time, "round<n>:request" after.
ASKING = re.compile(r"(round\d+:)?request")


class AgencyStep(ActionArguments):
    """The agency a reminder or escalation chases, and which escalation it is (0 for a reminder).

    `request` is what the agency was asked for: its information, or a follow-up (lesson_log).
    """

    agency: str
    escalation: int = 0
    request: str = AgencyRequestKind.INFORMATION


def chase_prefix(case: Case, agency_key: str, kind: str = AgencyRequestKind.INFORMATION) -> str:
    """Return the key prefix of everything sent or planned for one request of an agency."""
    what = "agency" if kind == AgencyRequestKind.INFORMATION else kind
    return f"{case.reference}:{what}:{agency_key}"


def request_prefix(
    session: Session, case: Case, request: AgencyRequest, asking: int | None = None
) -> str:
    """Return what the keys of one asking of an agency start with (its messages, its chasing).

    asking is the round (default: the current one). The first asking keeps the plain prefix;
    an agency withdrawn and asked again is a new round with keys of its own, so its old,
    cancelled reminders and sent request are not found again.
    """
    plain = chase_prefix(case, request.agency_key, request.kind)
    current = asking or request_round(session, case, request.agency_key, request.kind)
    return plain if current <= 1 else f"{plain}:round{current}"


def request_round(
    session: Session, case: Case, agency_key: str, kind: str = AgencyRequestKind.INFORMATION
) -> int:
    """Return how many times the agency has been asked on the case (the current round)."""
    plain = f"{chase_prefix(case, agency_key, kind)}:"
    keys = session.exec(select(OutboxMessage.idempotency_key).where(
        OutboxMessage.case_id == case.id,
        col(OutboxMessage.idempotency_key).startswith(plain, autoescape=True),
    )).all()
    return max(1, sum(1 for key in keys if ASKING.fullmatch(key.removeprefix(plain))))


def plan_chasing(
    session: Session, config: Config, case: Case, request: AgencyRequest, now: datetime
) -> None:
    """Plan a request's reminders before its deadline and its first escalation after it."""
    assert request.due_at is not None
    calendar = config.calendar
    rules = config.preset.agency_requests
    stamp = f"{request.due_at:%Y%m%dT%H%M}"
    prefix = request_prefix(session, case, request)
    step = AgencyStep(agency=request.agency_key, request=request.kind)
    plans = []
    for number, reminder in enumerate(rules.reminders):
        at = reminder_at(calendar, request.due_at, reminder)
        # A reminder whose moment has passed when the request is made would only be noise.
        if at > now:
            final = number == len(rules.reminders) - 1
            plans.append(ActionPlan(
                case.partnership, case.id, f"{prefix}:remind:{number}:{stamp}",
                "agency_final_reminder" if final else "agency_reminder", step, at))
    plans.append(ActionPlan(
        case.partnership, case.id, f"{prefix}:escalate:{stamp}:1", "agency_escalation",
        AgencyStep(agency=request.agency_key, escalation=1, request=request.kind),
        escalation_at(config, request.due_at, rules.escalate_after_working_days)))
    plan_actions(session, plans)


def escalation_at(config: Config, after: datetime, working_days: int) -> datetime:
    """Return the opening time of the working day `working_days` after an instant's date."""
    calendar = config.calendar
    day = calendar.add_working_days(calendar.local_date(after), max(1, working_days))
    return calendar.at(day, calendar.hours.start)


def plan_next_escalation(
    session: Session, config: Config, case: Case, request: AgencyRequest, after: datetime,
    number: int,
) -> None:
    """Plan the next daily escalation of a request still open after its deadline."""
    assert request.due_at is not None
    key = f"{request_prefix(session, case, request)}:escalate:{request.due_at:%Y%m%dT%H%M}"
    plan_action(session, partnership=case.partnership, case_id=case.id, key=f"{key}:{number}",
                action_name="agency_escalation",
                arguments=AgencyStep(agency=request.agency_key, escalation=number,
                                     request=request.kind),
                due_at=escalation_at(config, after, 1))


def missed_day_moved_to(config: Config, due_at: datetime, now: datetime) -> datetime | None:
    """Return when a chase whose working day passed (the bot was down) goes instead; None: now.

    A chase goes only on the working day it was planned for; one caught up later, at a
    weekend, on a bank holiday or closure or on a later day, goes on the next working day at
    its own time, so no agency is chased on a day off or twice in one working day.
    """
    calendar = config.calendar
    today = calendar.local_date(now)
    if today == calendar.local_date(due_at) and calendar.is_working_day(today):
        return None
    clock = due_at.astimezone(calendar.zone).time()
    if calendar.is_working_day(today) and now < calendar.at(today, clock):
        return calendar.at(today, clock)
    return calendar.at(calendar.add_working_days(today, 1), clock)


def move_chase(session: Session, planned: PlannedAction, step: AgencyStep,
               due_at: datetime) -> None:
    """Plan a chase missed on its working day again for due_at, under a key of that day."""
    plan_action(session, partnership=planned.partnership, case_id=planned.case_id,
                key=f"{planned.key}:moved:{due_at:%Y%m%d}", action_name=planned.action,
                arguments=step, due_at=due_at)


def cancel_chasing(
    session: Session, case: Case, agency_key: str, kind: str = AgencyRequestKind.INFORMATION
) -> None:
    """Cancel whatever chasing of an agency's request is still pending."""
    prefix = f"{chase_prefix(case, agency_key, kind)}:"
    pending = session.exec(select(PlannedAction).where(
        PlannedAction.case_id == case.id, PlannedAction.status == PlannedActionStatus.PENDING,
        col(PlannedAction.key).startswith(prefix),
    ))
    for planned in pending:
        planned.status = PlannedActionStatus.CANCELLED
        session.add(planned)

"""Chasing agency requests: reminders before the deadline, escalation after it, daily."""

from __future__ import annotations

from sqlmodel import select

from bot.agencies.chasing import (
    AgencyStep,
    missed_day_moved_to,
    move_chase,
    plan_next_escalation,
    request_prefix,
)
from bot.agencies.contacts import tell_agency, tell_escalation
from bot.agencies.follow_up import after_submission
from bot.agencies.requests import CLOSED_STATUSES, request_agencies
from bot.kernel.actions import ActionContext, action
from bot.kernel.events import Event, subscribe
from bot.store.models import AgencyRequest, Case, PlannedAction
from bot.store.statuses import AgencyRequestKind, CaseStatus


def purpose_of(step: AgencyStep, purpose: str) -> str:
    """Name a chasing email's template: a follow-up's are its own (lesson_log_reminder)."""
    if step.request == AgencyRequestKind.INFORMATION:
        return purpose
    return f"{step.request}_{purpose.removeprefix('agency_').removeprefix('final_')}"


@subscribe("case_decided")
def ask_agencies_when_a_rapid_review_is_decided(event: Event) -> None:
    """Send the information requests as soon as the partners decide on a Rapid Review."""
    if event.payload.get("decision") == "rapid_review":
        request_agencies(event.session, event.config, event.case, event.now, actor="bot")


@subscribe("case_submitted")
def stop_chasing_and_ask_follow_ups(event: Event) -> None:
    """Once the report has gone: no more chasing of returns, and the preset's follow-ups."""
    after_submission(event.session, event.config, event.case, event.now)


@action("agency_reminder", AgencyStep)
def remind(context: ActionContext, planned: PlannedAction, step: AgencyStep) -> None:
    """Remind an agency whose return is still outstanding."""
    _chase(context, planned, step, "agency_reminder")


@action("agency_final_reminder", AgencyStep)
def final_reminder(context: ActionContext, planned: PlannedAction, step: AgencyStep) -> None:
    """On the due day, the last reminder before escalation."""
    _chase(context, planned, step, "agency_final_reminder")


@action("agency_escalation", AgencyStep)
def escalate(context: ActionContext, planned: PlannedAction, step: AgencyStep) -> None:
    """After a missed deadline: the senior officer and the business manager, then daily."""
    found = _request(context, planned, step)
    if found is None:
        return
    case, request = found
    moved_to = missed_day_moved_to(context.config, planned.due_at, context.now)
    if moved_to is not None:
        move_chase(context.session, planned, step, moved_to)
        return
    tell_escalation(context.session, context.config, case, request, context.now,
                    step.escalation, purpose=purpose_of(step, "agency_escalation"))
    plan_next_escalation(context.session, context.config, case, request, planned.due_at,
                         step.escalation + 1)


def _chase(
    context: ActionContext, planned: PlannedAction, step: AgencyStep, purpose: str
) -> None:
    found = _request(context, planned, step)
    if found is None:
        return
    case, request = found
    moved_to = missed_day_moved_to(context.config, planned.due_at, context.now)
    if moved_to is not None:
        # A reminder that would now come after the deadline is left to the escalation.
        if request.due_at is not None and moved_to < request.due_at:
            move_chase(context.session, planned, step, moved_to)
        return
    # The outbox key is the planned action's key, so each reminder is sent once.
    suffix = planned.key.removeprefix(f"{request_prefix(context.session, case, request)}:")
    tell_agency(context.session, context.config, case, request, purpose_of(step, purpose),
                context.now, key_suffix=suffix)


def _request(
    context: ActionContext, planned: PlannedAction, step: AgencyStep
) -> tuple[Case, AgencyRequest] | None:
    case = context.session.get_one(Case, planned.case_id)
    request = context.session.exec(select(AgencyRequest).where(
        AgencyRequest.case_id == case.id, AgencyRequest.agency_key == step.agency,
        AgencyRequest.kind == step.request,
    )).first()
    if request is None or request.status in CLOSED_STATUSES or case.status == CaseStatus.CLOSED:
        return None
    return case, request

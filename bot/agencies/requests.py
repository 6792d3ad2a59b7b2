"""Information requests to agencies: asking, each agency's own clock, replies and changes."""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session, col, select

from bot.agencies.chasing import cancel_chasing, plan_chasing, request_round
from bot.agencies.contacts import tell_agency, tell_business_manager
from bot.agencies.directory import agency_for_sender, find_agency
from bot.agencies.meeting import cancel_meeting
from bot.cases.lifecycle import mark_milestone_done
from bot.cases.states import TRANSITIONS, transition
from bot.config import Config
from bot.kernel import audit
from bot.process.timeline import plan
from bot.process.working_days import as_aware
from bot.store.models import AgencyRequest, Case, Milestone
from bot.store.statuses import AgencyRequestKind, AgencyRequestStatus, CaseStatus

REPLY_KINDS = frozenset({"return", "no_involvement", "extension_request", "question"})


CONTACT_PROBLEMS = frozenset({"bounced", "out_of_office"})


# A request in one of these statuses is finished: no more reminders or escalations.
CLOSED_STATUSES = frozenset({
    AgencyRequestStatus.RETURNED, AgencyRequestStatus.NO_INVOLVEMENT, AgencyRequestStatus.WITHDRAWN,
    AgencyRequestStatus.NOT_RETURNED,
})


def agencies_to_ask(config: Config, case: Case) -> list[str]:
    """List the agencies named in the referral, then the always-ask list, once each."""
    named = json.loads(getattr(case, "named_agencies", None) or "[]")
    wanted = [*named, *(a.key for a in config.settings.agencies if a.always_ask)]
    configured = {a.key for a in config.settings.agencies}
    return list(dict.fromkeys(key for key in wanted if key in configured))


def request_agencies(
    session: Session, config: Config, case: Case, now: datetime, actor: str
) -> list[AgencyRequest]:
    """Ask every agency the case needs, on the case's returns deadline, and note it done."""
    milestone_keys = {m.key for m in config.preset.milestones}
    if "agency_requests" in milestone_keys:
        mark_milestone_done(session, config, case, "agency_requests", now, actor)
    requests = [
        _ask(session, config, case, key, now, actor, late=False)
        for key in agencies_to_ask(config, case)
        if _find(session, case, key) is None
    ]
    if CaseStatus.REQUESTS_SENT in TRANSITIONS[case.status]:
        transition(session, case, CaseStatus.REQUESTS_SENT, actor, now)
    return requests


def add_agency(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime, actor: str
) -> AgencyRequest:
    """Ask one more agency, on the preset's rule for an agency added late."""
    find_agency(session, config, agency_key)
    existing = _find(session, case, agency_key)
    if existing is not None and existing.status != AgencyRequestStatus.WITHDRAWN:
        raise ValueError(f"{agency_key} was already asked on {case.reference}")
    if existing is not None:
        session.delete(existing)
        session.flush()
    return _ask(session, config, case, agency_key, now, actor, late=True,
                asked_before=existing is not None)


def extend_request(
    session: Session, config: Config, case: Case, agency_key: str, new_due: datetime,
    now: datetime, actor: str,
) -> AgencyRequest:
    """Give an agency a new deadline: its reminders and escalations move with it."""
    request = _open_request(session, case, agency_key)
    new_due = as_aware(new_due)
    if new_due <= now:
        raise ValueError("the new deadline must be in the future")
    previous = request.due_at
    request.due_at = new_due
    session.add(request)
    cancel_chasing(session, case, agency_key)
    plan_chasing(session, config, case, request, now)
    audit.record(session, case.partnership, actor, "agency_request_extended", now, case.id,
                 agency=agency_key, previous=previous, due=new_due)
    tell_agency(session, config, case, request, "agency_extension", now,
                 key_suffix=f"extension:{new_due:%Y%m%dT%H%M}")
    return request


def withdraw_request(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime, actor: str
) -> AgencyRequest:
    """Stop asking an agency (asked by mistake, say); nothing more is sent to it."""
    request = _open_request(session, case, agency_key)
    _close(session, config, case, request, AgencyRequestStatus.WITHDRAWN, now, actor)
    return request


def mark_received(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime, actor: str,
    evidence: str,
) -> AgencyRequest:
    """Record a return that came another way (a secure portal, by hand), with its evidence."""
    request = _open_request(session, case, agency_key)
    _close(session, config, case, request, AgencyRequestStatus.RETURNED, now, actor,
           evidence=evidence)
    return request


def record_agency_reply(
    session: Session, config: Config, case: Case, agency_key: str, kind: str, at: datetime,
    actor: str, inbound_id: int | None = None,
) -> AgencyRequest | None:
    """Apply an agency's reply to its request; None when the case never asked that agency."""
    if kind not in REPLY_KINDS:
        raise ValueError(f"unknown reply kind {kind!r}")
    request = _current(session, case, agency_key)
    if request is None:
        return None
    request.reply_kind, request.replied_at = kind, at
    session.add(request)
    audit.record(session, case.partnership, actor, "agency_reply", at, case.id,
                 agency=agency_key, kind=kind, inbound_id=inbound_id, request=request.kind)
    if request.status in CLOSED_STATUSES:
        return request
    if kind in {"return", "no_involvement"}:
        status = (AgencyRequestStatus.RETURNED if kind == "return"
                  else AgencyRequestStatus.NO_INVOLVEMENT)
        _close(session, config, case, request, status, at, actor)
        tell_agency(session, config, case, request, "agency_receipt", at, key_suffix="receipt")
    else:
        tell_business_manager(session, config, case, request, kind, at, inbound_id)
    return request


def note_contact_problem(
    session: Session, config: Config, email: str, problem: str, at: datetime
) -> list[AgencyRequest]:
    """Chase an agency's open requests through someone else: its contact bounced or is away."""
    if problem not in CONTACT_PROBLEMS:
        raise ValueError(f"unknown contact problem {problem!r}")
    found = agency_for_sender(session, config, email)
    if found is None:
        return []
    requests = session.exec(select(AgencyRequest).where(
        AgencyRequest.agency_key == found.key, AgencyRequest.status == AgencyRequestStatus.OPEN,
    )).all()
    for request in requests:
        if request.contact_problem == problem:
            continue
        request.contact_problem = problem
        session.add(request)
        case = session.get_one(Case, request.case_id)
        audit.record(session, case.partnership, "bot", "agency_contact_problem", at, case.id,
                     agency=found.key, problem=problem)
        tell_agency(session, config, case, request, "agency_reminder", at,
                     key_suffix=f"alternate:{problem}")
    return list(requests)


def open_requests_for_agency(session: Session, agency_key: str) -> list[AgencyRequest]:
    """Every open request to an agency, across cases (for threading a reply to its case)."""
    return list(session.exec(select(AgencyRequest).where(
        AgencyRequest.agency_key == agency_key, AgencyRequest.status == AgencyRequestStatus.OPEN,
    )))


def ask_follow_up(
    session: Session, config: Config, case: Case, agency_key: str, kind: str, due_at: datetime,
    now: datetime, actor: str,
) -> AgencyRequest:
    """Ask an agency for a follow-up of the case (a lesson log), chased like its return."""
    return _ask(session, config, case, agency_key, now, actor, late=False, kind=kind,
                due_at=due_at)


def _find(
    session: Session, case: Case, agency_key: str, kind: str = AgencyRequestKind.INFORMATION
) -> AgencyRequest | None:
    return session.exec(select(AgencyRequest).where(
        AgencyRequest.case_id == case.id, AgencyRequest.agency_key == agency_key,
        AgencyRequest.kind == kind,
    )).first()


def _current(session: Session, case: Case, agency_key: str) -> AgencyRequest | None:
    """Return the agency's open request on the case (a follow-up, later), else its first."""
    still_open = session.exec(select(AgencyRequest).where(
        AgencyRequest.case_id == case.id, AgencyRequest.agency_key == agency_key,
        AgencyRequest.status == AgencyRequestStatus.OPEN,
    ).order_by(col(AgencyRequest.id).desc())).first()
    return still_open or _find(session, case, agency_key)


def _open_request(session: Session, case: Case, agency_key: str) -> AgencyRequest:
    request = _current(session, case, agency_key)
    if request is None:
        raise ValueError(f"{case.reference} has no request to {agency_key}")
    if request.status in CLOSED_STATUSES:
        raise ValueError(f"the request to {agency_key} on {case.reference} is {request.status}")
    return request


def _ask(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime, actor: str,
    late: bool, kind: str = AgencyRequestKind.INFORMATION, due_at: datetime | None = None,
    asked_before: bool = False,
) -> AgencyRequest:
    request = AgencyRequest(
        partnership=case.partnership, case_id=case.id or 0, agency_key=agency_key, kind=kind,
        status=AgencyRequestStatus.OPEN, asked_at=now,
        due_at=due_at or _due(session, config, case, now, late),
    )
    # An agency withdrawn and asked again is asked in a new round, with keys of its own.
    asking = request_round(session, case, agency_key, kind) + 1 if asked_before else 1
    session.add(request)
    session.flush()
    audit.record(session, case.partnership, actor, "agency_requested", now, case.id,
                 agency=agency_key, due=request.due_at, late=late, request=kind, round=asking)
    purpose = "agency_request" if kind == AgencyRequestKind.INFORMATION else f"{kind}_request"
    tell_agency(session, config, case, request, purpose, now, key_suffix="request",
                asking=asking)
    plan_chasing(session, config, case, request, now)
    return request


def _due(session: Session, config: Config, case: Case, asked_at: datetime, late: bool) -> datetime:
    calendar = config.calendar
    returns = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == "agency_returns_due",
    )).one()
    # At least one working day to answer, whoever is asked and whenever.
    floor = calendar.at(calendar.add_working_days(calendar.local_date(asked_at), 1))
    if not late or config.preset.agency_requests.late_agency_deadline == "case_deadline":
        return max(returns.due_at, floor)
    # An agency added late gets the same number of working days the plan gives everyone.
    case_plan = plan(config.preset, calendar, case.clock_start)
    gap = calendar.working_days_between(
        calendar.local_date(case_plan.due("agency_requests")),
        calendar.local_date(case_plan.due("agency_returns_due")),
    )
    cut_off = returns.due_at.astimezone(calendar.zone).time()
    return max(calendar.at(calendar.add_working_days(calendar.local_date(asked_at), gap),
                           cut_off), floor)


def _close(
    session: Session, config: Config, case: Case, request: AgencyRequest,
    status: AgencyRequestStatus,
    at: datetime, actor: str, evidence: str | None = None,
) -> None:
    request.status, request.closed_at = status, at
    session.add(request)
    cancel_chasing(session, case, request.agency_key, request.kind)
    audit.record(session, case.partnership, actor, "agency_request_closed", at, case.id,
                 agency=request.agency_key, status=status, evidence=evidence,
                 request=request.kind)
    # An agency withdrawn, or with no involvement, is taken off the meeting's invitation.
    if request.kind == AgencyRequestKind.INFORMATION and status in {
            AgencyRequestStatus.WITHDRAWN, AgencyRequestStatus.NO_INVOLVEMENT}:
        cancel_meeting(session, config, case, request.agency_key, at)
    statuses = set(session.exec(select(AgencyRequest.status).where(
        AgencyRequest.case_id == case.id, AgencyRequest.kind == request.kind)).all())
    information = request.kind == AgencyRequestKind.INFORMATION
    # The returns are in when none is still open and at least one agency answered: a last
    # request withdrawn completes them too, but withdrawing every request does not. A
    # follow-up (the lesson logs) completes its own milestone the same way.
    if AgencyRequestStatus.OPEN not in statuses and statuses - {AgencyRequestStatus.WITHDRAWN}:
        milestone = "agency_returns_due" if information else request.kind
        mark_milestone_done(session, config, case, milestone, at, actor)
        if information and CaseStatus.RETURNS_COLLECTED in TRANSITIONS[case.status]:
            transition(session, case, CaseStatus.RETURNS_COLLECTED, actor, at)

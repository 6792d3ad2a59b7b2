"""Information requests to agencies: asking, each agency's own clock, replies and changes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from bot.cases.lifecycle import mark_milestone_done, plan_action
from bot.cases.states import TRANSITIONS, transition
from bot.config import Agency, Config, Person
from bot.kernel import audit
from bot.kernel.outbox import Attachment
from bot.mail.notify import notify
from bot.process.timeline import plan, reminder_at
from bot.process.working_days import as_aware
from bot.store.models import AgencyRequest, Case, Milestone, PlannedAction

REPLY_KINDS = frozenset({"return", "no_involvement", "extension_request", "question"})
CONTACT_PROBLEMS = frozenset({"bounced", "out_of_office"})
# A request in one of these statuses is finished: no more reminders or escalations.
CLOSED_STATUSES = frozenset({"returned", "no_involvement", "withdrawn"})


def agency(config: Config, agency_key: str) -> Agency:
    """Return the configured agency with that key, or raise ValueError naming the choices."""
    for candidate in config.settings.agencies:
        if candidate.key == agency_key:
            return candidate
    known = ", ".join(a.key for a in config.settings.agencies)
    raise ValueError(f"no agency {agency_key!r} is configured (known: {known})")


def agency_for_sender(config: Config, email: str) -> Agency | None:
    """Find the agency a sender belongs to: a named contact first, then a configured domain."""
    address = email.strip().lower()
    for candidate in config.settings.agencies:
        people = [*candidate.contacts, candidate.escalation, candidate.alternate]
        if any(person and person.email.lower() == address for person in people):
            return candidate
    domain = address.rpartition("@")[2]
    for candidate in config.settings.agencies:
        if any(domain == known or domain.endswith("." + known) for known in candidate.domains):
            return candidate
    return None


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
    if "requests_sent" in TRANSITIONS[case.status]:
        transition(session, case, "requests_sent", actor, now)
    return requests


def add_agency(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime, actor: str
) -> AgencyRequest:
    """Ask one more agency, on the preset's rule for an agency added late."""
    agency(config, agency_key)
    existing = _find(session, case, agency_key)
    if existing is not None and existing.status != "withdrawn":
        raise ValueError(f"{agency_key} was already asked on {case.reference}")
    if existing is not None:
        session.delete(existing)
        session.flush()
    return _ask(session, config, case, agency_key, now, actor, late=True)


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
    _cancel_chasing(session, case, agency_key)
    _plan_chasing(session, config, case, request, now)
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
    _close(session, config, case, request, "withdrawn", now, actor)
    return request


def mark_received(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime, actor: str,
    evidence: str,
) -> AgencyRequest:
    """Record a return that came another way (a secure portal, by hand), with its evidence."""
    request = _open_request(session, case, agency_key)
    _close(session, config, case, request, "returned", now, actor, evidence=evidence)
    return request


def record_agency_reply(
    session: Session, config: Config, case: Case, agency_key: str, kind: str, at: datetime,
    actor: str, inbound_id: int | None = None,
) -> AgencyRequest | None:
    """Apply an agency's reply to its request; None when the case never asked that agency."""
    if kind not in REPLY_KINDS:
        raise ValueError(f"unknown reply kind {kind!r}")
    request = _find(session, case, agency_key)
    if request is None:
        return None
    request.reply_kind, request.replied_at = kind, at
    session.add(request)
    audit.record(session, case.partnership, actor, "agency_reply", at, case.id,
                 agency=agency_key, kind=kind, inbound_id=inbound_id)
    if request.status in CLOSED_STATUSES:
        return request
    if kind in {"return", "no_involvement"}:
        status = "returned" if kind == "return" else "no_involvement"
        _close(session, config, case, request, status, at, actor)
        tell_agency(session, config, case, request, "agency_receipt", at, key_suffix="receipt")
    else:
        _tell_business_manager(session, config, case, request, kind, at, inbound_id)
    return request


def note_contact_problem(
    session: Session, config: Config, email: str, problem: str, at: datetime
) -> list[AgencyRequest]:
    """Chase an agency's open requests through someone else: its contact bounced or is away."""
    if problem not in CONTACT_PROBLEMS:
        raise ValueError(f"unknown contact problem {problem!r}")
    found = agency_for_sender(config, email)
    if found is None:
        return []
    requests = session.exec(select(AgencyRequest).where(
        AgencyRequest.agency_key == found.key, AgencyRequest.status == "open",
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


def recipients(config: Config, request: AgencyRequest) -> list[Person]:
    """Who a request's chasing goes to: the contacts, or the alternate when they cannot be."""
    found = agency(config, request.agency_key)
    if request.contact_problem:
        stand_in = found.alternate or found.escalation
        if stand_in is not None:
            return [stand_in]
    return list(found.contacts)


def open_requests_for_agency(session: Session, agency_key: str) -> list[AgencyRequest]:
    """Every open request to an agency, across cases (for threading a reply to its case)."""
    return list(session.exec(select(AgencyRequest).where(
        AgencyRequest.agency_key == agency_key, AgencyRequest.status == "open",
    )))


def _find(session: Session, case: Case, agency_key: str) -> AgencyRequest | None:
    return session.exec(select(AgencyRequest).where(
        AgencyRequest.case_id == case.id, AgencyRequest.agency_key == agency_key,
    )).first()


def _open_request(session: Session, case: Case, agency_key: str) -> AgencyRequest:
    request = _find(session, case, agency_key)
    if request is None:
        raise ValueError(f"{case.reference} has no request to {agency_key}")
    if request.status in CLOSED_STATUSES:
        raise ValueError(f"the request to {agency_key} on {case.reference} is {request.status}")
    return request


def _ask(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime, actor: str,
    late: bool,
) -> AgencyRequest:
    request = AgencyRequest(
        partnership=case.partnership, case_id=case.id or 0, agency_key=agency_key,
        status="open", asked_at=now, due_at=_due(session, config, case, now, late),
    )
    session.add(request)
    session.flush()
    audit.record(session, case.partnership, actor, "agency_requested", now, case.id,
                 agency=agency_key, due=request.due_at, late=late)
    tell_agency(session, config, case, request, "agency_request", now, key_suffix="request")
    _plan_chasing(session, config, case, request, now)
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


def _plan_chasing(
    session: Session, config: Config, case: Case, request: AgencyRequest, now: datetime
) -> None:
    assert request.due_at is not None
    calendar = config.calendar
    rules = config.preset.agency_requests
    stamp = f"{request.due_at:%Y%m%dT%H%M}"
    prefix = f"{case.reference}:agency:{request.agency_key}"
    for number, reminder in enumerate(rules.reminders):
        at = reminder_at(calendar, request.due_at, reminder)
        # A reminder whose moment has passed when the request is made would only be noise.
        if at > now:
            final = number == len(rules.reminders) - 1
            plan_action(session, case, f"{prefix}:remind:{number}:{stamp}",
                  "agency_final_reminder" if final else "agency_reminder",
                  request.agency_key, at)
    plan_action(session, case, f"{prefix}:escalate:{stamp}:1", "agency_escalation",
                request.agency_key,
                escalation_at(config, request.due_at, rules.escalate_after_working_days))


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
    key = f"{case.reference}:agency:{request.agency_key}:escalate:{request.due_at:%Y%m%dT%H%M}"
    plan_action(session, case, f"{key}:{number}", "agency_escalation", request.agency_key,
          escalation_at(config, after, 1))


def _cancel_chasing(session: Session, case: Case, agency_key: str) -> None:
    prefix = f"{case.reference}:agency:{agency_key}:"
    pending = session.exec(select(PlannedAction).where(
        PlannedAction.case_id == case.id, PlannedAction.status == "pending",
        col(PlannedAction.key).startswith(prefix),
    ))
    for planned in pending:
        planned.status = "cancelled"
        session.add(planned)


def _close(
    session: Session, config: Config, case: Case, request: AgencyRequest, status: str,
    at: datetime, actor: str, evidence: str | None = None,
) -> None:
    request.status, request.closed_at = status, at
    session.add(request)
    _cancel_chasing(session, case, request.agency_key)
    audit.record(session, case.partnership, actor, "agency_request_closed", at, case.id,
                 agency=request.agency_key, status=status, evidence=evidence)
    statuses = set(session.exec(select(AgencyRequest.status).where(
        AgencyRequest.case_id == case.id)).all())
    # The returns are in when none is still open and at least one agency answered: a last
    # request withdrawn completes them too, but withdrawing every request does not.
    if "open" not in statuses and statuses - {"withdrawn"}:
        mark_milestone_done(session, config, case, "agency_returns_due", at, actor)
        if "returns_collected" in TRANSITIONS[case.status]:
            transition(session, case, "returns_collected", actor, at)


def tell_agency(
    session: Session, config: Config, case: Case, request: AgencyRequest, purpose: str,
    now: datetime, key_suffix: str,
) -> None:
    """Queue one of the agency emails (request, reminders, receipt, extension) to its people."""
    found = agency(config, request.agency_key)
    settings = config.settings
    people = recipients(config, request)
    attachments = _request_attachments(config, case, request, found) if (
        purpose == "agency_request") else []
    notify(session, config, purpose, to=[person.email for person in people],
           key=f"{case.reference}:agency:{request.agency_key}:{key_suffix}", now=now,
           case_id=case.id, attachments=attachments, values=dict(
               agency_name=found.name, case_reference=case.reference, due=request.due_at,
               recipient_names=", ".join(person.name for person in people),
               partnership=settings.partnership.name, mailbox=settings.mailbox.address,
               form_attached=bool(settings.agency_requests.form_path),
               meeting_invite=any(a.subtype == "calendar" for a in attachments)))


def tell_escalation(
    session: Session, config: Config, case: Case, request: AgencyRequest, now: datetime,
    number: int,
) -> None:
    """Escalate a missed deadline to the agency's senior officer and the business manager."""
    found = agency(config, request.agency_key)
    settings = config.settings
    manager = settings.business_manager
    senior = found.escalation or found.alternate or found.contacts[0]
    calendar = config.calendar
    notify(session, config, "agency_escalation", to=[senior.email], cc=[manager.email],
           key=f"{case.reference}:agency:{request.agency_key}:escalation:{number}:"
               f"{request.due_at:%Y%m%dT%H%M}",
           now=now, case_id=case.id, values=dict(
               agency_name=found.name, case_reference=case.reference, due=request.due_at,
               recipient_names=senior.name, partnership=settings.partnership.name,
               working_days_late=calendar.working_days_between(
                   calendar.local_date(request.due_at or now), calendar.local_date(now)),
               contacts=", ".join(person.email for person in found.contacts)))


def _tell_business_manager(
    session: Session, config: Config, case: Case, request: AgencyRequest, kind: str,
    at: datetime, inbound_id: int | None,
) -> None:
    found = agency(config, request.agency_key)
    settings = config.settings
    notify(session, config, "agency_flag", to=[settings.business_manager.email],
           key=f"{case.reference}:agency:{request.agency_key}:flag:{kind}:{inbound_id or at}",
           now=at, case_id=case.id, values=dict(
               agency_name=found.name, case_reference=case.reference, due=request.due_at,
               kind=kind.replace("_", " "), recipient_names=settings.business_manager.name))


def _request_attachments(
    config: Config, case: Case, request: AgencyRequest, found: Agency
) -> list[Attachment]:
    attachments = []
    settings = config.settings
    form_path = settings.agency_requests.form_path
    if form_path:
        base = config.source.resolve().parent if config.source else Path.cwd()
        form = base / form_path
        attachments.append(Attachment(form.name, form.read_bytes(), "application",
                                      _subtype(form.suffix)))
    if config.preset.agency_requests.meeting_invite:
        attachments.append(Attachment("rapid-review-meeting.ics",
                                      meeting_invitation(config, case, found).encode("utf-8"),
                                      "text", "calendar"))
    return attachments


def _subtype(suffix: str) -> str:
    return {
        ".docx": "vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".pdf": "pdf",
        ".xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }.get(suffix.lower(), "octet-stream")


def meeting_invitation(config: Config, case: Case, found: Agency) -> str:
    """Write an iCalendar invitation (RFC 5545) to the planned Rapid Review meeting."""
    settings = config.settings
    calendar = config.calendar
    case_plan = plan(config.preset, calendar, case.clock_start)
    day = calendar.local_date(case_plan.due("rr_meeting"))
    start = calendar.at(day, settings.agency_requests.meeting_start)
    end = start + timedelta(minutes=settings.agency_requests.meeting_minutes)
    domain = settings.mailbox.address.rpartition("@")[2]
    attendees = [
        f"ATTENDEE;CN={_ics_text(person.name)};ROLE=REQ-PARTICIPANT;RSVP=TRUE:"
        f"mailto:{person.email}" for person in found.contacts
    ]
    lines = [
        "BEGIN:VCALENDAR", "PRODID:-//rrbot//Rapid Review bot//EN", "VERSION:2.0",
        "METHOD:REQUEST", "BEGIN:VEVENT",
        f"UID:{case.reference}-rr-meeting-{found.key}@{domain}",
        f"DTSTAMP:{case.opened_at:%Y%m%dT%H%M%SZ}",
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}", f"DTEND:{end:%Y%m%dT%H%M%SZ}",
        f"SUMMARY:{_ics_text(f'Rapid Review meeting {case.reference} (provisional)')}",
        f"LOCATION:{_ics_text(settings.agency_requests.meeting_location)}",
        f"ORGANIZER;CN={_ics_text(settings.partnership.name)}:mailto:{settings.mailbox.address}",
        *attendees, "SEQUENCE:0", "STATUS:TENTATIVE", "END:VEVENT", "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def _ics_text(value: str) -> str:
    # RFC 5545 3.3.11: escape backslash, semicolon and comma; line breaks become \n.
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _fold(line: str) -> str:
    # RFC 5545 3.1: lines longer than 75 octets continue on the next line after a space.
    encoded = line.encode("utf-8")
    if len(encoded) <= 75:
        return line
    parts: list[str] = []
    current = b""
    for character in line:
        piece = character.encode("utf-8")
        if len(current) + len(piece) > (75 if not parts else 74):
            parts.append(current.decode("utf-8"))
            current = b""
        current += piece
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)

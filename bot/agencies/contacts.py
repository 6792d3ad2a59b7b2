"""Telling an agency's people, its senior officer or the business manager about a request."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.agencies.chasing import request_prefix
from bot.agencies.directory import find_agency
from bot.agencies.invitation import request_attachments
from bot.config import Config
from bot.mail.notify import notify
from bot.papers.particulars import load_particulars
from bot.settings import Person
from bot.store.models import AgencyRequest, Case


def recipients(session: Session, config: Config, request: AgencyRequest) -> list[Person]:
    """Who a request's chasing goes to: the contacts, or the alternate when they cannot be."""
    found = find_agency(session, config, request.agency_key)
    if request.contact_problem:
        stand_in = found.alternate or found.escalation
        if stand_in is not None:
            return [stand_in]
    return list(found.contacts)


def tell_agency(
    session: Session, config: Config, case: Case, request: AgencyRequest, purpose: str,
    now: datetime, key_suffix: str, asking: int | None = None,
) -> None:
    """Queue one of the agency emails (request, reminders, receipt, extension) to its people.

    asking is the round the email belongs to (default: the current one).
    """
    found = find_agency(session, config, request.agency_key)
    settings = config.settings
    people = recipients(session, config, request)
    first_request = purpose == "agency_request"
    attachments = request_attachments(config, case, request, found) if first_request else []
    # The request names the child as its form does (email only: chat never carries it).
    particulars = load_particulars(session, case) if first_request else None
    notify(session, config, purpose, to=[person.email for person in people],
           key=f"{request_prefix(session, case, request, asking)}:{key_suffix}", now=now,
           case_id=case.id, attachments=attachments, values=dict(
               agency_name=found.name, case_reference=case.reference, due=request.due_at,
               recipient_names=", ".join(person.name for person in people),
               partnership=settings.partnership.name, mailbox=settings.mailbox.address,
               form_attached=bool(settings.agency_requests.form_path
                                  or settings.agency_requests.forms),
               child=particulars if particulars and particulars.child_name else None,
               meeting_invite=any(a.subtype == "calendar" for a in attachments)))


def tell_escalation(
    session: Session, config: Config, case: Case, request: AgencyRequest, now: datetime,
    number: int, purpose: str = "agency_escalation",
) -> None:
    """Escalate a missed deadline to the agency's senior officer and the business manager."""
    found = find_agency(session, config, request.agency_key)
    settings = config.settings
    manager = settings.business_manager
    senior = found.escalation or found.alternate or found.contacts[0]
    calendar = config.calendar
    notify(session, config, purpose, to=[senior.email], cc=[manager.email],
           key=f"{request_prefix(session, case, request)}:escalation:{number}:"
               f"{request.due_at:%Y%m%dT%H%M}",
           now=now, case_id=case.id, values=dict(
               agency_name=found.name, case_reference=case.reference, due=request.due_at,
               recipient_names=senior.name, partnership=settings.partnership.name,
               working_days_late=calendar.working_days_between(
                   calendar.local_date(request.due_at or now), calendar.local_date(now)),
               contacts=", ".join(person.email for person in found.contacts)))


def tell_business_manager(
    session: Session, config: Config, case: Case, request: AgencyRequest, kind: str,
    at: datetime, inbound_id: int | None,
) -> None:
    """Email the business manager what an agency's reply needs of her."""
    found = find_agency(session, config, request.agency_key)
    settings = config.settings
    notify(session, config, "agency_flag", to=[settings.business_manager.email],
           key=f"{case.reference}:agency:{request.agency_key}:flag:{kind}:{inbound_id or at}",
           now=at, case_id=case.id, values=dict(
               agency_name=found.name, case_reference=case.reference, due=request.due_at,
               kind=kind.replace("_", " "), recipient_names=settings.business_manager.name))

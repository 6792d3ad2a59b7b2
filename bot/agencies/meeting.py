"""The Rapid Review meeting's invitation to each agency: the request, its updates, its cancel.

Each agency gets one meeting (one UID). The outbox holds what it was sent: the invitation goes
with the information request (SEQUENCE 0); when the meeting moves, an update goes with the
SEQUENCE one higher; when the agency is withdrawn or had no involvement, or the case ends
before the meeting, a METHOD:CANCEL. Outlook takes a message as a meeting request only when
its text/calendar part, with the method, is inside the multipart/alternative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

from icalendar import Calendar, Event, vCalAddress, vText
from sqlmodel import Session, col, select

from bot.config import Config
from bot.kernel.outbox import Attachment
from bot.mail.notify import notify
from bot.process.timeline import plan
from bot.settings import Agency
from bot.store.models import AgencyRequest, Case, Milestone, OutboxMessage

MEETING_MILESTONE = "rr_meeting"
REQUEST, CANCEL = "REQUEST", "CANCEL"


@dataclass(frozen=True)
class SentInvitation:
    """The last meeting message an agency was sent: its method, sequence and start."""

    method: str
    sequence: int
    start: datetime


def meeting_start(config: Config, case: Case) -> datetime:
    """Return when the case's meeting starts: its milestone's day at the configured time.

    The milestone row is the truth (it moves when the clock restarts or a step it counts
    from is done); a case not yet stored falls back to the preset's plan.
    """
    calendar = config.calendar
    session = Session.object_session(case)
    milestone = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == MEETING_MILESTONE,
    )).first() if isinstance(session, Session) and case.id else None
    due = (milestone.due_at if milestone is not None
           else plan(config.preset, calendar, case.clock_start).due(MEETING_MILESTONE))
    return calendar.at(calendar.local_date(due), config.settings.agency_requests.meeting_start)


def meeting_request(
    config: Config, case: Case, found: Agency, stamp: datetime | None
) -> Attachment:
    """Return the first invitation (METHOD:REQUEST, SEQUENCE 0) to go with an agency's request."""
    start = meeting_start(config, case)
    content = meeting_calendar(config, case, found, start, REQUEST, 0, stamp or case.opened_at)
    return _attachment(content, REQUEST)


def meeting_calendar(
    config: Config, case: Case, found: Agency, start: datetime, method: str, sequence: int,
    stamp: datetime,
) -> bytes:
    """Write the iCalendar object (RFC 5545, iTIP RFC 5546) for one agency's meeting."""
    settings = config.settings
    end = start + timedelta(minutes=settings.agency_requests.meeting_minutes)
    calendar = Calendar()
    calendar.add("prodid", "-//rrbot//Rapid Review bot//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", meeting_uid(config, case, found.key))
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", start.astimezone(UTC))
    event.add("dtend", end.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("summary", f"Rapid Review meeting {case.reference} (provisional)")
    event.add("location", settings.agency_requests.meeting_location)
    event.add("status", "CANCELLED" if method == CANCEL else "TENTATIVE")
    event.add("organizer", _address(settings.mailbox.address, settings.partnership.name))
    for person in found.contacts:
        attendee = _address(person.email, person.name)
        attendee.params.update({"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION",
                                "RSVP": "TRUE"})
        event.add("attendee", attendee)
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def meeting_uid(config: Config, case: Case, agency_key: str) -> str:
    """Return the meeting's UID for one agency, the same in every message about it."""
    domain = config.settings.mailbox.address.rpartition("@")[2]
    return f"{case.reference}-rr-meeting-{agency_key}@{domain}"


def last_invitation(session: Session, case: Case, agency_key: str) -> SentInvitation | None:
    """Return the last meeting message queued for an agency on a case, or None if none was."""
    prefix = f"{case.reference}:agency:{agency_key}:"
    # The case narrows the look-up to the case's own mail through its index.
    rows = session.exec(select(OutboxMessage).where(
        OutboxMessage.case_id == case.id,
        (col(OutboxMessage.idempotency_key) == f"{prefix}request")
        | col(OutboxMessage.idempotency_key).startswith(f"{prefix}meeting:"),
    )).all()
    sent = [found for row in rows if (found := _invitation_in(row.payload)) is not None]
    return max(sent, key=lambda invitation: invitation.sequence, default=None)


def update_meetings(session: Session, config: Config, case: Case, now: datetime) -> list[str]:
    """Send an update to every agency whose meeting has moved since its last invitation."""
    start = meeting_start(config, case)
    requests = session.exec(select(AgencyRequest).where(AgencyRequest.case_id == case.id)).all()
    updated = []
    for request in requests:
        sent = last_invitation(session, case, request.agency_key)
        if sent is None or sent.method == CANCEL or sent.start == start or sent.start <= now:
            continue
        _tell(session, config, case, request.agency_key, REQUEST, sent.sequence + 1, start, now)
        updated.append(request.agency_key)
    return updated


def cancel_meeting(
    session: Session, config: Config, case: Case, agency_key: str, now: datetime
) -> bool:
    """Cancel an agency's meeting if it was invited and the meeting is still to come."""
    sent = last_invitation(session, case, agency_key)
    if sent is None or sent.method == CANCEL or sent.start <= now:
        return False
    _tell(session, config, case, agency_key, CANCEL, sent.sequence + 1, sent.start, now)
    return True


def cancel_meetings(session: Session, config: Config, case: Case, now: datetime) -> list[str]:
    """Cancel every agency's meeting still to come: the case ended before it."""
    requests = session.exec(select(AgencyRequest).where(AgencyRequest.case_id == case.id)).all()
    return [request.agency_key for request in requests
            if cancel_meeting(session, config, case, request.agency_key, now)]


def _tell(
    session: Session, config: Config, case: Case, agency_key: str, method: str, sequence: int,
    start: datetime, now: datetime,
) -> None:
    found = config.settings.agency(agency_key)
    settings = config.settings
    content = meeting_calendar(config, case, found, start, method, sequence, now)
    purpose = "meeting_cancel" if method == CANCEL else "meeting_update"
    notify(session, config, purpose, to=[person.email for person in found.contacts],
           key=f"{case.reference}:agency:{agency_key}:meeting:{sequence}", now=now,
           case_id=case.id, attachments=[_attachment(content, method)], values=dict(
               agency_name=found.name, case_reference=case.reference, start=start,
               recipient_names=", ".join(person.name for person in found.contacts),
               partnership=settings.partnership.name))


def _attachment(content: bytes, method: str) -> Attachment:
    return Attachment("rapid-review-meeting.ics", content, "text", "calendar", method=method)


def _address(email: str, name: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    address.params["CN"] = vText(name)
    return address


def _invitation_in(payload: bytes) -> SentInvitation | None:
    """Read the meeting message in a queued email's calendar part, if it has one."""
    message = message_from_bytes(payload, policy=policy.default)
    for part in message.walk():
        if part.get_content_type() != "text/calendar":
            continue
        calendar = Calendar.from_ical(part.get_content())
        event = next(iter(calendar.walk("VEVENT")))
        return SentInvitation(str(calendar["METHOD"]), int(event.get("SEQUENCE", 0)),
                              event.decoded("DTSTART"))
    return None

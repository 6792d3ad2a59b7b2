"""What goes with a request: the partnership's form and the meeting invitation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.config import Config
from bot.kernel.outbox import Attachment
from bot.papers.forms import agency_forms
from bot.process.timeline import plan
from bot.settings import Agency
from bot.store.models import AgencyRequest, Case


def request_attachments(
    config: Config, case: Case, request: AgencyRequest, found: Agency
) -> list[Attachment]:
    """Return what goes with a request: the form, and the meeting invitation."""
    attachments = []
    settings = config.settings
    form_path = settings.agency_requests.form_path
    if form_path:
        base = config.source.resolve().parent if config.source else Path.cwd()
        form = base / form_path
        attachments.append(Attachment(form.name, form.read_bytes(), "application",
                                      _subtype(form.suffix)))
    attachments.extend(agency_forms(config, case, request, found))
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

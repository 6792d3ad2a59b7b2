"""The partnership's forms, filled in for one agency from the referral, attached to its request."""

from __future__ import annotations

import io
import logging
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from docxtpl import DocxTemplate
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment
from openpyxl import load_workbook
from sqlmodel import Session, select

from bot.cases.documents import store_document
from bot.config import Config
from bot.kernel import audit
from bot.kernel.outbox import Attachment
from bot.mail.mime import FoundAttachment
from bot.mail.render import london_time
from bot.papers.archive import Refused, check_office_file
from bot.papers.bundled import FOLDER as BUNDLED
from bot.papers.particulars import Particulars, incident_words, load_particulars
from bot.settings import Agency
from bot.store.models import AgencyRequest, Case, Milestone

log = logging.getLogger(__name__)

SUBTYPES = {
    ".docx": "vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")


class FormProblem(Exception):
    """A form template that cannot be filled, with the reason in words."""


def template_path(config: Config, name: str) -> Path:
    """Find a template: a bundled example by its bare name, else a path from the config's folder."""
    if "/" not in name and "\\" not in name and (BUNDLED / name).exists():
        return BUNDLED / name
    path = Path(name)
    if not path.is_absolute():
        base = config.source.resolve().parent if config.source else Path.cwd()
        path = base / path
    return path


def sandbox() -> SandboxedEnvironment:
    """Return the Jinja2 environment templates are filled in: sandboxed, escaping for XML."""
    return SandboxedEnvironment(autoescape=True)


def fill_word(template: bytes, context: dict[str, Any]) -> bytes:
    """Fill a Word template's docxtpl placeholders; the result is a plain .docx."""
    check_office_file(template, "Word")
    document = DocxTemplate(io.BytesIO(template))
    document.render(context, jinja_env=sandbox(), autoescape=True)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def fill_workbook(template: bytes, context: dict[str, Any]) -> bytes:
    """Fill every `{{ ... }}` in an Excel template's text cells."""
    check_office_file(template, "Excel")
    workbook = load_workbook(io.BytesIO(template), keep_links=False, keep_vba=False)
    environment = SandboxedEnvironment(autoescape=False)
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and PLACEHOLDER.search(cell.value):
                    cell.value = environment.from_string(cell.value).render(context)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def period_start(day0: date, months: int, born: date | None) -> date:
    """Return the first day of the period agencies cover: months before Day 0, or birth."""
    if months == 0 and born is not None:
        return born
    year, month = divmod(day0.year * 12 + day0.month - 1 - (months or 12), 12)
    last_day = [31, 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28,
                31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month]
    start = date(year, month + 1, min(day0.day, last_day))
    return max(start, born) if born else start


def form_context(
    config: Config, session: Session, case: Case, request: AgencyRequest, agency: Agency,
    particulars: Particulars,
) -> dict[str, Any]:
    """Return what a form's placeholders may use, every date and time in words."""
    settings = config.settings
    start = period_start(case.day0, settings.agency_requests.period_months,
                         particulars.child_dob)
    meeting = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == "rr_meeting")).first()
    asked = request.asked_at or case.opened_at
    return {
        "ref": case.reference, "partnership": settings.partnership.name,
        "mailbox": settings.mailbox.address, "agency": agency.name,
        "child": {
            "name": particulars.child_name, "initials": particulars.child_initials,
            "dob": particulars.dob_words, "address": particulars.detail("address"),
            "gender": particulars.detail("gender"), "ethnicity": particulars.detail("ethnicity"),
            "faith": particulars.detail("faith"), "disability": particulars.detail("disability"),
        },
        "family": [{key: member.get(key, "") for key in ("name", "relationship", "address",
                                                          "dob")}
                   for member in particulars.family],
        "summary": particulars.detail("summary") or particulars.detail("reason"),
        "incident_date": incident_words(particulars),
        "incident_location": particulars.detail("incident_location"),
        "period": f"from {_words(start)} to {_words(case.day0)}",
        "period_from": _words(start), "period_to": _words(case.day0),
        "due": london_time(request.due_at) if request.due_at else "",
        "requested": _words(config.calendar.local_date(asked)),
        "meeting": (f"{_words(config.calendar.local_date(meeting.due_at))} (provisional)"
                    if meeting else ""),
    }


def agency_forms(
    config: Config, case: Case, request: AgencyRequest, agency: Agency
) -> list[Attachment]:
    """Fill each configured form for the agency, keep a copy with the case, and attach them.

    A form that cannot be filled is left out and recorded in the audit trail, so that the
    request still goes; nothing about the child is logged.
    """
    names = config.settings.agency_requests.forms
    session = Session.object_session(case)
    if not names or not isinstance(session, Session):
        return []
    particulars = load_particulars(session, case)
    context = form_context(config, session, case, request, agency, particulars)
    attachments = []
    now = request.asked_at or case.opened_at
    for name in names:
        try:
            filename, content = fill_form(config, name, case, agency, context)
        except FormProblem as problem:
            log.warning("form %s for %s on %s was not attached: %s", name, agency.key,
                        case.reference, problem)
            audit.record(session, case.partnership, "bot", "agency_form_failed", now, case.id,
                         agency=agency.key, form=name, reason=str(problem))
            continue
        suffix = Path(filename).suffix
        store_document(session, config, case, FoundAttachment(
            filename, content, f"application/{SUBTYPES[suffix]}"), "agency_form", now)
        attachments.append(Attachment(filename, content, "application", SUBTYPES[suffix]))
    return attachments


def fill_form(
    config: Config, name: str, case: Case, agency: Agency, context: dict[str, Any]
) -> tuple[str, bytes]:
    """Fill one form template; return the attachment's name and bytes, or raise FormProblem."""
    path = template_path(config, name)
    suffix = path.suffix.lower()
    if suffix not in SUBTYPES:
        raise FormProblem(f"{path.name} is not a .docx or .xlsx template")
    try:
        template = path.read_bytes()
    except OSError as error:
        raise FormProblem(f"{path} cannot be read ({error.strerror})") from None
    try:
        content = (fill_word if suffix == ".docx" else fill_workbook)(template, context)
    except (Refused, TemplateError, ValueError, KeyError, OSError) as error:
        raise FormProblem(f"{path.name} could not be filled ({type(error).__name__})") from None
    return f"{case.reference}-{agency.key}-{path.stem}{suffix}", content


def _words(day: date | datetime) -> str:
    return f"{day.day} {day:%B %Y}"

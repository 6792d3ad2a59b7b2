"""Reading returns as they come, and building the case papers when the collation step is due."""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime
from pathlib import Path

from jinja2 import TemplateError
from sqlmodel import Session, col, select

from bot.cases.documents import store_document
from bot.cases.lifecycle import mark_milestone_done
from bot.config import Config
from bot.kernel import audit
from bot.kernel.actions import ActionArguments, plan_action
from bot.kernel.outbox import Attachment
from bot.mail.mime import FoundAttachment
from bot.mail.notify import notify
from bot.mail.render import london_time
from bot.papers.archive import Refused
from bot.papers.chronology import Chronology, combine
from bot.papers.chronology_files import chronology_files
from bot.papers.contents import UNREADABLE, ReturnContents
from bot.papers.particulars import load_particulars
from bot.papers.report_draft import CaseFacts, draft_report
from bot.papers.returns import read_return
from bot.store.models import AgencyRequest, Case, Document, Milestone, ReturnReading
from bot.store.statuses import MilestoneStatus

log = logging.getLogger(__name__)

COLLATION_KEY = "collation"
DOCX = "vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class ReturnsArrived(ActionArguments):
    """An agency's return files, stored on the case, to read (by document id)."""

    agency: str
    documents: list[int]


class CollationDue(ActionArguments):
    """The collation step of a case has fallen due."""

    milestone: str = COLLATION_KEY


def plan_collation(session: Session, config: Config, case: Case) -> None:
    """Plan the papers for the collation step's due instant (moved when the step moves)."""
    milestone = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == COLLATION_KEY)).first()
    if milestone is None or milestone.status != MilestoneStatus.PENDING:
        return
    plan_action(session, partnership=case.partnership, case_id=case.id,
                key=f"{case.reference}:papers:collation", action_name="collate_papers",
                arguments=CollationDue(), due_at=collation_at(session, config, milestone))


def collation_at(session: Session, config: Config, milestone: Milestone) -> datetime:
    """Return when the papers are built: the start of the collation step's working day.

    That leaves the day for the team to read them; never before the returns are due.
    """
    calendar = config.calendar
    start = calendar.at(calendar.local_date(milestone.due_at),
                        config.settings.partnership.working_hours_start)
    returns = session.exec(select(Milestone).where(
        Milestone.case_id == milestone.case_id, Milestone.key == "agency_returns_due")).first()
    floor = returns.due_at if returns is not None else start
    return min(max(start, floor), milestone.due_at)


def plan_reading(
    session: Session, case: Case, agency_key: str, documents: list[Document], now: datetime
) -> None:
    """Plan the reading of an agency's return files, apart from the mail that brought them."""
    if not documents:
        return
    ids = sorted(document.id or 0 for document in documents)
    plan_action(session, partnership=case.partnership, case_id=case.id,
                key=f"{case.reference}:papers:read:{agency_key}:{ids[0]}",
                action_name="read_return",
                arguments=ReturnsArrived(agency=agency_key, documents=ids), due_at=now)


def take_return(
    session: Session, config: Config, case: Case, step: ReturnsArrived, now: datetime
) -> list[ReturnContents]:
    """Read an agency's return files, record each, and flag what could not be read."""
    agency = config.settings.agency(step.agency)
    found = []
    for document in session.exec(select(Document).where(
            col(Document.id).in_(step.documents))).all():
        contents = read_document(document, agency.name)
        found.append(contents)
        existing = session.exec(select(ReturnReading).where(
            ReturnReading.document_id == document.id)).first()
        reading = existing or ReturnReading(partnership=case.partnership, case_id=case.id or 0,
                                            document_id=document.id or 0,
                                            agency_key=agency.key, status="", read_at=now)
        reading.status, reading.rows = contents.status, len(contents.rows)
        reading.involvement = contents.involvement
        reading.problems = "\n".join(
            ([contents.refused] if contents.refused else contents.problems[:50])
            + contents.notes)
        reading.read_at = now
        session.add(reading)
        audit.record(session, case.partnership, "bot", "agency_return_read", now, case.id,
                     agency=agency.key, document_id=document.id, status=contents.status,
                     rows=len(contents.rows), problems=len(contents.problems))
    troubled = [contents for contents in found if contents.status == UNREADABLE
                or contents.problems]
    if troubled:
        manager = config.settings.business_manager
        notify(session, config, "return_unreadable", to=[manager.email],
               key=f"{case.reference}:papers:unreadable:{step.agency}:{step.documents[0]}",
               now=now, case_id=case.id, values=dict(
                   recipient_name=manager.name, case_reference=case.reference,
                   agency_name=agency.name, returns=[
                       (contents.filename, contents.status == UNREADABLE,
                        contents.why_unreadable() if contents.status == UNREADABLE
                        else "; ".join(contents.problems[:10])) for contents in troubled]))
    return found


def read_document(document: Document, agency_name: str) -> ReturnContents:
    """Read a stored return file; one that is missing or changed on disk says so."""
    try:
        content = Path(document.path).read_bytes()
    except OSError as error:
        return ReturnContents(agency_name, document.filename,
                              refused=f"the stored file cannot be read ({error.strerror})")
    if hashlib.sha256(content).hexdigest() != document.sha256:
        return ReturnContents(agency_name, document.filename,
                              refused="the stored file no longer matches what arrived")
    return read_return(content, agency_name, document.filename)


def collation_done(session: Session, case: Case) -> bool:
    """Say whether the case's papers have been built once already."""
    milestone = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == COLLATION_KEY)).first()
    return milestone is not None and milestone.status == MilestoneStatus.DONE


def collate(
    session: Session, config: Config, case: Case, now: datetime, build: str, late: str = ""
) -> list[Document]:
    """Build the combined chronology and the draft report, keep them, and send them."""
    settings = config.settings
    names = {agency.key: agency.name for agency in settings.agencies}
    readings = session.exec(select(ReturnReading).where(ReturnReading.case_id == case.id)
                            .order_by(col(ReturnReading.id))).all()
    returns = []
    for reading in readings:
        document = session.get_one(Document, reading.document_id)
        returns.append(read_document(document, names.get(reading.agency_key,
                                                         reading.agency_key)))
    chronology = combine(returns, settings.papers.gap_days)
    particulars = load_particulars(session, case)
    built = london_time(now)
    layout = settings.papers.chronology_layout
    files: list[tuple[str, str, bytes]] = []
    for anonymised, kind, tag in ((False, "chronology", "named"),
                                  (True, "chronology_anonymised", "anonymised")):
        stem = f"{case.reference}-chronology-{tag}"
        workbook, word = chronology_files(chronology, particulars, layout, anonymised, built,
                                          now)
        files += [(kind, f"{stem}.xlsx", workbook), (kind, f"{stem}.docx", word)]
    requests = list(session.exec(select(AgencyRequest).where(
        AgencyRequest.case_id == case.id).order_by(col(AgencyRequest.id))).all())
    milestones = session.exec(select(Milestone).where(Milestone.case_id == case.id)).all()
    draft_problem = None
    try:
        draft = draft_report(config, CaseFacts(case, particulars, requests, milestones, returns,
                                               chronology, names), now)
        files.append(("report_draft", f"{case.reference}-draft-report.docx", draft))
    except (OSError, ValueError, KeyError, TypeError, TemplateError, Refused) as error:
        # The chronology still goes; the business manager hears the draft could not be made.
        draft_problem = f"the report template could not be filled ({type(error).__name__})"
        log.warning("draft report for %s not built: %s", case.reference, type(error).__name__)
    documents = [store_document(session, config, case, FoundAttachment(
        filename, content, f"application/{DOCX if filename.endswith('.docx') else XLSX}"),
        kind, now) for kind, filename, content in files]
    _send(session, config, case, now, build, late, files, chronology, requests, names,
          draft_problem)
    if not collation_done(session, case):
        mark_milestone_done(session, config, case, COLLATION_KEY, now, "bot")
    audit.record(session, case.partnership, "bot", "papers_built", now, case.id, build=build,
                 rows=len(chronology.entries), unreadable=len(chronology.unreadable),
                 documents=[document.id for document in documents])
    return documents


def _send(
    session: Session, config: Config, case: Case, now: datetime, build: str, late: str,
    files: list[tuple[str, str, bytes]], chronology: Chronology,
    requests: list[AgencyRequest], names: dict[str, str], draft_problem: str | None,
) -> None:
    settings = config.settings
    manager = settings.business_manager
    chair = settings.papers.chair
    recipients = [person for person in (chair, manager) if person is not None]
    awaited = [names.get(r.agency_key, r.agency_key) for r in requests if r.status == "open"]
    meeting = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == "rr_meeting")).first()
    values = dict(
        case_reference=case.reference, late=late, built=now,
        recipient_names=", ".join(person.name for person in recipients),
        meeting=_words(config.calendar.local_date(meeting.due_at)) if meeting else None,
        rows=len(chronology.entries),
        agencies=chronology.agencies, awaited=awaited,
        unreadable=[(c.agency, c.filename, c.why_unreadable()) for c in chronology.unreadable],
        gaps=len(chronology.gaps), contradictions=len(chronology.contradictions),
        duplicates=chronology.duplicate_groups, undated=len(chronology.undated),
        draft_problem=draft_problem)
    chronology_files = [Attachment(name, content, "application",
                                   DOCX if name.endswith(".docx") else XLSX)
                        for kind, name, content in files if kind != "report_draft"]
    notify(session, config, "chronology", to=[person.email for person in recipients],
           key=f"{case.reference}:papers:chronology:{build}", now=now, case_id=case.id,
           attachments=chronology_files, values=values)
    drafts = [Attachment(name, content, "application", DOCX)
              for kind, name, content in files if kind == "report_draft"]
    if drafts:
        notify(session, config, "report_draft", to=[manager.email],
               key=f"{case.reference}:papers:draft:{build}", now=now, case_id=case.id,
               attachments=drafts, values={**values, "recipient_names": manager.name})


def _words(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"

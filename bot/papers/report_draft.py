"""The draft Rapid Review report: the partnership's template filled with what the bot knows.

Every value filled in is followed, in grey, by where it came from, so that the author can
check it and knows what is still theirs to write.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from docxtpl import DocxTemplate, RichText

from bot.config import Config
from bot.papers.archive import check_office_file
from bot.papers.chronology import Chronology
from bot.papers.contents import ReturnContents
from bot.papers.forms import sandbox, template_path
from bot.papers.particulars import Particulars, incident_words
from bot.store.models import AgencyRequest, Case, Milestone

SOURCE_COLOUR = "7F7F7F"
# The process dates the report lists, by milestone key, in this order.
PROCESS_MILESTONES = ("partner_decision", "notify_national_panel", "agency_requests",
                      "agency_returns_due", "collation", "rr_meeting", "partner_signoff",
                      "submit_national_panel")


@dataclass(frozen=True)
class CaseFacts:
    """What the draft is built from, besides the template."""

    case: Case
    particulars: Particulars
    requests: Sequence[AgencyRequest]
    milestones: Sequence[Milestone]
    returns: Sequence[ReturnContents]
    chronology: Chronology
    agency_names: dict[str, str]


def sourced(value: str, source: str, empty: str = "not given") -> RichText:
    """Write a value and, in grey, where it came from."""
    text = RichText()
    text.add(value or f"({empty})")
    text.add(f"  [{source}]", color=SOURCE_COLOUR, italic=True, size=16)
    return text


def report_template(config: Config) -> Path:
    """Return the partnership's report template: configured, or the preset's bundled one."""
    name = config.settings.papers.report_template
    if name:
        return template_path(config, name)
    bundled = template_path(config, f"{config.preset.name}-report.docx")
    return bundled if bundled.exists() else template_path(config, "warrington-report.docx")


def draft_report(config: Config, facts: CaseFacts, written: datetime) -> bytes:
    """Fill the report template; a template that cannot be filled raises ValueError."""
    template = report_template(config).read_bytes()
    check_office_file(template, "Word")
    document = DocxTemplate(io.BytesIO(template))
    document.render(report_context(config, facts), jinja_env=sandbox(), autoescape=True)
    document.docx.core_properties.created = written.replace(tzinfo=None)
    document.docx.core_properties.modified = written.replace(tzinfo=None)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def report_context(config: Config, facts: CaseFacts) -> dict[str, Any]:
    """Return the values the report template may use, each with its source."""
    calendar = config.calendar
    particulars, case = facts.particulars, facts.case
    referral = f"referral received {_words(calendar.local_date(case.clock_start))}"
    dates = {m.key: m for m in facts.milestones}

    def milestone_words(key: str) -> RichText:
        milestone = dates.get(key)
        if milestone is None:
            return sourced("", "the process has no such step")
        at = milestone.done_at or milestone.due_at
        how = "done" if milestone.done_at else "planned"
        return sourced(_words(calendar.local_date(at)), f"case timeline, {how}")

    facts_lines = [(label, particulars.detail(key)) for label, key in (
        ("Summary", "summary"), ("Reason for the referral", "reason"),
        ("Address", "address"), ("Agencies named", "agencies_involved"),
        ("Referred by", "referrer_name"), ("Referring agency", "referrer_agency"))
        if particulars.detail(key)]
    referral_facts = RichText()
    for label, value in facts_lines:
        referral_facts.add(f"{label}: {value}\n")
    referral_facts.add(f"[{referral}]", color=SOURCE_COLOUR, italic=True, size=16)
    return {
        "ref": case.reference,
        "child_name": sourced(particulars.child_name, referral),
        "child_dob": sourced(particulars.dob_words, referral),
        "incident_date": sourced(incident_words(particulars), referral),
        "referral_date": sourced(_words(calendar.local_date(case.clock_start)),
                                 "the referral's arrival in the mailbox"),
        "notified_date": milestone_words("notify_national_panel"),
        "meeting_date": milestone_words("rr_meeting"),
        "family": [{**{key: member.get(key, "") for key in ("name", "relationship", "address",
                                                           "dob")}, "source": referral}
                   for member in particulars.family],
        "agencies": _agency_rows(facts),
        "no_contact": sourced(", ".join(
            facts.agency_names.get(r.agency_key, r.agency_key) for r in facts.requests
            if r.status == "no_involvement"), "agencies' replies", empty="none so far"),
        "referral_facts": referral_facts,
        "overviews": _overviews(facts),
        "gaps": sourced(_gaps(facts), "agency requests and returns read by the bot",
                        empty="none"),
        "documentation": sourced("; ".join(_documentation(facts)), "documents on the case"),
        "process_dates": _process_dates(calendar, dates),
        "chronology": [{
            "date": entry.row.date_text, "time": entry.row.time.strftime("%H:%M")
            if entry.row.time else "", "agency": entry.row.agency, "event": entry.row.event,
            "source": f"{entry.row.source} ({entry.row.origin})"}
            for entry in facts.chronology.entries],
    }


def _agency_rows(facts: CaseFacts) -> list[dict[str, str]]:
    read = {contents.agency: contents for contents in facts.returns}
    rows = []
    for request in facts.requests:
        name = facts.agency_names.get(request.agency_key, request.agency_key)
        contents = read.get(name)
        involvement = contents.involvement if contents else None
        rows.append({
            "name": name, "asked": "yes", "reply": (request.reply_kind or "awaited").replace(
                "_", " "),
            "involvement": "no" if request.status == "no_involvement" or involvement is False
            else "yes" if involvement else "not stated",
            "read": contents.status.replace("_", " ") if contents else "-",
        })
    return rows


def _overviews(facts: CaseFacts) -> list[dict[str, RichText]]:
    overviews = []
    for contents in facts.returns:
        summary = contents.summary
        if not summary and not contents.rows:
            continue
        text = RichText()
        text.add(f"{contents.agency}: ", bold=True)
        for _label, value in summary:
            text.add(f"{value}\n")
        if not summary:
            text.add(f"no summary given; {len(contents.rows)} chronology row(s).\n")
        labels = "; ".join(label for label, _value in summary) or "its chronology"
        text.add(f"[{contents.filename}: {labels}]", color=SOURCE_COLOUR, italic=True,
                 size=16)
        overviews.append({"text": text})
    return overviews


def _gaps(facts: CaseFacts) -> str:
    lines = [f"{facts.agency_names.get(r.agency_key, r.agency_key)} has not returned"
             for r in facts.requests if r.status == "open"]
    lines += [f"{c.filename} from {c.agency} could not be read ({c.why_unreadable()})"
              for c in facts.chronology.unreadable]
    return "; ".join(lines)


def _documentation(facts: CaseFacts) -> list[str]:
    names = ["the referral form"]
    names += [f"{contents.agency}'s return ({contents.filename})" for contents in facts.returns]
    names.append("the combined multi-agency chronology (appendix)")
    return names


def _process_dates(calendar: Any, dates: dict[str, Milestone]) -> RichText:
    text = RichText()
    for key in PROCESS_MILESTONES:
        milestone = dates.get(key)
        if milestone is None:
            continue
        at = milestone.done_at or milestone.due_at
        how = "done" if milestone.done_at else "due"
        text.add(f"{milestone.label}: {how} {_words(calendar.local_date(at))}\n")
    text.add("[case timeline]", color=SOURCE_COLOUR, italic=True, size=16)
    return text


def _words(day: Any) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"

"""The child's and family's particulars from the referral, kept for the papers that need them."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, select

from bot.cases.referral_form import initials, normal_label, read_form
from bot.mail.mime import FoundAttachment
from bot.papers.archive import Refused
from bot.papers.dates import in_words
from bot.papers.wordforms import family_members
from bot.store.models import Case, CaseParticulars

log = logging.getLogger(__name__)

# Fields the papers use beyond those intake requires, by how the seed forms label them.
EXTRA_LABELS: dict[str, re.Pattern[str]] = {
    "gender": re.compile(r"^(gender|sex)\b"),
    "ethnicity": re.compile(r"^ethnic(ity| origin)?\b"),
    "faith": re.compile(r"^(faith|religion)"),
    "disability": re.compile(r"^disability"),
    "incident_location": re.compile(r"^address of (the )?location of (the )?incident"),
    "summary": re.compile(r"^(please provide a )?brief (outline|overview|synopsis)|"
                          r"^summary of the case|^case background"),
}
# What intake reads that the papers carry over as written.
INTAKE_FIELDS = ("address", "incident_date", "reason", "agencies_involved", "referrer_name",
                 "referrer_agency")
MAX_VALUE = 2000


@dataclass(frozen=True)
class Particulars:
    """The child and family as the referral gives them (empty strings where it does not)."""

    reference: str
    child_name: str
    child_initials: str
    child_dob: date | None
    details: dict[str, Any] = field(default_factory=dict)

    def detail(self, key: str) -> str:
        """Return one field read from the referral, "" when it gave none."""
        return str(self.details.get(key) or "")

    @property
    def family(self) -> list[dict[str, str]]:
        """Return the family members and significant others the referral lists."""
        return list(self.details.get("family") or [])

    @property
    def dob_words(self) -> str:
        """Return the child's date of birth in words ("14 July 2019")."""
        return f"{self.child_dob.day} {self.child_dob:%B %Y}" if self.child_dob else ""

    def names(self) -> dict[str, str]:
        """Return every name of the child and family, longest first, with its initials."""
        people = [self.child_name, *(member.get("name", "") for member in self.family)]
        found: dict[str, str] = {}
        for person in people:
            person = " ".join(person.split())
            if not person:
                continue
            found[person] = initials(person)
            for part in re.split(r"[\s-]+", person):
                if len(part) > 1 and part[0].isupper():
                    found.setdefault(part, part[0] + ".")
        return dict(sorted(found.items(), key=lambda pair: -len(pair[0])))


def read_particulars(
    pairs: Iterable[tuple[str, str]], files: Iterable[FoundAttachment]
) -> dict[str, Any]:
    """Read what the papers need from a referral: its labelled fields and its family table."""
    pairs = list(pairs)
    form = read_form(pairs)
    details: dict[str, Any] = {key: form.fields[key][:MAX_VALUE] for key in INTAKE_FIELDS
                               if form.fields.get(key)}
    for label, value in pairs:
        normal = normal_label(label)
        for key, pattern in EXTRA_LABELS.items():
            if key not in details and value.strip() and pattern.search(normal):
                details[key] = " ".join(value.split())[:MAX_VALUE]
                break
    family: list[dict[str, str]] = []
    for found in files:
        if found.suffix != ".docx":
            continue
        try:
            family.extend(family_members(found.content))
        except (Refused, ValueError, KeyError, OSError) as error:
            # Only the error's kind is logged: the form names the child.
            log.warning("a referral form's family table could not be read: %s",
                        type(error).__name__)
    if family:
        details["family"] = family
    return details


def record_particulars(
    session: Session, case: Case, details: dict[str, Any], now: datetime
) -> CaseParticulars:
    """Keep the particulars read from a case's referral (one row per case, replaced)."""
    row = session.exec(select(CaseParticulars).where(
        CaseParticulars.case_id == case.id)).first()
    if row is None:
        row = CaseParticulars(partnership=case.partnership, case_id=case.id or 0,
                              details=details, recorded_at=now)
    else:
        row.details, row.recorded_at = details, now
    session.add(row)
    session.flush()
    return row


def load_particulars(session: Session, case: Case) -> Particulars:
    """Return what the case knows of the child and family."""
    row = session.exec(select(CaseParticulars).where(
        CaseParticulars.case_id == case.id)).first()
    return Particulars(reference=case.reference, child_name=case.child_name or "",
                       child_initials=case.child_initials or "", child_dob=case.child_dob,
                       details=dict(row.details) if row else {})


def incident_words(particulars: Particulars) -> str:
    """Return the incident's date as the referral gives it, in words when it reads as one."""
    from bot.cases.referral_form import parse_date

    written = particulars.detail("incident_date")
    return in_words(parse_date(written)) or written

"""Threading: which case a message belongs to, by what we sent, its subject, or its sender."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from functools import lru_cache

from sqlmodel import Session, col, select

from bot.agencies.directory import agency_for_sender
from bot.agencies.requests import open_requests_for_agency
from bot.config import Config
from bot.mail.mime import header, message_ids, subject
from bot.store.models import Case, OutboxMessage


@dataclass(frozen=True)
class CaseMatch:
    """The case a message belongs to and how that was found (references, subject, agency)."""

    case: Case
    how: str


@lru_cache(maxsize=8)
def tag_pattern(prefix: str) -> re.Pattern[str]:
    """Match a case reference such as RR-2026-007 anywhere in a subject."""
    return re.compile(rf"(?<![A-Za-z0-9-])({re.escape(prefix)}-\d{{4}}-\d{{3,}})(?![0-9])",
                      re.IGNORECASE)


def case_references(config: Config, text: str) -> list[str]:
    """Return the case references in a subject, whatever RE:, FW: or helpdesk tags surround them."""
    prefix = config.settings.partnership.case_reference_prefix
    return list(dict.fromkeys(found.upper() for found in tag_pattern(prefix).findall(text)))


def replied_to(message: Message) -> list[str]:
    """Return the Message-IDs a message answers: In-Reply-To first, then References newest first."""
    ids = message_ids(header(message, "In-Reply-To"))
    ids += list(reversed(message_ids(header(message, "References"))))
    return list(dict.fromkeys(ids))


def find_case(
    session: Session, config: Config, message: Message, sender: str | None
) -> CaseMatch | None:
    """Find the case a message is about, or None when nothing ties it to one."""
    partnership = config.settings.partnership.key
    ids = replied_to(message)
    if ids:
        sent = session.exec(select(OutboxMessage.message_id, OutboxMessage.case_id).where(
            col(OutboxMessage.message_id).in_(ids), col(OutboxMessage.case_id).is_not(None),
            OutboxMessage.partnership == partnership,
        )).all()
        by_id = {message_id: case_id for message_id, case_id in sent}
        for message_id in ids:
            if message_id in by_id and by_id[message_id] is not None:
                return CaseMatch(session.get_one(Case, by_id[message_id]), "references")
    for reference in case_references(config, subject(message)):
        case = session.exec(select(Case).where(
            Case.reference == reference, Case.partnership == partnership)).first()
        if case is not None:
            return CaseMatch(case, "subject")
    if sender:
        agency = agency_for_sender(session, config, sender)
        if agency is not None:
            cases = {request.case_id for request in open_requests_for_agency(session, agency.key)}
            if len(cases) == 1:
                return CaseMatch(session.get_one(Case, cases.pop()), "agency")
    return None

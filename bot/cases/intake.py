"""What a new referral is: how it is recognised, what its form says, who referred it."""

from __future__ import annotations

import re
from email.message import EmailMessage

from bot.cases.referral_form import ReferralForm, label_lines, read_docx, read_form
from bot.config import Config
from bot.mail.mime import FoundAttachment, body_text, subject

REFERRAL_WORDS = re.compile(
    r"\b(referral|notification|serious (child )?safeguarding (case|incident)|"
    r"serious incident|rapid review request)\b", re.IGNORECASE)
FORM_NAME = re.compile(r"referral|notification|serious.?incident", re.IGNORECASE)
FORWARDED_FROM = re.compile(
    r"(?im)^\s*\*?from:\*?\s*(?:\"?[^\n<\"]*\"?\s*)?<?([A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+)>?")
# Words in the BM's own subject that mark a report being uploaded (a later handler's mail).
REPORT_WORD = re.compile(r"\bREPORT\b")


def is_report_upload(config: Config, sender: str | None, message: EmailMessage) -> bool:
    """Say whether this is the business manager sending a report (left for its own handler)."""
    manager = config.settings.business_manager.email.lower()
    return sender == manager and bool(REPORT_WORD.search(subject(message)))


def looks_like_referral(message: EmailMessage, files: list[FoundAttachment]) -> bool:
    """Say whether a message is a referral: a form attached, or its words say so."""
    if any(FORM_NAME.search(found.filename) for found in files):
        return True
    if REFERRAL_WORDS.search(subject(message)):
        return True
    return bool(REFERRAL_WORDS.search(body_text(message)[:5000]))


def referral_form(message: EmailMessage, files: list[FoundAttachment]) -> ReferralForm:
    """Read the referral's fields from its .docx forms, then from "Label: value" body lines."""
    return read_form(referral_pairs(message, files))


def referral_pairs(message: EmailMessage, files: list[FoundAttachment]) -> list[tuple[str, str]]:
    """Return the referral's (label, value) pairs: its .docx forms', then its body's."""
    pairs: list[tuple[str, str]] = []
    for found in files:
        if found.suffix == ".docx":
            pairs.extend(read_docx(found.content))
    pairs.extend(label_lines(body_text(message)))
    return pairs


def forwarded_referrer(message: EmailMessage, ignore: set[str]) -> str | None:
    """Return the original sender of a forwarded referral, when the forward shows one."""
    for found in FORWARDED_FROM.finditer(body_text(message)):
        address = found.group(1).lower()
        if address not in ignore:
            return address
    return None

"""What a new referral is: how it is recognised, what its form says, who referred it."""

from __future__ import annotations

import re
from email.message import EmailMessage

from bot.cases.referral_form import ReferralForm, label_lines, read_docx, read_form
from bot.config import Config
from bot.mail.mime import FoundAttachment, address_in, body_text, subject

REFERRAL_WORDS = re.compile(
    r"\b(referral|notification|serious (child )?safeguarding (case|incident)|"
    r"serious incident|rapid review request)\b", re.IGNORECASE)
# The words that make a subject a referral's even on automatic mail ("notification" alone is
# what every system's notices say).
REFERRAL_SUBJECT = re.compile(
    r"\b(referral|serious (child )?safeguarding (case|incident)|serious incident|"
    r"rapid review request)\b", re.IGNORECASE)
FORM_NAME = re.compile(r"referral|notification|serious.?incident", re.IGNORECASE)
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


def names_referral(message: EmailMessage, files: list[FoundAttachment]) -> bool:
    """Say whether a message names itself a referral: a form attached, or its subject says so.

    Its body is not enough here: a newsletter may mention referrals in passing.
    """
    return any(FORM_NAME.search(found.filename) for found in files) or bool(
        REFERRAL_SUBJECT.search(subject(message)))


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
    # Line by line, with no pattern over the line: a forward's header block says
    # "From: Name <address>" (Outlook may write "*From:*").
    for line in body_text(message).splitlines():
        label, colon, rest = line.strip().lstrip("*").partition(":")
        if not colon or label.strip().lower() != "from":
            continue
        address = address_in(rest.lstrip("*"))
        if address and address not in ignore:
            return address
    return None

"""An agency's reply on a case: a return, "no involvement", an extension request or a question."""

from __future__ import annotations

import re
from email.message import EmailMessage

from bot.agencies.directory import agency_for_sender
from bot.agencies.requests import record_agency_reply
from bot.cases.correspondence import find_case
from bot.cases.documents import store_document
from bot.cases.intake import looks_like_referral
from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.mime import FoundAttachment, attachments, new_text, sender_address
from bot.papers.collation import plan_reading
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus, VouchedAs

name = "agency_reply"
# Runs before referral intake, so that a reply on a case never opens a new one.
order = 70
# A message the business manager releases with --as return comes here.
vouched_as = VouchedAs.RETURN

NO_INVOLVEMENT = re.compile(
    r"\b(not known to (us|this (service|agency|trust|practice|team|school))|"
    r"no (involvement|records?|trace|information held|knowledge|contact|history)|"
    r"nil (return|response)|have not been involved|has not been involved|"
    r"no record of|not (been )?open to (us|our service)|not registered with)\b",
    re.IGNORECASE)
EXTENSION = re.compile(
    r"\b(extension|extend(ed)? (the )?(deadline|date)|more time|additional time|"
    r"further time|(unable|not be able) to (meet|return) .{0,40}(deadline|by)|"
    r"later (date|deadline))\b", re.IGNORECASE)


def reply_kind(message: EmailMessage, files: list[FoundAttachment]) -> str:
    """Read what an agency's reply is: return, no_involvement, extension_request or question."""
    if files:
        return "return"
    text = new_text(message)
    if NO_INVOLVEMENT.search(text):
        return "no_involvement"
    if EXTENSION.search(text):
        return "extension_request"
    return "question"


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Apply an agency's reply to its request on the case it belongs to."""
    config = context.config
    sender = sender_address(message)
    agency = agency_for_sender(context.session, config, sender) if sender else None
    # A report upload never gets here: the report_upload handler (65) takes every one.
    if agency is None:
        return None
    files = attachments(message)
    match = find_case(context.session, config, message, sender)
    # A referral from an agency with one open request elsewhere is still a new referral.
    if ((match is None or match.how == "agency") and row.vouched_as != VouchedAs.RETURN
            and looks_like_referral(message, files)):
        return None
    if match is None:
        return Outcome(InboundStatus.QUARANTINED, "agency_reply",
                       f"from the agency {agency.key}, but it names no case and is not a "
                       "referral")
    case = match.case
    allowed = config.settings.intake.allowed_attachment_types
    refused = sorted({found.suffix or found.content_type for found in files
                      if found.suffix not in allowed})
    if refused:
        return Outcome(InboundStatus.QUARANTINED, "agency_reply",
                       f"from the agency {agency.key} on {case.reference} with an attachment "
                       f"of a kind not accepted ({', '.join(refused)})", case_id=case.id)
    kind = reply_kind(message, files)
    stored = [store_document(context.session, config, case, found, "agency_return", context.now)
              for found in files]
    request = record_agency_reply(context.session, config, case, agency.key, kind,
                                  row.received_at, actor=f"agency:{agency.key}",
                                  inbound_id=row.id)
    if request is None:
        return Outcome(InboundStatus.QUARANTINED, "agency_reply",
                       f"the agency {agency.key} replied on {case.reference} ({kind}), but the "
                       "case has not asked it", case_id=case.id)
    # The files are read in the step's due actions, apart from this message's handling.
    plan_reading(context.session, case, agency.key, stored, context.now)
    return Outcome(InboundStatus.PROCESSED, f"agency_{kind}", f"matched by {match.how}",
                   case_id=case.id)

"""The business manager's report versions by email: [case tag] and REPORT in the subject."""

from __future__ import annotations

from email.message import EmailMessage

from bot.cases.correspondence import find_case
from bot.cases.intake import is_report_upload
from bot.engine.pipeline import InboundContext, Outcome
from bot.mail.mime import attachments, sender_address
from bot.report.submission import REPORT_SUFFIXES, add_report_version
from bot.store.models import InboundMessage
from bot.store.statuses import InboundStatus, VouchedAs

name = "report_upload"
# After sender verification (50), before agency replies (70) and referrals (80).
order = 65
# A message the business manager releases with --as report comes here.
vouched_as = VouchedAs.REPORT


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Store the attached report as a new version of the case it names."""
    vouched = row.vouched_as == VouchedAs.REPORT
    if not vouched and not is_report_upload(context.config, sender_address(message), message):
        return None
    match = find_case(context.session, context.config, message, None)
    if match is None:
        return Outcome(InboundStatus.QUARANTINED, "report_upload",
                       "a report that names no case")
    reports = [found for found in attachments(message) if found.suffix in REPORT_SUFFIXES]
    if len(reports) != 1:
        return Outcome(InboundStatus.QUARANTINED, "report_upload",
                       f"a report email needs exactly one .docx or .pdf (found {len(reports)})",
                       case_id=match.case.id)
    try:
        add_report_version(context.session, context.config, match.case, reports[0].filename,
                           reports[0].content, context.now, actor="business_manager")
    except ValueError as refused:
        return Outcome(InboundStatus.QUARANTINED, "report_upload", str(refused),
                       case_id=match.case.id)
    return Outcome(InboundStatus.PROCESSED, "report_upload", case_id=match.case.id)

"""Referral intake: open a case, acknowledge the referrer, copy the partners, check the form."""

from __future__ import annotations

import json
from email.message import EmailMessage

from sqlmodel import select

from bot.ballots.lifecycle import ballot_for_case
from bot.ballots.links import vote_link
from bot.ballots.members import member_by_email
from bot.ballots.views import OPTIONS
from bot.cases.correspondence import find_case
from bot.cases.documents import store_document
from bot.cases.intake import (
    forwarded_referrer,
    looks_like_referral,
    referral_form,
    referral_pairs,
)
from bot.cases.lifecycle import mark_milestone_done, open_case
from bot.cases.referral_form import ReferralForm, initials, named_agencies
from bot.config import Config
from bot.engine.pipeline import InboundContext, Outcome
from bot.kernel import audit
from bot.kernel.outbox import Attachment
from bot.mail.mime import FoundAttachment, attachments, sender_address
from bot.mail.notify import notify
from bot.papers.particulars import read_particulars, record_particulars
from bot.store.models import Case, InboundMessage, Milestone
from bot.store.statuses import BallotKind, InboundStatus, VouchedAs

name = "referral"
order = 80
# A message the business manager releases with --as referral comes here.
vouched_as = VouchedAs.REFERRAL

# How each required field is named to people (never with its value).
FIELD_NAMES = {
    "child_name": "child's name", "child_dob": "date of birth", "address": "home address",
    "incident_date": "date of the incident", "agencies_involved": "agencies involved",
    "reason": "reason for the referral", "referrer_name": "referrer's name",
    "referrer_agency": "referrer's agency",
}
FORM_SUBTYPES = {
    ".docx": "vnd.openxmlformats-officedocument.wordprocessingml.document", ".pdf": "pdf",
    ".xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def process(context: InboundContext, row: InboundMessage, message: EmailMessage) -> Outcome | None:
    """Open a case for a new referral from a known sender; flag other mail about a case."""
    config = context.config
    sender = sender_address(message)
    # A report upload never gets here: the report_upload handler (65) takes every one.
    if sender is None:
        return None
    if sender == config.settings.national_panel.email.lower():
        return None
    match = find_case(context.session, config, message, None)
    if match is not None:
        who = config.settings.known_sender(sender)
        return Outcome(InboundStatus.QUARANTINED, "case_mail",
                       f"a message on {match.case.reference} from {who} that no handler took",
                       case_id=match.case.id)
    files = attachments(message)
    # The business manager's word that it is a referral stands for its words or its form.
    if row.vouched_as != VouchedAs.REFERRAL and not looks_like_referral(message, files):
        return None
    case = take_referral(context, row, message, sender, files)
    return Outcome(InboundStatus.PROCESSED, "referral", case_id=case.id)


def take_referral(
    context: InboundContext, row: InboundMessage, message: EmailMessage, sender: str,
    files: list[FoundAttachment],
) -> Case:
    """Open the case on the referral's arrival and queue what must go out at once."""
    session, config, now = context.session, context.config, context.now
    settings = config.settings
    referrer = sender
    if sender == settings.business_manager.email.lower():
        ours = {sender, settings.mailbox.address.lower()}
        referrer = forwarded_referrer(message, ours) or sender
    case = open_case(session, config, clock_start=row.received_at, now=now, actor="bot",
                     referrer_email=referrer)
    form = referral_form(message, files)
    _record_child(case, config, form)
    session.add(case)
    # The address and family go where the papers read them, never into logs or chat.
    record_particulars(session, case, read_particulars(referral_pairs(message, files), files),
                       now)
    allowed = settings.intake.allowed_attachment_types
    kept = [found for found in files if found.suffix in allowed]
    for found in kept:
        store_document(session, config, case, found, "referral_form", now)
    missing = form.missing(settings.intake.required_fields)
    audit.record(session, case.partnership, "bot", "referral_received", now, case.id,
                 inbound_id=row.id, referrer=referrer, attachments=len(kept),
                 missing=missing)
    _acknowledge(context, case, row, referrer)
    _copy_partners(context, case, row, referrer, kept, missing)
    if missing:
        _flag_incomplete(context, case, row, referrer, missing)
    return case


def _record_child(case: Case, config: Config, form: ReferralForm) -> None:
    # The child's identity goes only into the case's own columns, never into logs or mail.
    name = form.fields.get("child_name", "").strip()
    if name:
        case.child_name = name[:200]
        case.child_initials = initials(name)
    case.child_dob = form.child_dob
    agencies = named_agencies(form.fields.get("agencies_involved", ""),
                              config.settings.agencies)
    case.named_agencies = json.dumps(agencies)


def _acknowledge(context: InboundContext, case: Case, row: InboundMessage, referrer: str) -> None:
    config = context.config
    settings = config.settings
    notify(context.session, context.config, "referral_ack", to=[referrer],
           key=f"{case.reference}:referral_ack", now=context.now, case_id=case.id,
           in_reply_to=row.message_id, auto_submitted="auto-replied", values=dict(
               case_reference=case.reference, received_at=row.received_at,
               partnership=settings.partnership.name, mailbox=settings.mailbox.address))
    _done(context, case, "acknowledge")


def _copy_partners(
    context: InboundContext, case: Case, row: InboundMessage, referrer: str,
    kept: list[FoundAttachment], missing: list[str],
) -> None:
    config = context.config
    settings = config.settings
    members = [person for partner in settings.partners.by_key().values()
               for person in (partner.lead, *partner.deputies)]
    files = [Attachment(found.filename, found.content, "application",
                        FORM_SUBTYPES.get(found.suffix, "octet-stream")) for found in kept]
    if not files:
        # With no form, the referral email itself goes to the partners.
        files = [Attachment("referral.eml", row.raw, "application", "octet-stream")]
    decision = context.session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == "partner_decision")).first()
    ballot = ballot_for_case(context.session, case, BallotKind.DECISION)
    # With the cockpit's public address, each member gets a copy with a vote link of their own.
    personal = bool(settings.web.base_url) and ballot is not None
    for group in ([[person] for person in members] if personal else [members]):
        voter = member_by_email(config, group[0].email) if personal else None
        vote_url = vote_link(context.session, config, ballot, voter) if (
            ballot and voter) else None
        notify(context.session, context.config, "referral_copy",
               to=[person.email for person in group],
               key=f"{case.reference}:referral_copy" + (f":{group[0].email.lower()}"
                                                        if personal else ""),
               now=context.now, case_id=case.id, attachments=files, values=dict(
                   case_reference=case.reference, received_at=row.received_at,
                   day0=f"{case.day0:%A} {case.day0.day} {case.day0:%B %Y}", referrer=referrer,
                   decision_due=decision.due_at if decision else None,
                   recipient_names=", ".join(person.name for person in group),
                   attached=", ".join(found.filename for found in kept),
                   missing=", ".join(FIELD_NAMES[field] for field in missing),
                   vote_choices=[option.label for option in OPTIONS[BallotKind.DECISION]],
                   in_slack=settings.chat.backend == "slack", vote_url=vote_url or ""))
    _done(context, case, "partners_copied")


def _flag_incomplete(
    context: InboundContext, case: Case, row: InboundMessage, referrer: str, missing: list[str]
) -> None:
    settings = context.config.settings
    manager = settings.business_manager
    people = [(manager.email, manager.name, False)]
    if settings.intake.return_incomplete and referrer != manager.email.lower():
        people.append((referrer, "colleague", True))
    for address, greeting, to_referrer in people:
        notify(
            context.session, context.config, "incomplete_referral", to=[address],
            key=f"{case.reference}:incomplete:{'referrer' if to_referrer else 'manager'}",
            now=context.now, case_id=case.id,
            in_reply_to=row.message_id if to_referrer else None,
            auto_submitted="auto-replied" if to_referrer else "auto-generated", values=dict(
                case_reference=case.reference, received_at=row.received_at,
                missing=[FIELD_NAMES[field] for field in missing], missing_count=len(missing),
                recipient_names=greeting, to_referrer=to_referrer,
                mailbox=settings.mailbox.address))


def _done(context: InboundContext, case: Case, key: str) -> None:
    if key in {milestone.key for milestone in context.config.preset.milestones}:
        mark_milestone_done(context.session, context.config, case, key, context.now, "bot")

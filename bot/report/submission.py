"""The report: versions, and its submission to the National Panel before the cut-off, once."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from bot.agencies.directory import find_agency
from bot.ballots.lifecycle import open_signoff_ballot
from bot.ballots.members import PARTNER_LABELS, members
from bot.cases.documents import store_document
from bot.cases.lifecycle import mark_milestone_done
from bot.cases.states import TRANSITIONS, transition
from bot.config import Config
from bot.kernel import audit
from bot.kernel.actions import ActionArguments, ActionPlan, plan_action, plan_actions
from bot.kernel.events import publish
from bot.kernel.outbox import Attachment, Queued
from bot.mail.mime import FoundAttachment
from bot.mail.notify import notify
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import london_time
from bot.store.models import Ballot, Case, Document, Milestone, OutboxMessage, Vote
from bot.store.statuses import BallotKind, CaseStatus, OutboxStatus

REPORT_SUFFIXES = {".docx": "vnd.openxmlformats-officedocument.wordprocessingml.document",
                   ".pdf": "pdf"}
# How long after the send the bot looks for the submission in Sent, and how often again.
CONFIRM_AFTER = timedelta(minutes=5)
CONFIRM_ATTEMPTS = 12


# The partners' recommendations a report can make, as the covering email words them.
REVIEW_RECOMMENDATIONS = {
    "local": "a local child safeguarding practice review",
    "national": "a national review, for the National Panel to consider",
    "none": "no further review",
}


class SubmissionRefused(Exception):
    """The report may not go: no approved version, a changed file, or past the cut-off."""


class SubmissionCheck(ActionArguments):
    """Which at-risk warning a check before the cut-off gives: no_report, not_sent, ..."""

    check: str


class SubmissionConfirmation(ActionArguments):
    """A look in Sent for a submission: its outbox key, the looks so far, the waits since."""

    outbox_key: str
    looks: int
    waits: int


def confirmation_key(confirmation: SubmissionConfirmation) -> str:
    """Return a look's planned action key: the counters end it, "3" or "3.2" after waits."""
    waits = f".{confirmation.waits}" if confirmation.waits else ""
    return f"{confirmation.outbox_key}:confirm:{confirmation.looks}{waits}"


def plan_confirmation(
    session: Session, case: Case, confirmation: SubmissionConfirmation, due_at: datetime
) -> None:
    """Plan a look in Sent for a submission."""
    plan_action(session, partnership=case.partnership, case_id=case.id,
                key=confirmation_key(confirmation), action_name="confirm_submission",
                arguments=confirmation, due_at=due_at)


def add_report_version(
    session: Session, config: Config, case: Case, filename: str, content: bytes, now: datetime,
    actor: str,
) -> Document:
    """Store a report version and open its sign-off ballot (which sends it to the partners)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ValueError(f"a report must be .docx or .pdf, not {suffix or 'no extension'}")
    if case.status in {CaseStatus.SUBMITTED, CaseStatus.CLOSED}:
        raise ValueError(f"{case.reference} is {case.status}; no new report version is taken")
    if not content:
        raise ValueError(f"{filename} is empty; no new report version is taken")
    earlier = session.exec(select(Document).where(
        Document.case_id == case.id, Document.kind == "report")).all()
    document = store_document(session, config, case, FoundAttachment(
        filename, content, f"application/{REPORT_SUFFIXES[suffix]}"), "report", now)
    if document.id in {d.id for d in earlier}:
        return document
    audit.record(session, case.partnership, actor, "report_version", now, case.id,
                 sha256=document.sha256, version=len(earlier) + 1, size=document.size)
    if not earlier and "draft_report" in {m.key for m in config.preset.milestones}:
        mark_milestone_done(session, config, case, "draft_report", now, actor)
    if CaseStatus.DRAFT_REPORT in TRANSITIONS[case.status]:
        transition(session, case, CaseStatus.DRAFT_REPORT, actor, now)
    open_signoff_ballot(session, config, case, document.sha256, now)
    return document


def approved_ballot(session: Session, case: Case, report_sha256: str) -> Ballot | None:
    """Return the sign-off ballot that approved exactly this version, if one did."""
    return session.exec(select(Ballot).where(
        Ballot.case_id == case.id, Ballot.kind == BallotKind.SIGNOFF, Ballot.outcome == "approve",
        Ballot.report_sha256 == report_sha256,
    )).first()


def submission_key(case: Case, report_sha256: str) -> str:
    """Return the outbox key of a submission: one report version is submitted at most once."""
    return f"{case.reference}:submission:{report_sha256[:16]}"


def queue_submission(
    session: Session, config: Config, case: Case, report_sha256: str, now: datetime,
    actor: str, late_go_ahead: bool = False,
) -> Queued:
    """Queue the covering email with exactly the approved version, or refuse with the reason."""
    ballot = approved_ballot(session, case, report_sha256)
    if ballot is None:
        raise SubmissionRefused(
            f"{case.reference}: no sign-off ballot approved version {report_sha256[:12]}")
    document = session.exec(select(Document).where(
        Document.case_id == case.id, Document.kind == "report",
        Document.sha256 == report_sha256)).first()
    if document is None:
        raise SubmissionRefused(f"{case.reference}: no stored report has the approved hash "
                                f"{report_sha256[:12]}")
    try:
        content = Path(document.path).read_bytes()
    except OSError as exc:
        raise SubmissionRefused(f"{case.reference}: the approved report cannot be read "
                                f"({exc.strerror})") from None
    # The file on disk must still be the one the partners approved, byte for byte.
    if hashlib.sha256(content).hexdigest() != report_sha256:
        raise SubmissionRefused(f"{case.reference}: the stored report no longer matches the "
                                "approved version; it will not be sent")
    earlier = session.exec(select(OutboxMessage).where(
        OutboxMessage.case_id == case.id, OutboxMessage.purpose == "submission")).all()
    if any(row.status in {OutboxStatus.SENT, OutboxStatus.SENDING, OutboxStatus.PENDING}
           for row in earlier):
        raise SubmissionRefused(f"{case.reference}: the report is already sent or on its way")
    cutoff = _cutoff(session, case)
    late = now > cutoff
    if late and not late_go_ahead:
        raise SubmissionRefused(
            f"{case.reference}: the cut-off passed at {london_time(cutoff)}; the business "
            "manager must give the go-ahead (rrbot report submit --late)")
    settings = config.settings
    votes = session.exec(select(Vote).where(Vote.ballot_id == ballot.id)
                         .order_by(col(Vote.cast_at))).all()
    names = {(m.partner_key, m.email.lower()): m.name for m in members(config)}
    suffix = Path(document.filename).suffix.lower()
    # A submission held at the cut-off, or given up on, is replaced, never sent as well; the
    # new one has a key of its own, or queueing it would only find the old row again.
    for replaced in earlier:
        replaced.status = OutboxStatus.SUPERSEDED
        session.add(replaced)
    key = (submission_key(case, report_sha256) + (":late" if late else "")
           + (f":attempt{len(earlier) + 1}" if earlier else ""))
    not_before = max(now, case.submission_hold_until or now)
    files = [Attachment(document.filename, content, "application",
                        REPORT_SUFFIXES.get(suffix, "octet-stream"))]
    row = notify(
        session, config, "submission", to=[settings.national_panel.email],
        cc=[settings.business_manager.email], key=key, now=now, case_id=case.id,
        attachments=files,
        not_before=not_before, send_by=None if late_go_ahead else cutoff, values=dict(
            partnership=settings.partnership.name, case_reference=case.reference,
            decision=(case.decision or "rapid_review").replace("_", " "),
            rationale=case.decision_rationale or "", late=late, filename=document.filename,
            recommendation=REVIEW_RECOMMENDATIONS.get(case.review_recommendation or ""),
            recommendation_rationale=case.review_rationale or "",
            report_sha256=report_sha256,
            # The case file: every attachment by name and SHA-256, for the Panel to check.
            attachments=[(file.filename, hashlib.sha256(file.content).hexdigest())
                         for file in files],
            signers=[(PARTNER_LABELS.get(v.partner_key, v.partner_key),
                      names.get((v.partner_key, v.member_email.lower()), v.member_email),
                      v.cast_at) for v in votes if v.choice == "approve"]))
    audit.record(session, case.partnership, actor, "submission_queued", now, case.id,
                 sha256=report_sha256, late=late, outbox_id=row.id)
    plan_confirmation(session, case, SubmissionConfirmation(
        outbox_key=row.idempotency_key, looks=1, waits=0), not_before + CONFIRM_AFTER)
    return row


def record_recommendation(
    session: Session, case: Case, review: str, rationale: str, now: datetime, actor: str
) -> None:
    """Record the partners' recommendation on a local or national review, for the Panel."""
    if review not in REVIEW_RECOMMENDATIONS:
        raise SubmissionRefused(f"--review: choose {', '.join(REVIEW_RECOMMENDATIONS)}")
    if not rationale.strip():
        raise SubmissionRefused("--rationale: say why the partners recommend it")
    if case.submitted_at is not None:
        raise SubmissionRefused(f"{case.reference}: the report has gone; its recommendation"
                                " is as sent")
    case.review_recommendation, case.review_rationale = review, rationale.strip()
    session.add(case)
    audit.record(session, case.partnership, actor, "review_recommended", now, case.id,
                 review=review)


def hold_submission(
    session: Session, case: Case, until: datetime, now: datetime, actor: str
) -> OutboxMessage | None:
    """Send the submission no earlier than until (never past the cut-off); return a queued one."""
    cutoff = _cutoff(session, case)
    if until >= cutoff:
        raise SubmissionRefused(
            f"{case.reference}: a hold until {london_time(until)} ends at or after the cut-off"
            f" ({london_time(cutoff)}), when the report may no longer go")
    case.submission_hold_until = until
    session.add(case)
    queued = _waiting_submission(session, case)
    # A submission already queued waits too: the hold is not only for one queued later.
    if queued is not None:
        queued.next_attempt_at = max(queued.next_attempt_at, until)
        session.add(queued)
    audit.record(session, case.partnership, actor, "submission_held", now, case.id,
                 until=until, outbox_id=queued.id if queued else None)
    return queued


def release_submission(
    session: Session, case: Case, now: datetime, actor: str
) -> OutboxMessage | None:
    """Let a queued submission waiting for a hold go at once; None if none is waiting."""
    queued = _waiting_submission(session, case)
    if queued is None or queued.next_attempt_at <= now:
        return None
    case.submission_hold_until = None
    queued.next_attempt_at = now
    session.add_all([case, queued])
    audit.record(session, case.partnership, actor, "submission_released", now, case.id,
                 outbox_id=queued.id)
    return queued


def _waiting_submission(session: Session, case: Case) -> OutboxMessage | None:
    return session.exec(select(OutboxMessage).where(
        OutboxMessage.case_id == case.id, OutboxMessage.purpose == "submission",
        OutboxMessage.status == OutboxStatus.PENDING)).first()


def record_submitted(
    session: Session, config: Config, case: Case, row: OutboxMessage, now: datetime
) -> None:
    """Record the submission found in Sent, close its milestone, tell whom the preset says."""
    assert row.sent_at is not None
    cutoff = _cutoff(session, case)
    case.submitted_at, case.submitted_late = row.sent_at, row.sent_at > cutoff
    session.add(case)
    mark_milestone_done(session, config, case, SUBMISSION_KEY, row.sent_at, "bot")
    if CaseStatus.SUBMITTED in TRANSITIONS[case.status]:
        transition(session, case, CaseStatus.SUBMITTED, "bot", now)
    # The case now waits for the Panel's response (a local review already commissioned keeps
    # the case in its own status).
    if CaseStatus.AWAITING_PANEL_RESPONSE in TRANSITIONS[case.status]:
        transition(session, case, CaseStatus.AWAITING_PANEL_RESPONSE, "bot", now)
    audit.record(session, case.partnership, "bot", "submission_confirmed", now, case.id,
                 sent_at=row.sent_at, late=case.submitted_late, message_id=row.message_id)
    rules = config.preset.submission
    people = [(m.name, m.email) for m in members(config)]
    if rules.notify_referrer and case.referrer_email:
        people.append(("Referrer", case.referrer_email))
    if rules.notify_agencies:
        from bot.store.models import AgencyRequest

        asked = {r.agency_key for r in session.exec(select(AgencyRequest).where(
            AgencyRequest.case_id == case.id))}
        people += [(c.name, c.email) for key in sorted(asked)
                   for c in find_agency(session, config, key).contacts]
    for name, address in dict((email, (name, email)) for name, email in people).values():
        notify(session, config, "submission_outcome", to=[address],
               key=f"{case.reference}:submitted:{address.lower()}", now=now, case_id=case.id,
               values=dict(recipient_name=name, case_reference=case.reference,
                           sent_at=row.sent_at, late=case.submitted_late))
    publish("case_submitted", session, config, case, now)


def plan_risk_checks(session: Session, config: Config, case: Case) -> None:
    """Plan the at-risk warnings before the cut-off, on the preset's offsets."""
    from bot.process.timeline import reminder_at

    rules = config.preset.submission
    cutoff = _cutoff(session, case)
    signoff = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == "partner_signoff")).first()
    checks = {
        "no_report": reminder_at(config.calendar, cutoff, rules.no_report_warning),
        "not_sent": reminder_at(config.calendar, cutoff, rules.not_sent_warning),
        "unconfirmed": reminder_at(config.calendar, cutoff, rules.unconfirmed_warning),
    }
    if signoff is not None:
        checks["no_quorum"] = signoff.due_at
    plan_actions(session, [
        ActionPlan(case.partnership, case.id, f"{case.reference}:risk:{check}",
                   "submission_risk", SubmissionCheck(check=check), at)
        for check, at in checks.items()
    ])


def _cutoff(session: Session, case: Case) -> datetime:
    return session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == SUBMISSION_KEY)).one().due_at


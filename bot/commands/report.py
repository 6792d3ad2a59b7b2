"""The Rapid Review report: add a version, record the recommendation, hold or submit it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.commands.base import MANAGERS, CommandError, Context, case_named, domain_errors, require
from bot.kernel import audit
from bot.report import submission
from bot.store.models import Ballot
from bot.store.statuses import BallotKind

MANAGER_ONLY = "Sorry, only the partnership's business manager can change the report."


@dataclass(frozen=True)
class AddReportVersion:
    """A new version of a case's report (.docx or .pdf), to send for sign-off."""

    case_reference: str
    filename: str
    content: bytes


@dataclass(frozen=True)
class ReportVersionAdded:
    """The stored version, named by its SHA-256."""

    case_reference: str
    sha256: str


@dataclass(frozen=True)
class RecordRecommendation:
    """The partners' recommendation on a further review ("local", "national" or "none")."""

    case_reference: str
    review: str
    rationale: str


@dataclass(frozen=True)
class HoldSubmission:
    """Send the submission no earlier than until."""

    case_reference: str
    until: datetime


@dataclass(frozen=True)
class SubmissionHeld:
    """Whether a submission already queued now waits, or one queued later will."""

    case_reference: str
    until: datetime
    queued_waits: bool


@dataclass(frozen=True)
class SubmitReport:
    """Send the approved version now; late says go ahead after the cut-off."""

    case_reference: str
    late: bool = False


@dataclass(frozen=True)
class SubmissionGoing:
    """Whether a held submission was released, or the approved version queued."""

    case_reference: str
    released: bool
    late: bool


def add_report_version(context: Context, request: AddReportVersion) -> ReportVersionAdded:
    """Store a new report version and open its sign-off ballot (sent to the partners)."""
    require(context, MANAGERS, "report-add", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        document = submission.add_report_version(context.session, context.config, case,
                                                 request.filename, request.content,
                                                 context.now, actor=context.actor.who)
    return ReportVersionAdded(case.reference, document.sha256)


def record_recommendation(context: Context, request: RecordRecommendation) -> None:
    """Record the partners' recommendation on a local or national review, for the Panel."""
    require(context, MANAGERS, "recommend", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        submission.record_recommendation(context.session, case, request.review,
                                         request.rationale, context.now,
                                         actor=context.actor.who)


def hold_submission(context: Context, request: HoldSubmission) -> SubmissionHeld:
    """Hold the submission until a time before the cut-off; a queued one waits too."""
    require(context, MANAGERS, "hold", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        queued = submission.hold_submission(context.session, case, request.until,
                                            context.now, actor=context.actor.who)
    return SubmissionHeld(case.reference, request.until, queued is not None)


def submit_report(context: Context, request: SubmitReport) -> SubmissionGoing:
    """Let a held submission go now, or queue the approved version (late: flagged, audited)."""
    require(context, MANAGERS, "submit", MANAGER_ONLY)
    session, actor = context.session, context.actor.who
    case = case_named(context, request.case_reference)
    approved = session.exec(select(Ballot).where(
        Ballot.case_id == case.id, Ballot.kind == BallotKind.SIGNOFF,
        Ballot.outcome == "approve").order_by(col(Ballot.id).desc())).first()
    if approved is None or approved.report_sha256 is None:
        raise CommandError(f"{case.reference}: no report version has been signed off")
    with domain_errors():
        # A submission waiting for a hold is let go now rather than queued again.
        released = submission.release_submission(session, case, context.now, actor=actor)
        if released is not None:
            return SubmissionGoing(case.reference, True, request.late)
        if request.late:
            audit.record(session, case.partnership, actor, "late_submission_go_ahead",
                         context.now, case.id, sha256=approved.report_sha256)
        submission.queue_submission(session, context.config, case, approved.report_sha256,
                                    context.now, actor=actor, late_go_ahead=request.late)
    return SubmissionGoing(case.reference, False, request.late)

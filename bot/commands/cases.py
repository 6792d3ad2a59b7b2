"""Cases: open one by hand, mark a milestone done, say where cases stand, see one, close one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import col, select

from bot.agencies.directory import agency_names
from bot.agencies.requests import CLOSED_STATUSES
from bot.ballots.lifecycle import ballot_view
from bot.cases import closure, lifecycle
from bot.cases.records import CaseRecord, case_record
from bot.cases.states import OPEN_STATUSES
from bot.commands.base import MANAGERS, READERS, Context, case_named, domain_errors, require
from bot.process.preset import SUBMISSION_KEY
from bot.store.models import AgencyRequest, Ballot, Case, Milestone
from bot.store.statuses import BallotStatus, MilestoneStatus

MANAGER_ONLY = "Sorry, only the partnership's business manager can change a case."
# What the National Panel may say of a Rapid Review (key and words), for a form to offer.
PANEL_RESPONSES = tuple(closure.PANEL_RESPONSES.items())
# How many outstanding steps the status of one case lists.
OUTSTANDING_SHOWN = 3


@dataclass(frozen=True)
class OpenCase:
    """A case whose referral came another way (by phone), with when its clock started."""

    clock_start: datetime
    referrer_email: str | None = None


@dataclass(frozen=True)
class CaseOpened:
    """The new case's reference."""

    reference: str


@dataclass(frozen=True)
class MarkMilestoneDone:
    """A milestone of a case that was done at a given instant."""

    case_reference: str
    milestone_key: str
    done_at: datetime


@dataclass(frozen=True)
class MilestoneDone:
    """The milestone now done; the steps counted from it are re-dated."""

    case_reference: str
    milestone_key: str
    # The milestone's name, as people know it.
    label: str = ""


@dataclass(frozen=True)
class OutstandingStep:
    """A milestone still to do, with its due instant."""

    label: str
    due_at: datetime
    overdue: bool


@dataclass(frozen=True)
class OpenBallotProgress:
    """An open ballot's name and how far the partners have got."""

    title: str
    progress: str


@dataclass(frozen=True)
class CaseStanding:
    """Where one case stands: its day, status, next steps, open ballots and missing returns."""

    reference: str
    day: int
    last_day: int | None
    status: str
    outstanding: tuple[OutstandingStep, ...]
    ballots: tuple[OpenBallotProgress, ...]
    waiting_for: tuple[str, ...]


def open_case(context: Context, request: OpenCase) -> CaseOpened:
    """Open a case by hand, with its milestones and the decision ballot."""
    require(context, MANAGERS, "case-open", MANAGER_ONLY)
    with domain_errors():
        case = lifecycle.open_case(context.session, context.config, request.clock_start,
                                   context.now, actor=context.actor.who,
                                   referrer_email=request.referrer_email)
    return CaseOpened(case.reference)


def mark_milestone_done(context: Context, request: MarkMilestoneDone) -> MilestoneDone:
    """Record that a milestone was done; the steps counted from it are re-dated."""
    require(context, MANAGERS, "milestone-done", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        done = lifecycle.mark_milestone_done(context.session, context.config, case,
                                             request.milestone_key, request.done_at,
                                             actor=context.actor.who)
    return MilestoneDone(case.reference, request.milestone_key, done.label)


def pending_milestones(context: Context, reference: str) -> list[tuple[str, str]]:
    """List a case's milestones not yet done (key and label), in date order."""
    require(context, READERS, "status", "Sorry, you cannot see this partnership's cases.")
    case = case_named(context, reference)
    return [(m.key, m.label) for m in context.session.exec(
        select(Milestone).where(Milestone.case_id == case.id, col(Milestone.status).in_(
            [MilestoneStatus.PENDING, MilestoneStatus.OVERDUE])).order_by(col(Milestone.due_at)))]


def hand_dated_milestones(context: Context, reference: str) -> list[tuple[str, str]]:
    """List a case's open milestones whose date a person sets (key and label)."""
    preset = context.config.preset
    return [(key, label) for key, label in pending_milestones(context, reference)
            if preset.milestone(key).dated_by_hand]


def case_status(context: Context, reference: str | None = None) -> list[CaseStanding]:
    """Say where the named case, or else each open case, stands."""
    require(context, READERS, "status", "Sorry, you cannot see this partnership's cases.")
    if reference is not None:
        cases = [case_named(context, reference)]
    else:
        cases = list(context.session.exec(
            select(Case).where(col(Case.status).in_(sorted(OPEN_STATUSES)))
            .order_by(col(Case.id))
        ).all())
    return [_status(context, case) for case in cases]


def _status(context: Context, case: Case) -> CaseStanding:
    session, config = context.session, context.config
    calendar = config.calendar
    outstanding = session.exec(
        select(Milestone).where(Milestone.case_id == case.id,
                                col(Milestone.status).in_([MilestoneStatus.PENDING,
                                                                 MilestoneStatus.OVERDUE]))
        .order_by(col(Milestone.due_at)).limit(OUTSTANDING_SHOWN)
    ).all()
    open_ballots = session.exec(select(Ballot).where(Ballot.case_id == case.id,
                                                     Ballot.status == BallotStatus.OPEN))
    views = [ballot_view(session, config, case, ballot) for ballot in open_ballots]
    names = agency_names(session, config)
    waiting = [names.get(request.agency_key, request.agency_key) for request in session.exec(
        select(AgencyRequest).where(AgencyRequest.case_id == case.id)
    ) if request.status not in CLOSED_STATUSES]
    return CaseStanding(
        reference=case.reference,
        day=calendar.working_days_between(case.day0, calendar.local_date(context.now)),
        last_day=config.preset.milestone(SUBMISSION_KEY).day,
        status=case.status,
        outstanding=tuple(OutstandingStep(m.label, m.due_at, m.status == MilestoneStatus.OVERDUE)
                          for m in outstanding),
        ballots=tuple(OpenBallotProgress(view.title.split(": ", 1)[-1], view.progress)
                      for view in views),
        waiting_for=tuple(waiting),
    )


@dataclass(frozen=True)
class RecordPanelResponse:
    """The National Panel's response to a case's report, and when it came."""

    case_reference: str
    decision: str
    received_at: datetime


@dataclass(frozen=True)
class CloseCase:
    """A case the business manager closes, and why."""

    case_reference: str
    reason: str


@dataclass(frozen=True)
class CommissionLocalReview:
    """A case on which the partners commissioned a local review, and when they decided it."""

    case_reference: str
    decided_at: datetime


@dataclass(frozen=True)
class SetMilestoneDate:
    """The date a person set for a step the plan cannot know (the publication date)."""

    case_reference: str
    milestone_key: str
    on: date


@dataclass(frozen=True)
class CaseChanged:
    """The case after the change: its status, and its plan's step if one moved."""

    case_reference: str
    status: str
    closed: bool
    milestone_due: datetime | None = None


def record_panel_response(context: Context, request: RecordPanelResponse) -> CaseChanged:
    """Record the National Panel's response; the case closes unless more is to come."""
    require(context, MANAGERS, "panel-response", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        closed = closure.record_panel_response(context.session, context.config, case,
                                               request.decision, request.received_at,
                                               actor=context.actor.who)
    return CaseChanged(case.reference, case.status, closed)


def close_case(context: Context, request: CloseCase) -> CaseChanged:
    """Close a case with a reason: nothing more is chased or sent for it."""
    require(context, MANAGERS, "case-close", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        closure.close_case(context.session, context.config, case, request.reason, context.now,
                           actor=context.actor.who)
    return CaseChanged(case.reference, case.status, True)


def commission_local_review(context: Context, request: CommissionLocalReview) -> CaseChanged:
    """Start a commissioned local review's timeline: six months to completion."""
    require(context, MANAGERS, "commission-review", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        closure.commission_local_review(context.session, context.config, case,
                                        request.decided_at, actor=context.actor.who)
    return CaseChanged(case.reference, case.status, False)


def set_milestone_date(context: Context, request: SetMilestoneDate) -> CaseChanged:
    """Set the date of a step a person decides; the steps counted from it move."""
    require(context, MANAGERS, "set-date", MANAGER_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        milestone = closure.set_milestone_date(context.session, context.config, case,
                                               request.milestone_key, request.on, context.now,
                                               actor=context.actor.who)
    return CaseChanged(case.reference, case.status, False, milestone.due_at)


def show_case(context: Context, reference: str) -> CaseRecord:
    """Return a case's whole record: plan, agencies, ballots and votes, reports, messages."""
    require(context, MANAGERS, "case-show",
            "Sorry, only the partnership's business manager can see a case's whole record.")
    return case_record(context.session, context.config, case_named(context, reference))

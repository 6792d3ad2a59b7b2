"""The case board: every open case (or every closed one) on one page, in a few queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import and_, or_
from sqlmodel import col, select

from bot.agencies.directory import agency_names
from bot.agencies.requests import CLOSED_STATUSES
from bot.ballots.members import PARTNER_LABELS
from bot.cases.states import OPEN_STATUSES
from bot.commands.base import READERS, Context, require
from bot.digest.attention import words
from bot.digest.daily import (
    OPEN_MILESTONE_STATUSES,
    RAG_ORDER,
    SIGNOFF_KEY,
    agency_line,
    case_rag,
    child_identity,
    day_label,
    submission_day,
)
from bot.store.models import AgencyRequest, Ballot, Case, Milestone, Vote
from bot.store.statuses import AgencyRequestStatus, BallotStatus, MilestoneStatus

NOT_ALLOWED = "Sorry, you cannot see this partnership's cases."
# How many cases one page of the board shows.
CASES_PER_PAGE = 100


@dataclass(frozen=True)
class BoardLine:
    """One case as the board shows it."""

    reference: str
    child: str | None
    status: str
    day_label: str
    rag: str
    reasons: tuple[str, ...]
    next_milestone: str | None
    next_due: datetime | None
    returns_in: int
    returns_asked: int
    # Each open ballot's name with the partners who have not voted on it.
    not_voted: tuple[tuple[str, tuple[str, ...]], ...]
    closed_at: datetime | None
    decision: str | None


@dataclass(frozen=True)
class BoardPage:
    """One page of the board: its cases, which page it is, and how many there are."""

    lines: list[BoardLine]
    page: int
    pages: int
    total: int


def case_board(context: Context, closed: bool = False, page: int = 1) -> BoardPage:
    """List a page of the open cases, worst first (or of the closed ones, newest first)."""
    require(context, READERS, "board", NOT_ALLOWED)
    session, config, now = context.session, context.config, context.now
    statuses = sorted(OPEN_STATUSES)
    query = select(*_columns(Case)).where(
        col(Case.partnership) == config.settings.partnership.key)
    query = (query.where(col(Case.status).not_in(statuses)).order_by(col(Case.id).desc())
             if closed else query.where(col(Case.status).in_(statuses))
             .order_by(col(Case.reference)))
    cases = [cast(Case, row) for row in session.exec(query)]
    total = len(cases)
    pages = max(1, -(-total // CASES_PER_PAGE))
    page = min(max(page, 1), pages)
    if closed:
        # The closed tab is in closing order, so only its page's cases are read further.
        cases = cases[(page - 1) * CASES_PER_PAGE:page * CASES_PER_PAGE]
    ids = [case.id for case in cases]
    calendar = config.calendar
    # Only the steps that can colour a case are read for every case: those overdue, those open
    # and due by the amber horizon (case_rag's), and the partners' sign-off once done.
    horizon = calendar.at(calendar.add_working_days(calendar.local_date(now),
                                                    config.settings.digest
                                                    .amber_within_working_days))
    colouring = _milestones(context, ids, or_(
        col(Milestone.status) == MilestoneStatus.OVERDUE,
        and_(col(Milestone.status).in_(OPEN_MILESTONE_STATUSES), col(Milestone.due_at) <= horizon),
        and_(col(Milestone.key) == SIGNOFF_KEY, col(Milestone.status) == MilestoneStatus.DONE)))
    requests: dict[int, list[AgencyRequest]] = defaultdict(list)
    for request in session.exec(select(*_columns(AgencyRequest)).where(
            col(AgencyRequest.case_id).in_(ids))):
        if request.status != AgencyRequestStatus.WITHDRAWN:
            requests[request.case_id].append(cast(AgencyRequest, request))
    names = agency_names(session, config)
    # Every open case's colour is worked out, for the worst to come first; the rest of a
    # line only for the cases on the page.
    rags = {case.id or 0: case_rag(config, colouring[case.id or 0],
                                   [agency_line(config, r, now, names)
                                    for r in requests[case.id or 0]], now)
            for case in cases}
    if not closed:
        cases.sort(key=lambda case: RAG_ORDER.index(rags[case.id or 0][0]))
        cases = cases[(page - 1) * CASES_PER_PAGE:page * CASES_PER_PAGE]
    waiting = _not_voted(context, [case.id for case in cases])
    milestones = _milestones(context, [case.id for case in cases],
                             Milestone.status != MilestoneStatus.NOT_APPLICABLE)
    last_day = submission_day(config)
    today = config.calendar.local_date(now)
    lines = []
    for case in cases:
        case_id = case.id or 0
        asked = requests[case_id]
        rag, reasons = rags[case_id]
        upcoming = next((m for m in milestones[case_id]
                         if m.status in OPEN_MILESTONE_STATUSES), None)
        lines.append(BoardLine(
            reference=case.reference, child=child_identity(case, config),
            status=words(case.status),
            day_label=day_label(config.calendar, case, milestones[case_id], today, last_day),
            rag=rag, reasons=tuple(reasons),
            next_milestone=upcoming.label if upcoming else None,
            next_due=upcoming.due_at if upcoming else None,
            returns_in=sum(r.status in CLOSED_STATUSES for r in asked),
            returns_asked=len(asked), not_voted=waiting.get(case_id, ()),
            closed_at=case.closed_at, decision=words(case.decision) if case.decision else None,
        ))
    return BoardPage(lines, page, pages, total)


def _milestones(context: Context, case_ids: list[int | None], which: Any
                ) -> dict[int, list[Milestone]]:
    # The rows are read as plain tuples with the models' attribute names: building a thousand
    # cases' worth of ORM objects would cost most of the page's time.
    found: dict[int, list[Milestone]] = defaultdict(list)
    for milestone in context.session.exec(select(*_columns(Milestone)).where(
            col(Milestone.case_id).in_(case_ids), which)
            .order_by(col(Milestone.due_at), col(Milestone.id))):
        found[milestone.case_id].append(cast(Milestone, milestone))
    return found


def _not_voted(context: Context, case_ids: list[int | None]
               ) -> dict[int, tuple[tuple[str, tuple[str, ...]], ...]]:
    session = context.session
    ballots = list(session.exec(select(Ballot.id, Ballot.case_id, Ballot.kind).where(
        col(Ballot.case_id).in_(case_ids), Ballot.status == BallotStatus.OPEN)
        .order_by(col(Ballot.id))))
    voted: dict[int, set[str]] = defaultdict(set)
    for voted_on, partner_key in session.exec(select(Vote.ballot_id, Vote.partner_key).where(
            col(Vote.ballot_id).in_([ballot_id for ballot_id, _case, _kind in ballots]))):
        voted[voted_on].add(partner_key)
    found: dict[int, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
    for ballot_id, case_id, kind in ballots:
        missing = tuple(label for key, label in PARTNER_LABELS.items()
                        if key not in voted[ballot_id or 0])
        found[case_id].append(("Decision" if kind == "decision" else "Sign-off", missing))
    return {case_id: tuple(entries) for case_id, entries in found.items()}


def _columns(model: Any) -> list[Any]:
    # Every column of a table, to select as a plain row.
    return [getattr(model, column.name) for column in model.__table__.columns]

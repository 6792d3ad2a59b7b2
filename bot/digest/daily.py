"""The business manager's digests as view models built from the database at an instant."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime
from typing import Any, cast

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from bot.agencies.directory import agency_names
from bot.cases.states import OPEN_STATUSES
from bot.config import Config
from bot.digest.attention import (
    late_sends,
    quarantine_summary,
    short_date,
    short_time,
    unsent_lines,
    words,
)
from bot.digest.lines import (
    AgencyLine,
    BallotLine,
    CaseDigest,
    CaseSummary,
    DailyDigest,
    MilestoneLine,
    TimelineCell,
)
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import WorkingCalendar, as_aware
from bot.store.models import AgencyRequest, Ballot, Case, Milestone, Vote
from bot.store.statuses import AgencyRequestStatus, BallotKind, BallotStatus, MilestoneStatus

# How a case stands, worst first; the digest lists red cases first.
RAG_ORDER = ("red", "amber", "green")


# One character per timeline cell in the plain-text part, with the legend printed under it.
TIMELINE_SYMBOLS = {"done": "=", "due": "o", "late": "!", "today": ">", "future": "."}




# The milestone whose completion means the partners have approved the report.
SIGNOFF_KEY = "partner_signoff"


# Milestone statuses that still need doing.
OPEN_MILESTONE_STATUSES = (MilestoneStatus.PENDING, MilestoneStatus.OVERDUE)


# How many upcoming (not yet overdue) milestones the digest shows per case.
UPCOMING_SHOWN = 3


def child_identity(case: Case, config: Config) -> str | None:
    """Name the child as the configuration allows: initials, the full name or nothing."""
    choice = config.settings.digest.child_identity
    if choice == "initials":
        return case.child_initials or None
    if choice == "full":
        return case.child_name or None
    return None


def build_daily_digest(
    session: Session, config: Config, now: datetime, since: datetime
) -> DailyDigest:
    """Build the daily digest at now; late sends are those sent after since."""
    now = as_aware(now)
    calendar = config.calendar
    partnership = config.settings.partnership.key
    open_filter = (Case.partnership == partnership,
                   col(Case.status).in_(sorted(OPEN_STATUSES)))
    # One query per table reads every open case's rows, grouped by case below. The rows are
    # plain tuples with the models' attribute names: a thousand cases' worth of ORM objects
    # would cost most of the digest's time.
    open_cases = [cast(Case, row) for row in session.exec(
        select(*_columns(Case)).where(*open_filter).order_by(col(Case.reference)))]
    open_ids = select(Case.id).where(*open_filter)
    milestones: dict[int, list[Milestone]] = defaultdict(list)
    for milestone in session.exec(select(*_columns(Milestone)).where(
            col(Milestone.case_id).in_(open_ids),
            Milestone.status != MilestoneStatus.NOT_APPLICABLE)
            .order_by(col(Milestone.due_at), col(Milestone.id))):
        milestones[milestone.case_id].append(cast(Milestone, milestone))
    requests: dict[int, list[AgencyRequest]] = defaultdict(list)
    for request in session.exec(select(*_columns(AgencyRequest)).where(
            col(AgencyRequest.case_id).in_(open_ids)).order_by(col(AgencyRequest.agency_key))):
        requests[request.case_id].append(cast(AgencyRequest, request))
    ballots = _ballot_lines(session, config, open_ids)
    names = agency_names(session, config)
    rated = []
    for case in open_cases:
        case_id = case.id or 0
        agencies = [agency_line(config, request, now, names) for request in requests[case_id]]
        rag, reasons = case_rag(config, milestones[case_id], agencies, now)
        rated.append((case, rag, reasons, agencies))
    rated.sort(key=lambda found: RAG_ORDER.index(found[1]))
    # Beyond the configured number, only red and amber cases are listed in full, worst first
    # and no more of them than that number, so that the email stays small; the rest are
    # summarised on a line each.
    in_full = config.settings.digest.list_cases_in_full
    listed = rated if len(rated) <= in_full else [
        found for found in rated if found[1] != "green"][:in_full]
    cases = [_case_digest(config, case, now, milestones[case.id or 0], rag, reasons, agencies,
                          ballots[case.id or 0]) for case, rag, reasons, agencies in listed]
    summarised = [_case_summary(config, case, now, milestones[case.id or 0], rag, reasons)
                  for case, rag, reasons, _agencies in rated[len(listed):]]
    counts = Counter(rag for _case, rag, _reasons, _agencies in rated)
    return DailyDigest(
        partnership=config.settings.partnership.name,
        date_label=short_date(calendar.local_date(now)),
        generated=short_time(now, calendar),
        cases=cases,
        summarised=summarised,
        rag_counts={rag: counts.get(rag, 0) for rag in RAG_ORDER},
        quarantine=quarantine_summary(session, calendar, partnership),
        unsent=unsent_lines(session, calendar, partnership),
        late=late_sends(session, calendar, now, since, partnership),
        late_since=short_time(since, calendar),
        symbols=TIMELINE_SYMBOLS,
        amber_within=_within(config.settings.digest.amber_within_working_days),
    )


def _case_summary(
    config: Config, case: Case, now: datetime, milestones: list[Milestone], rag: str,
    reasons: list[str],
) -> CaseSummary:
    calendar = config.calendar
    upcoming = next((m for m in milestones if m.status in OPEN_MILESTONE_STATUSES), None)
    note = reasons[0] if reasons else (
        f"Next: {upcoming.label} ({short_time(upcoming.due_at, calendar)})" if upcoming else "")
    return CaseSummary(
        reference=case.reference, child=child_identity(case, config), status=words(case.status),
        day_label=day_label(calendar, case, milestones, calendar.local_date(now),
                            submission_day(config)),
        rag=rag, note=note)


def _case_digest(
    config: Config, case: Case, now: datetime, milestones: list[Milestone], rag: str,
    reasons: list[str], agencies: list[AgencyLine], ballots: list[BallotLine],
) -> CaseDigest:
    calendar = config.calendar
    today = calendar.local_date(now)
    last_day = submission_day(config)
    timeline = _timeline(calendar, case, milestones, now, last_day)
    return CaseDigest(
        reference=case.reference,
        child=child_identity(case, config),
        status=words(case.status),
        day_label=day_label(calendar, case, milestones, today, last_day),
        rag=rag,
        reasons=reasons,
        milestones=_milestone_lines(calendar, milestones, now),
        agencies=agencies,
        agency_counts={state: sum(line.state == state for line in agencies)
                       for state in ("received", "outstanding", "overdue")},
        ballots=ballots,
        timeline=timeline,
        timeline_row="".join(TIMELINE_SYMBOLS[cell.state] for cell in timeline),
        timeline_marker="".join("^" if cell.is_today else " " for cell in timeline).rstrip(),
        timeline_scale=_scale(last_day),
    )


def _is_overdue(milestone: Milestone, now: datetime) -> bool:
    # A pending milestone past its deadline counts as overdue before the sweep has marked it.
    return milestone.status == MilestoneStatus.OVERDUE or (
        milestone.status == MilestoneStatus.PENDING and milestone.due_at <= now
    )


def case_rag(
    config: Config, milestones: list[Milestone], agencies: list[AgencyLine], now: datetime
) -> tuple[str, list[str]]:
    """Say whether a case is red, amber or green at now, and why."""
    # Red: a statutory milestone overdue, or the submission due within the amber horizon
    # before the partners have signed off. Amber: anything else overdue (a milestone or an
    # agency return) or due within the horizon. Green otherwise. Each reason names a cause.
    calendar = config.calendar
    horizon = calendar.at(calendar.add_working_days(calendar.local_date(now),
                                                    config.settings.digest
                                                    .amber_within_working_days))
    red: list[str] = []
    amber: list[str] = []
    done = {milestone.key for milestone in milestones
            if milestone.status == MilestoneStatus.DONE}
    for milestone in milestones:
        if milestone.status not in OPEN_MILESTONE_STATUSES:
            continue
        if not _is_overdue(milestone, now) and milestone.due_at > horizon:
            continue
        due = short_time(milestone.due_at, calendar)
        if _is_overdue(milestone, now):
            kind = "Statutory milestone overdue" if milestone.statutory else "Overdue"
            (red if milestone.statutory else amber).append(f"{kind}: {milestone.label}"
                                                           f" (due {due})")
        elif milestone.due_at <= horizon:
            if milestone.key == SUBMISSION_KEY and SIGNOFF_KEY not in done:
                red.append(f"Submission at risk: due {due} and the partners have not signed off")
            else:
                amber.append(f"Due soon: {milestone.label} ({due})")
    amber += [f"Agency return overdue: {line.name}" for line in agencies
              if line.state == "overdue"]
    if red:
        return "red", red + amber
    if amber:
        return "amber", amber
    return "green", []


def submission_day(config: Config) -> int:
    """Return the working day the report is due at the National Panel."""
    submission = config.preset.milestone(SUBMISSION_KEY)
    return submission.day if submission.day is not None else 15


def day_label(
    calendar: WorkingCalendar, case: Case, milestones: list[Milestone], today: date,
    last_day: int,
) -> str:
    """Say which working day a case is on: "Day 7 of 15", or the day it was submitted."""
    # On a weekend or bank holiday the count stays at the last working day's number.
    day = calendar.working_days_between(case.day0, today)
    for milestone in milestones:
        if (milestone.key == SUBMISSION_KEY and milestone.status == MilestoneStatus.DONE
                and milestone.done_at):
            submitted = calendar.working_days_between(case.day0,
                                                      calendar.local_date(milestone.done_at))
            return f"Day {day}, submitted on Day {submitted}"
    return f"Day {day} of {last_day}"


def _milestone_lines(
    calendar: WorkingCalendar, milestones: list[Milestone], now: datetime
) -> list[MilestoneLine]:
    open_ones = [m for m in milestones if m.status in OPEN_MILESTONE_STATUSES]
    overdue = [m for m in open_ones if _is_overdue(m, now)]
    upcoming = [m for m in open_ones if not _is_overdue(m, now)][:UPCOMING_SHOWN]
    return [
        MilestoneLine(label=m.label, due=short_time(m.due_at, calendar),
                      overdue=m in overdue, statutory=m.statutory)
        for m in [*overdue, *upcoming]
    ]


def agency_line(config: Config, request: AgencyRequest, now: datetime,
                names: dict[str, str] | None = None) -> AgencyLine:
    """Say where one agency request stands: received, outstanding or overdue."""
    calendar = config.calendar
    names = names or {agency.key: agency.name for agency in config.settings.agencies}
    name = names.get(request.agency_key, request.agency_key)
    if request.status in {AgencyRequestStatus.RETURNED, AgencyRequestStatus.NO_INVOLVEMENT}:
        when = short_time(request.closed_at, calendar) if request.closed_at else "-"
        what = "Returned" if request.status == AgencyRequestStatus.RETURNED else "No involvement"
        return AgencyLine(name, "received", f"{what} {when}")
    if request.status != AgencyRequestStatus.OPEN:
        return AgencyLine(name, words(request.status).lower(), words(request.status))
    due = short_time(request.due_at, calendar) if request.due_at else "no deadline"
    notes = []
    if request.reply_kind == "extension_request":
        notes.append("asked for an extension")
    if request.reply_kind == "question":
        notes.append("asked a question")
    if request.contact_problem:
        notes.append(f"contact {words(request.contact_problem).lower()}")
    extra = f"; {', '.join(notes)}" if notes else ""
    if request.due_at is not None and request.due_at <= now:
        return AgencyLine(name, "overdue", f"Overdue since {due}{extra}")
    return AgencyLine(name, "outstanding", f"Due {due}{extra}")


def _ballot_lines(
    session: Session, config: Config, case_ids: SelectOfScalar[Any]
) -> dict[int, list[BallotLine]]:
    """Return the open ballots of the cases, by case, each with its votes: two queries."""
    partners = config.settings.partners.by_key()
    lines: dict[int, list[BallotLine]] = defaultdict(list)
    ballots = session.exec(
        select(Ballot).where(col(Ballot.case_id).in_(case_ids),
                             Ballot.status == BallotStatus.OPEN)
        .order_by(col(Ballot.id))
    ).all()
    votes_of: dict[int, dict[str, Vote]] = defaultdict(dict)
    for vote in session.exec(select(Vote).where(
            col(Vote.ballot_id).in_([ballot.id for ballot in ballots]))):
        votes_of[vote.ballot_id][vote.partner_key] = vote
    for ballot in ballots:
        votes = votes_of[ballot.id or 0]
        lines[ballot.case_id].append(BallotLine(
            kind="Sign-off" if ballot.kind == BallotKind.SIGNOFF else words(ballot.kind),
            closes=short_time(ballot.closes_at, config.calendar),
            cast=len(votes),
            needed=ballot.needed,
            voted=[f"{partner.name} ({words(votes[key].choice).lower()})"
                   for key, partner in partners.items() if key in votes],
            not_voted=[partner.name for key, partner in partners.items() if key not in votes],
        ))
    return lines


def _timeline(
    calendar: WorkingCalendar, case: Case, milestones: list[Milestone], now: datetime,
    last_day: int,
) -> list[TimelineCell]:
    today = calendar.local_date(now)
    by_day: dict[int, list[Milestone]] = {}
    for milestone in milestones:
        number = calendar.day_number(case.day0, calendar.local_date(milestone.due_at))
        if number is not None and number <= last_day:
            by_day.setdefault(number, []).append(milestone)
    cells = []
    for number in range(last_day + 1):
        day = calendar.day_n(case.day0, number)
        due = by_day.get(number, [])
        late = any(_is_overdue(m, now) or (m.status == MilestoneStatus.DONE
                                           and m.done_at is not None
                                           and m.done_at > m.due_at) for m in due)
        if late:
            state = "late"
        elif day == today:
            state = "today"
        elif any(m.status == MilestoneStatus.PENDING for m in due):
            state = "due"
        elif day < today or due:
            state = "done"
        else:
            state = "future"
        labels = "; ".join(m.label for m in due)
        title = f"Day {number}, {short_date(day)}" + (f": {labels}" if labels else "")
        cells.append(TimelineCell(number, state, day == today, title))
    return cells


def _within(working_days: int) -> str:
    # Say the amber horizon in words: "today", "within 1 working day".
    if working_days == 0:
        return "today"
    return f"within {working_days} working day{'s' if working_days != 1 else ''}"


def _scale(last_day: int) -> str:
    # Every fifth day's number sits above its cell of the plain-text timeline row.
    scale = [" "] * (last_day + 3)
    for number in range(0, last_day + 1, 5):
        scale[number:number + len(str(number))] = str(number)
    return "".join(scale).rstrip()


def _columns(model: Any) -> list[Any]:
    # Every column of a table, to select as a plain row.
    return [getattr(model, column.name) for column in model.__table__.columns]

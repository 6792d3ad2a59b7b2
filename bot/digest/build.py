"""The business manager's digests as view models built from the database at an instant."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from bot.cases.states import OPEN_STATUSES
from bot.config import Config
from bot.process.preset import SUBMISSION_KEY
from bot.process.working_days import WorkingCalendar, as_aware, short_time
from bot.store.models import (
    AgencyRequest,
    Ballot,
    Case,
    InboundMessage,
    Milestone,
    OutboxMessage,
    Vote,
)

# How a case stands, worst first; the digest lists red cases first.
RAG_ORDER = ("red", "amber", "green")

# One character per timeline cell in the plain-text part, with the legend printed under it.
TIMELINE_SYMBOLS = {"done": "=", "due": "o", "late": "!", "today": ">", "future": "."}

# The outbox purposes that discharge a milestone: a row of one sent after that milestone's
# due instant was sent late. Add a purpose here when a new message discharges a milestone.
PURPOSE_MILESTONES = {
    "referral_ack": "acknowledge",
    "referral_copy": "acknowledge",
    "decision_feedback": "decision_feedback",
    "agency_request": "agency_requests",
    "submission": SUBMISSION_KEY,
}

# The milestone whose completion means the partners have approved the report.
SIGNOFF_KEY = "partner_signoff"

# Milestone statuses that still need doing.
OPEN_MILESTONE_STATUSES = ("pending", "overdue")

# How many quarantined messages the digest lists one by one; the rest are counted.
QUARANTINE_LISTED = 10

# How many upcoming (not yet overdue) milestones the digest shows per case.
UPCOMING_SHOWN = 3


@dataclass(frozen=True)
class MilestoneLine:
    """A milestone still to do: what it is and when it is (or was) due."""

    label: str
    due: str
    overdue: bool
    statutory: bool


@dataclass(frozen=True)
class AgencyLine:
    """One agency's information request on a case and where its return stands."""

    name: str
    state: str
    detail: str


@dataclass(frozen=True)
class BallotLine:
    """An open partner ballot: who has voted and who has not."""

    kind: str
    closes: str
    cast: int
    needed: int
    voted: list[str]
    not_voted: list[str]


@dataclass(frozen=True)
class TimelineCell:
    """One working day of a case's 0-to-submission timeline."""

    day: int
    state: str
    is_today: bool
    title: str


@dataclass(frozen=True)
class CaseDigest:
    """One open case as the daily digest shows it."""

    reference: str
    child: str | None
    status: str
    day_label: str
    rag: str
    reasons: list[str]
    milestones: list[MilestoneLine]
    agencies: list[AgencyLine]
    agency_counts: dict[str, int]
    ballots: list[BallotLine]
    timeline: list[TimelineCell]
    timeline_row: str
    timeline_marker: str
    timeline_scale: str


@dataclass(frozen=True)
class QuarantinedLine:
    """A message waiting in quarantine for the business manager to triage."""

    received: str
    sender: str
    reason: str


@dataclass(frozen=True)
class Quarantine:
    """The quarantine folder: how many messages wait, since when, and why."""

    count: int
    oldest: str | None
    reasons: list[tuple[str, int]]
    listed: list[QuarantinedLine]


@dataclass(frozen=True)
class UnsentLine:
    """An outbox row the bot gave up sending (a dead letter)."""

    reference: str
    purpose: str
    recipients: str
    attempts: int
    queued: str
    error: str


@dataclass(frozen=True)
class LateLine:
    """A message sent after the deadline of the milestone it discharges."""

    reference: str
    purpose: str
    milestone: str
    due: str
    sent: str


@dataclass(frozen=True)
class DailyDigest:
    """Everything the business manager's morning email shows."""

    partnership: str
    date_label: str
    generated: str
    cases: list[CaseDigest]
    rag_counts: dict[str, int]
    quarantine: Quarantine
    unsent: list[UnsentLine]
    late: list[LateLine]
    late_since: str
    symbols: dict[str, str]
    amber_within: str


@dataclass(frozen=True)
class MilestoneTime:
    """How many working days from Day 0 a closed case took to reach one milestone."""

    label: str
    planned_day: int | None
    done_day: int | None
    outcome: str


@dataclass(frozen=True)
class ClosedCase:
    """A case closed during the week, with the time it took to each milestone."""

    reference: str
    child: str | None
    decision: str
    day0: str
    closed: str
    milestones: list[MilestoneTime]


@dataclass(frozen=True)
class WeeklySummary:
    """Monday's look back at the week before: the cases closed and their milestone times."""

    partnership: str
    week_label: str
    generated: str
    closed: list[ClosedCase]
    open_count: int


def short_date(day: date) -> str:
    """Show a date compactly: "Mon 11 Jan 2027"."""
    return f"{day:%a} {day.day} {day:%b %Y}"


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
    open_cases = session.exec(
        select(Case).where(col(Case.status).in_(sorted(OPEN_STATUSES)))
        .order_by(col(Case.reference))
    ).all()
    cases = [_case_digest(session, config, case, now) for case in open_cases]
    cases.sort(key=lambda digest: RAG_ORDER.index(digest.rag))
    counts = Counter(digest.rag for digest in cases)
    return DailyDigest(
        partnership=config.settings.partnership.name,
        date_label=short_date(calendar.local_date(now)),
        generated=short_time(now, calendar),
        cases=cases,
        rag_counts={rag: counts.get(rag, 0) for rag in RAG_ORDER},
        quarantine=_quarantine(session, calendar),
        unsent=_unsent(session, calendar),
        late=_late_sends(session, calendar, now, since),
        late_since=short_time(since, calendar),
        symbols=TIMELINE_SYMBOLS,
        amber_within=_within(config.settings.digest.amber_within_working_days),
    )


def build_weekly_summary(
    session: Session, config: Config, now: datetime, week_start: date
) -> WeeklySummary:
    """Build the summary of the cases closed in the seven days from week_start (a Monday)."""
    calendar = config.calendar
    start = calendar.at(week_start, datetime.min.time())
    end = calendar.at(week_start + timedelta(days=7), datetime.min.time())
    closed_cases = session.exec(
        select(Case).where(col(Case.closed_at) >= start, col(Case.closed_at) < end)
        .order_by(col(Case.closed_at), col(Case.reference))
    ).all()
    open_count = len(session.exec(
        select(Case.id).where(col(Case.status).in_(sorted(OPEN_STATUSES)))
    ).all())
    week_end = week_start + timedelta(days=6)
    return WeeklySummary(
        partnership=config.settings.partnership.name,
        week_label=f"{short_date(week_start)} to {short_date(week_end)}",
        generated=short_time(now, calendar),
        closed=[_closed_case(session, config, case) for case in closed_cases],
        open_count=open_count,
    )


def _case_digest(session: Session, config: Config, case: Case, now: datetime) -> CaseDigest:
    calendar = config.calendar
    today = calendar.local_date(now)
    milestones = list(session.exec(
        select(Milestone).where(Milestone.case_id == case.id,
                                Milestone.status != "not_applicable")
        .order_by(col(Milestone.due_at), col(Milestone.id))
    ).all())
    requests = session.exec(
        select(AgencyRequest).where(AgencyRequest.case_id == case.id)
        .order_by(col(AgencyRequest.agency_key))
    ).all()
    agencies = [_agency_line(config, request, now) for request in requests]
    rag, reasons = _rag(config, milestones, agencies, now)
    last_day = _submission_day(config)
    timeline = _timeline(calendar, case, milestones, now, last_day)
    return CaseDigest(
        reference=case.reference,
        child=child_identity(case, config),
        status=_words(case.status),
        day_label=_day_label(calendar, case, milestones, today, last_day),
        rag=rag,
        reasons=reasons,
        milestones=_milestone_lines(calendar, milestones, now),
        agencies=agencies,
        agency_counts={state: sum(line.state == state for line in agencies)
                       for state in ("received", "outstanding", "overdue")},
        ballots=_ballot_lines(session, config, case),
        timeline=timeline,
        timeline_row="".join(TIMELINE_SYMBOLS[cell.state] for cell in timeline),
        timeline_marker="".join("^" if cell.is_today else " " for cell in timeline).rstrip(),
        timeline_scale=_scale(last_day),
    )


def _is_overdue(milestone: Milestone, now: datetime) -> bool:
    # A pending milestone past its deadline counts as overdue before the sweep has marked it.
    return milestone.status == "overdue" or (
        milestone.status == "pending" and milestone.due_at <= now
    )


def _rag(
    config: Config, milestones: list[Milestone], agencies: list[AgencyLine], now: datetime
) -> tuple[str, list[str]]:
    # Red: a statutory milestone overdue, or the submission due within the amber horizon
    # before the partners have signed off. Amber: anything else overdue (a milestone or an
    # agency return) or due within the horizon. Green otherwise. Each reason names a cause.
    calendar = config.calendar
    horizon = calendar.at(calendar.add_working_days(calendar.local_date(now),
                                                    config.settings.digest
                                                    .amber_within_working_days))
    red: list[str] = []
    amber: list[str] = []
    done = {milestone.key for milestone in milestones if milestone.status == "done"}
    for milestone in milestones:
        if milestone.status not in OPEN_MILESTONE_STATUSES:
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


def _submission_day(config: Config) -> int:
    submission = config.preset.milestone(SUBMISSION_KEY)
    return submission.day if submission.day is not None else 15


def _day_label(
    calendar: WorkingCalendar, case: Case, milestones: list[Milestone], today: date,
    last_day: int,
) -> str:
    # On a weekend or bank holiday the count stays at the last working day's number.
    day = calendar.working_days_between(case.day0, today)
    for milestone in milestones:
        if milestone.key == SUBMISSION_KEY and milestone.status == "done" and milestone.done_at:
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


def _agency_line(config: Config, request: AgencyRequest, now: datetime) -> AgencyLine:
    calendar = config.calendar
    names = {agency.key: agency.name for agency in config.settings.agencies}
    name = names.get(request.agency_key, request.agency_key)
    if request.status in {"returned", "no_involvement"}:
        when = short_time(request.closed_at, calendar) if request.closed_at else "-"
        what = "Returned" if request.status == "returned" else "No involvement"
        return AgencyLine(name, "received", f"{what} {when}")
    if request.status != "open":
        return AgencyLine(name, _words(request.status).lower(), _words(request.status))
    due = short_time(request.due_at, calendar) if request.due_at else "no deadline"
    notes = []
    if request.reply_kind == "extension_request":
        notes.append("asked for an extension")
    if request.reply_kind == "question":
        notes.append("asked a question")
    if request.contact_problem:
        notes.append(f"contact {_words(request.contact_problem).lower()}")
    extra = f"; {', '.join(notes)}" if notes else ""
    if request.due_at is not None and request.due_at <= now:
        return AgencyLine(name, "overdue", f"Overdue since {due}{extra}")
    return AgencyLine(name, "outstanding", f"Due {due}{extra}")


def _ballot_lines(session: Session, config: Config, case: Case) -> list[BallotLine]:
    partners = config.settings.partners.by_key()
    lines = []
    ballots = session.exec(
        select(Ballot).where(Ballot.case_id == case.id, Ballot.status == "open")
        .order_by(col(Ballot.id))
    ).all()
    for ballot in ballots:
        votes = {vote.partner_key: vote for vote in session.exec(
            select(Vote).where(Vote.ballot_id == ballot.id))}
        lines.append(BallotLine(
            kind="Sign-off" if ballot.kind == "signoff" else _words(ballot.kind),
            closes=short_time(ballot.closes_at, config.calendar),
            cast=len(votes),
            needed=ballot.needed,
            voted=[f"{partner.name} ({_words(votes[key].choice).lower()})"
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
        late = any(_is_overdue(m, now) or (m.status == "done" and m.done_at is not None
                                           and m.done_at > m.due_at) for m in due)
        if late:
            state = "late"
        elif day == today:
            state = "today"
        elif any(m.status == "pending" for m in due):
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


def _quarantine(session: Session, calendar: WorkingCalendar) -> Quarantine:
    rows = session.exec(
        select(InboundMessage).where(InboundMessage.status == "quarantined")
        .order_by(col(InboundMessage.received_at), col(InboundMessage.id))
    ).all()
    reasons = Counter(row.reason or "no reason recorded" for row in rows)
    return Quarantine(
        count=len(rows),
        oldest=short_time(rows[0].received_at, calendar) if rows else None,
        reasons=sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
        listed=[QuarantinedLine(short_time(row.received_at, calendar), row.sender or "unknown",
                                row.reason or "no reason recorded")
                for row in rows[:QUARANTINE_LISTED]],
    )


def _unsent(session: Session, calendar: WorkingCalendar) -> list[UnsentLine]:
    rows = session.exec(
        select(OutboxMessage).where(OutboxMessage.status == "dead")
        .order_by(col(OutboxMessage.created_at), col(OutboxMessage.id))
    ).all()
    references = _references(session, {row.case_id for row in rows if row.case_id})
    return [
        UnsentLine(
            reference=references.get(row.case_id or 0, "-"), purpose=_words(row.purpose),
            recipients=row.recipients, attempts=row.attempts,
            queued=short_time(row.created_at, calendar), error=(row.last_error or "")[:160],
        )
        for row in rows
    ]


def _late_sends(
    session: Session, calendar: WorkingCalendar, now: datetime, since: datetime
) -> list[LateLine]:
    rows = session.exec(
        select(OutboxMessage).where(
            OutboxMessage.status == "sent", col(OutboxMessage.sent_at) > since,
            col(OutboxMessage.sent_at) <= now,
            col(OutboxMessage.purpose).in_(sorted(PURPOSE_MILESTONES)),
            col(OutboxMessage.case_id).is_not(None),
        ).order_by(col(OutboxMessage.sent_at), col(OutboxMessage.id))
    ).all()
    references = _references(session, {row.case_id for row in rows if row.case_id})
    late = []
    for row in rows:
        milestone = session.exec(select(Milestone).where(
            Milestone.case_id == row.case_id,
            Milestone.key == PURPOSE_MILESTONES[row.purpose],
        )).first()
        if milestone is None or row.sent_at is None or row.sent_at <= milestone.due_at:
            continue
        late.append(LateLine(
            reference=references.get(row.case_id or 0, "-"), purpose=_words(row.purpose),
            milestone=milestone.label, due=short_time(milestone.due_at, calendar),
            sent=short_time(row.sent_at, calendar),
        ))
    return late


def _closed_case(session: Session, config: Config, case: Case) -> ClosedCase:
    calendar = config.calendar
    milestones = session.exec(
        select(Milestone).where(Milestone.case_id == case.id)
        .order_by(col(Milestone.due_at), col(Milestone.id))
    ).all()
    times = []
    for milestone in milestones:
        if milestone.status == "not_applicable":
            continue
        done_day = None
        if milestone.status == "done" and milestone.done_at is not None:
            done_day = calendar.working_days_between(case.day0,
                                                     calendar.local_date(milestone.done_at))
            outcome = "late" if milestone.done_at > milestone.due_at else "on time"
        else:
            outcome = "not done"
        times.append(MilestoneTime(milestone.label, milestone.day, done_day, outcome))
    return ClosedCase(
        reference=case.reference,
        child=child_identity(case, config),
        decision=_words(case.decision) if case.decision else "-",
        day0=short_date(case.day0),
        closed=short_time(case.closed_at, calendar) if case.closed_at else "-",
        milestones=times,
    )


def _references(session: Session, case_ids: set[int]) -> dict[int, str]:
    if not case_ids:
        return {}
    rows = session.exec(select(Case.id, Case.reference).where(col(Case.id).in_(case_ids)))
    return {case_id: reference for case_id, reference in rows if case_id is not None}


def _words(key: str) -> str:
    # Turn a stored key such as "awaiting_decision" into "Awaiting decision".
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]

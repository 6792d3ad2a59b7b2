"""What the digest and weekly summary show, line by line, before rendering."""

from __future__ import annotations

from dataclasses import dataclass


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
class CaseSummary:
    """A case the digest names on one line, not in full (there are too many to list)."""

    reference: str
    child: str | None
    status: str
    day_label: str
    rag: str
    # The first reason for its colour, or the next milestone; empty when there is neither.
    note: str


@dataclass(frozen=True)
class DailyDigest:
    """Everything the business manager's morning email shows."""

    partnership: str
    date_label: str
    generated: str
    # The cases listed in full, and (beyond [digest] list_cases_in_full) those summarised.
    cases: list[CaseDigest]
    summarised: list[CaseSummary]
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

"""Partner ballots: opening them, one vote per partner organisation, quorum and what follows."""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, select

from bot.ballots.chasing import cancel_chasing, plan_chasing
from bot.ballots.members import PARTNER_LABELS
from bot.ballots.notices import alert_manager, ask_for_signoff
from bot.ballots.views import DECISION_OPTIONS, OPTIONS, ballot_view, queue_view, votes_on
from bot.cases.lifecycle import mark_milestone_done
from bot.cases.states import TRANSITIONS, transition
from bot.config import Config
from bot.kernel import audit
from bot.kernel.events import publish
from bot.kernel.outbox import enqueue_chat
from bot.mail.notify import notify
from bot.process.preset import partners_needed
from bot.store.models import (
    Ballot,
    Case,
    Milestone,
    Vote,
)
from bot.store.statuses import BallotKind, BallotStatus, CaseStatus

# The milestone whose due instant is each kind of ballot's deadline.
MILESTONES: dict[str, str] = {
    BallotKind.DECISION: "partner_decision", BallotKind.SIGNOFF: "partner_signoff",
}


# Decisions that settle the case; each is fed back to the referrer with the rationale.
DECISIONS = frozenset({"rapid_review", "no_further_action", "learning_review"})


SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


# Outcomes that leave the partners' question unanswered, so the business manager may ask again.
REOPENABLE = frozenset({"no_quorum", "more_information"})


class BallotRefused(ValueError):
    """A ballot that cannot be reopened: still open, or closed with an answer."""


def open_decision_ballot(session: Session, config: Config, case: Case, now: datetime) -> Ballot:
    """Open the partners' decision ballot on a case (or return the one already open)."""
    existing = _open_ballots(session, case, BallotKind.DECISION)
    if existing:
        return existing[0]
    ballot = _new_ballot(session, config, case, BallotKind.DECISION, None, now)
    if CaseStatus.AWAITING_DECISION in TRANSITIONS[case.status]:
        transition(session, case, CaseStatus.AWAITING_DECISION, "bot", now)
    return ballot


def open_signoff_ballot(
    session: Session, config: Config, case: Case, report_sha256: str, now: datetime
) -> Ballot:
    """Open a sign-off ballot bound to one report version; it closes any for an older version."""
    report_sha256 = report_sha256.strip().lower()
    if not SHA256_PATTERN.match(report_sha256):
        raise ValueError("report_sha256 must be 64 hexadecimal digits")
    for ballot in _open_ballots(session, case, BallotKind.SIGNOFF):
        if ballot.report_sha256 == report_sha256:
            return ballot
        close_ballot(session, config, case, ballot, "superseded", now)
    ballot = _new_ballot(session, config, case, BallotKind.SIGNOFF, report_sha256, now)
    ask_for_signoff(session, config, case, ballot, now)
    return ballot


def reopen_ballot(
    session: Session, config: Config, case: Case, kind: str, now: datetime, actor: str
) -> Ballot:
    """Ask the partners again after a ballot closed unanswered (no quorum, more information)."""
    latest = ballot_for_case(session, case, kind)
    if latest is None:
        raise BallotRefused(f"{case.reference} has had no {kind} ballot to reopen")
    if latest.status == BallotStatus.OPEN:
        raise BallotRefused(f"the {kind} ballot on {case.reference} is still open")
    if latest.outcome not in REOPENABLE:
        raise BallotRefused(_answered(case, latest))
    if kind == BallotKind.DECISION:
        ballot = open_decision_ballot(session, config, case, now)
    else:
        # A sign-off ballot is asked again on exactly the version the last one was about.
        ballot = open_signoff_ballot(session, config, case, latest.report_sha256 or "", now)
    audit.record(session, case.partnership, actor, "ballot_reopened", now, case.id,
                 ballot_id=ballot.id, kind=kind, previous_ballot_id=latest.id,
                 previous_outcome=latest.outcome)
    return ballot


def _answered(case: Case, ballot: Ballot) -> str:
    """Say why a ballot closed with an answer cannot be asked again."""
    if ballot.outcome == "request_changes":
        return (f"the partners asked for changes to the report on {case.reference}; a new"
                " version (`rrbot report add`) opens a new sign-off ballot")
    labels = {option.value: option.label for option in OPTIONS[ballot.kind]}
    answer = labels.get(ballot.outcome or "", ballot.outcome)
    return f"the {ballot.kind} ballot on {case.reference} was answered: {answer}"


def ballot_for_case(session: Session, case: Case, kind: str) -> Ballot | None:
    """Return the case's newest ballot of a kind, open or not."""
    return session.exec(
        select(Ballot).where(Ballot.case_id == case.id, Ballot.kind == kind)
        .order_by(col(Ballot.id).desc())
    ).first()


def close_at_deadline(session: Session, config: Config, ballot_id: int, now: datetime) -> bool:
    """Close a ballot whose deadline has come without quorum; the business manager is told."""
    ballot = session.exec(
        select(Ballot).where(Ballot.id == ballot_id).with_for_update()
    ).one()
    if ballot.status != BallotStatus.OPEN:
        return False
    close_ballot(session, config, session.get_one(Case, ballot.case_id), ballot, "no_quorum", now)
    return True


def _open_ballots(session: Session, case: Case, kind: BallotKind) -> list[Ballot]:
    return list(session.exec(
        select(Ballot).where(Ballot.case_id == case.id, Ballot.kind == kind,
                             Ballot.status == BallotStatus.OPEN).order_by(col(Ballot.id))
    ).all())


def _new_ballot(
    session: Session, config: Config, case: Case, kind: BallotKind, report_sha256: str | None,
    now: datetime,
) -> Ballot:
    quorum = config.preset.quorum
    rule = quorum.decision if kind == BallotKind.DECISION else quorum.signoff
    ballot = Ballot(
        partnership=case.partnership, case_id=case.id or 0, kind=kind,
        needed=partners_needed(rule, len(PARTNER_LABELS)),
        closes_at=_deadline(session, config, case, kind, now), report_sha256=report_sha256,
        opened_at=now,
    )
    session.add(ballot)
    session.flush()
    audit.record(session, case.partnership, "bot", "ballot_opened", now, case.id,
                 ballot_id=ballot.id, kind=kind, needed=ballot.needed,
                 closes_at=ballot.closes_at.isoformat(), report_sha256=report_sha256)
    plan_chasing(session, config, case, ballot, now)
    enqueue_chat(
        session, partnership=case.partnership, key=f"{case.reference}:ballot:{ballot.id}:post",
        purpose=f"ballot_{kind}",
        payload={"operation": "post_ballot", "revision": 0,
                 "view": ballot_view(session, config, case, ballot).as_json()},
        now=now, recipient="channel", case_id=case.id,
    )
    return ballot


def _deadline(
    session: Session, config: Config, case: Case, kind: BallotKind, now: datetime
) -> datetime:
    milestone = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == MILESTONES[kind]
    )).first()
    if milestone is not None and milestone.due_at > now:
        return milestone.due_at
    # A ballot opened after its milestone's deadline gets until the end of the next working day.
    calendar = config.calendar
    return calendar.at(calendar.add_working_days(calendar.local_date(now), 1))


def close_ballot(
    session: Session, config: Config, case: Case, ballot: Ballot, outcome: str, now: datetime
) -> None:
    """Close a ballot with its outcome and do what follows (decision, sign-off or alert)."""
    ballot.status, ballot.outcome, ballot.closed_at = BallotStatus.CLOSED, outcome, now
    session.add(ballot)
    session.flush()
    audit.record(session, case.partnership, "bot", "ballot_closed", now, case.id,
                 ballot_id=ballot.id, kind=ballot.kind, outcome=outcome,
                 report_sha256=ballot.report_sha256)
    cancel_chasing(session, case, ballot, now)
    queue_view(session, config, case, ballot, now)
    votes = votes_on(session, ballot)
    if ballot.kind == BallotKind.DECISION:
        _decided(session, config, case, ballot, outcome, votes, now)
    elif outcome == "approve":
        mark_milestone_done(session, config, case, MILESTONES[BallotKind.SIGNOFF], now, "bot")
        if CaseStatus.SIGNED_OFF in TRANSITIONS[case.status]:
            transition(session, case, CaseStatus.SIGNED_OFF, "bot", now)
        publish("report_signed_off", session, config, case, now,
                report_sha256=ballot.report_sha256)
    elif outcome != "superseded":
        alert_manager(session, config, case, ballot, outcome, now,
               f"{case.reference}:ballot:{ballot.id}:closed")


def _decided(
    session: Session, config: Config, case: Case, ballot: Ballot, outcome: str,
    votes: list[Vote], now: datetime,
) -> None:
    if outcome not in DECISIONS:
        alert_manager(session, config, case, ballot, outcome, now,
               f"{case.reference}:ballot:{ballot.id}:closed")
        return
    rationale = "\n".join(
        f"{PARTNER_LABELS[vote.partner_key]}: {vote.rationale}" for vote in votes
        if vote.choice == outcome and vote.rationale
    )
    case.decision, case.decision_rationale = outcome, rationale
    session.add(case)
    mark_milestone_done(session, config, case, MILESTONES[BallotKind.DECISION], now, "bot")
    # A decision that settles the case is also the status the case moves to.
    if outcome in TRANSITIONS[case.status]:
        transition(session, case, CaseStatus(outcome), "bot", now)
    publish("case_decided", session, config, case, now, decision=outcome, rationale=rationale)
    # Bolton: "the decision and rationale ... will be fed back to the referrer within two
    # working days", whatever the decision.
    _feed_back(session, config, case, outcome, rationale, now)


def _feed_back(
    session: Session, config: Config, case: Case, outcome: str, rationale: str, now: datetime
) -> None:
    settings = config.settings
    if not case.referrer_email:
        return
    decision = {option.value: option.label for option in DECISION_OPTIONS}[outcome]
    notify(session, config, "decision_feedback", to=[case.referrer_email],
           key=f"{case.reference}:decision_feedback", now=now, case_id=case.id, values=dict(
               case_reference=case.reference, decision=decision, rationale=rationale,
               partnership=settings.partnership.name))
    if "decision_feedback" in {milestone.key for milestone in config.preset.milestones}:
        mark_milestone_done(session, config, case, "decision_feedback", now, "bot")

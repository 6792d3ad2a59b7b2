"""Partner ballots: opening them, one vote per partner organisation, quorum and what follows."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.cases.lifecycle import mark_milestone_done
from bot.cases.states import TRANSITIONS, transition
from bot.config import Config
from bot.kernel import audit
from bot.kernel.chat import BallotOption, BallotView
from bot.kernel.events import publish
from bot.kernel.outbox import Attachment, enqueue_chat, enqueue_mail
from bot.mail.render import render_email
from bot.process.preset import partners_needed
from bot.process.working_days import WorkingCalendar, as_aware, short_time
from bot.store.models import (
    Ballot,
    Case,
    DeliveryReceipt,
    Document,
    Milestone,
    PlannedAction,
    Vote,
)

DECISION_OPTIONS = (
    BallotOption("rapid_review", "Rapid Review"),
    BallotOption("no_further_action", "No further action"),
    BallotOption("learning_review", "Local learning review"),
    BallotOption("more_information", "More information needed"),
)
SIGNOFF_OPTIONS = (
    BallotOption("approve", "Approve", needs_rationale=False),
    BallotOption("request_changes", "Request changes"),
)
OPTIONS = {"decision": DECISION_OPTIONS, "signoff": SIGNOFF_OPTIONS}
# The milestone whose due instant is each kind of ballot's deadline.
MILESTONES = {"decision": "partner_decision", "signoff": "partner_signoff"}
# How a partner is named in chat: the organisation's role, never a person or a family.
PARTNER_LABELS = {"local_authority": "Local Authority", "police": "Police", "health": "Health"}
# Decisions that settle the case; each is fed back to the referrer with the rationale.
DECISIONS = frozenset({"rapid_review", "no_further_action", "learning_review"})
# A closed ballot's view is always newer than any view queued while it was open.
CLOSED_REVISION = 1_000_000
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Outcomes that leave the partners' question unanswered, so the business manager may ask again.
REOPENABLE = frozenset({"no_quorum", "more_information"})


class VoteRefused(ValueError):
    """A vote that cannot be counted (bad choice, missing rationale, not a member)."""


class BallotRefused(ValueError):
    """A ballot that cannot be reopened: still open, or closed with an answer."""


@dataclass(frozen=True)
class Member:
    """A configured lead or deputy of one statutory partner organisation."""

    partner_key: str
    role: str
    name: str
    email: str
    slack_user_id: str | None


@dataclass(frozen=True)
class VoteResult:
    """What happened to a vote: counted, a duplicate delivery, or too late."""

    status: str
    ballot_id: int
    replaced: bool = False
    closed_with: str | None = None


def members(config: Config) -> list[Member]:
    """Every configured lead and deputy, partner by partner."""
    found = []
    for key, partner in config.settings.partners.by_key().items():
        found.append(Member(key, "lead", partner.lead.name, partner.lead.email,
                            partner.lead.slack_user_id))
        found.extend(Member(key, "deputy", deputy.name, deputy.email, deputy.slack_user_id)
                     for deputy in partner.deputies)
    return found


def member_by_slack_user(config: Config, user_id: str) -> Member | None:
    """Return the member with that Slack user id, if any."""
    return next((m for m in members(config) if m.slack_user_id and m.slack_user_id == user_id),
                None)


def member_by_email(config: Config, address: str) -> Member | None:
    """Return the member with that email address, if any (addresses compare caseless)."""
    wanted = address.strip().lower()
    return next((m for m in members(config) if m.email.lower() == wanted), None)


def member_by_name(config: Config, partner_key: str, name: str) -> Member:
    """Return the partner's member with that name or email, or raise VoteRefused."""
    if partner_key not in PARTNER_LABELS:
        raise VoteRefused(f"no partner {partner_key!r} (choose {', '.join(PARTNER_LABELS)})")
    wanted = name.strip().lower()
    for member in members(config):
        if member.partner_key == partner_key and wanted in (member.name.lower(),
                                                             member.email.lower()):
            return member
    known = ", ".join(m.name for m in members(config) if m.partner_key == partner_key)
    raise VoteRefused(f"{name!r} is not a member of {partner_key} (members: {known})")


def working_hours_before(calendar: WorkingCalendar, instant: datetime, hours: float) -> datetime:
    """Return the instant that lies the given working hours before instant."""
    remaining = timedelta(hours=hours)
    local = as_aware(instant).astimezone(calendar.zone)
    cursor = local
    for _ in range(3660):
        if remaining <= timedelta(0):
            return cursor.astimezone(UTC)
        day = cursor.date()
        if calendar.is_working_day(day):
            start = datetime.combine(day, calendar.hours.start, tzinfo=calendar.zone)
            top = min(cursor, datetime.combine(day, calendar.hours.end, tzinfo=calendar.zone))
            if top > start:
                if top - start >= remaining:
                    return (top - remaining).astimezone(UTC)
                remaining -= top - start
        cursor = datetime.combine(day - timedelta(days=1), calendar.hours.end,
                                  tzinfo=calendar.zone)
    raise ValueError("no working hours found within ten years; check the closure dates")


def open_decision_ballot(session: Session, config: Config, case: Case, now: datetime) -> Ballot:
    """Open the partners' decision ballot on a case (or return the one already open)."""
    existing = _open_ballots(session, case, "decision")
    if existing:
        return existing[0]
    ballot = _new_ballot(session, config, case, "decision", None, now)
    if "awaiting_decision" in TRANSITIONS[case.status]:
        transition(session, case, "awaiting_decision", "bot", now)
    return ballot


def open_signoff_ballot(
    session: Session, config: Config, case: Case, report_sha256: str, now: datetime
) -> Ballot:
    """Open a sign-off ballot bound to one report version; it closes any for an older version."""
    report_sha256 = report_sha256.strip().lower()
    if not SHA256_PATTERN.match(report_sha256):
        raise ValueError("report_sha256 must be 64 hexadecimal digits")
    for ballot in _open_ballots(session, case, "signoff"):
        if ballot.report_sha256 == report_sha256:
            return ballot
        _close(session, config, case, ballot, "superseded", now)
    ballot = _new_ballot(session, config, case, "signoff", report_sha256, now)
    _ask_for_signoff(session, config, case, ballot, now)
    return ballot


def reopen_ballot(
    session: Session, config: Config, case: Case, kind: str, now: datetime, actor: str
) -> Ballot:
    """Ask the partners again after a ballot closed unanswered (no quorum, more information)."""
    latest = ballot_for_case(session, case, kind)
    if latest is None:
        raise BallotRefused(f"{case.reference} has had no {kind} ballot to reopen")
    if latest.status == "open":
        raise BallotRefused(f"the {kind} ballot on {case.reference} is still open")
    if latest.outcome not in REOPENABLE:
        raise BallotRefused(_answered(case, latest))
    if kind == "decision":
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


def cast_vote(
    session: Session,
    config: Config,
    ballot_id: int,
    member: Member,
    choice: str,
    rationale: str,
    now: datetime,
    *,
    source: str,
    delivery_key: str,
    recorded_by: str | None = None,
    evidence: str | None = None,
) -> VoteResult:
    """Count a member's vote for their partner organisation; a repeat delivery counts once."""
    # Locking the ballot serialises votes on it, so quorum is judged on every vote.
    ballot = session.exec(
        select(Ballot).where(Ballot.id == ballot_id).with_for_update()
    ).first()
    if ballot is None:
        raise VoteRefused(f"no ballot {ballot_id}")
    case = session.get_one(Case, ballot.case_id)
    if receipt_seen(session, delivery_key):
        return VoteResult("duplicate", ballot_id)
    actor = f"{recorded_by} for {member.name}" if recorded_by else member.name
    if ballot.status != "open":
        audit.record(session, case.partnership, actor, "vote_too_late", now, case.id,
                     ballot_id=ballot_id, partner=member.partner_key, source=source)
        return VoteResult("closed", ballot_id, closed_with=ballot.outcome)
    option = _option(ballot.kind, choice)
    rationale = rationale.strip()
    if option.needs_rationale and not rationale:
        raise VoteRefused(f"a rationale is needed for {option.label!r}")
    remember_receipt(session, case.partnership, delivery_key, now, ballot_id)
    vote = session.exec(select(Vote).where(
        Vote.ballot_id == ballot_id, Vote.partner_key == member.partner_key
    )).first()
    replaced = vote is not None
    if vote is None:
        vote = Vote(partnership=case.partnership, ballot_id=ballot_id,
                    partner_key=member.partner_key, member_email=member.email, choice=choice,
                    source=source, cast_at=now)
    vote.member_email, vote.member_name, vote.member_role = member.email, member.name, member.role
    vote.choice, vote.rationale, vote.source, vote.cast_at = choice, rationale, source, now
    vote.recorded_by, vote.evidence = recorded_by, evidence
    session.add(vote)
    session.flush()
    audit.record(session, case.partnership, actor, "vote_cast", now, case.id,
                 ballot_id=ballot_id, kind=ballot.kind, partner=member.partner_key,
                 role=member.role, choice=choice, source=source, replaced=replaced,
                 recorded_on_behalf=bool(recorded_by), evidence=evidence)
    outcome = _outcome(ballot, _votes(session, ballot))
    if outcome is not None:
        _close(session, config, case, ballot, outcome, now)
        return VoteResult("counted", ballot_id, replaced, outcome)
    _queue_view(session, config, case, ballot, now)
    return VoteResult("counted", ballot_id, replaced)


def refuse_vote(
    session: Session,
    config: Config,
    user_id: str,
    now: datetime,
    *,
    reason: str,
    delivery_key: str,
    ballot_id: int | None = None,
    team_id: str | None = None,
) -> None:
    """Audit a click by someone who may not vote and tell them so, politely, once."""
    partnership = config.settings.partnership.key
    if receipt_seen(session, delivery_key):
        return
    remember_receipt(session, partnership, delivery_key, now, None)
    case_id = session.get_one(Ballot, ballot_id).case_id if ballot_id else None
    audit.record(session, partnership, f"slack:{user_id}", "vote_refused", now, case_id,
                 ballot_id=ballot_id, team_id=team_id, reason=reason)
    enqueue_chat(
        session, partnership=partnership, key=f"refusal:{delivery_key}", purpose="vote_refused",
        payload={"operation": "ephemeral", "user_id": user_id, "text": (
            "Sorry, only the nominated leads and deputies of the three statutory partners can"
            " vote on this ballot, so your choice has not been counted. If you should be able"
            " to vote, please ask the partnership's business manager."
        )},
        now=now, recipient=user_id, case_id=case_id,
    )


def receipt_seen(session: Session, key: str) -> bool:
    """Say whether a delivery with this key was already acted on."""
    return session.exec(select(DeliveryReceipt).where(DeliveryReceipt.key == key)).first() \
        is not None


def remember_receipt(
    session: Session, partnership: str, key: str, now: datetime, ballot_id: int | None
) -> None:
    """Record a delivery as acted on (the unique key stops a concurrent repeat)."""
    session.add(DeliveryReceipt(partnership=partnership, key=key[:200], ballot_id=ballot_id,
                                received_at=now))
    session.flush()


def ballot_for_case(session: Session, case: Case, kind: str) -> Ballot | None:
    """Return the case's newest ballot of a kind, open or not."""
    return session.exec(
        select(Ballot).where(Ballot.case_id == case.id, Ballot.kind == kind)
        .order_by(col(Ballot.id).desc())
    ).first()


def ballot_view(session: Session, config: Config, case: Case, ballot: Ballot) -> BallotView:
    """Build what chat shows of a ballot: partners and choices, never rationales or names."""
    votes = {vote.partner_key: vote for vote in _votes(session, ballot)}
    options = OPTIONS[ballot.kind]
    labels = {option.value: option.label for option in options}
    cast = [_describe_vote(ballot.kind, key, votes[key], labels) for key in PARTNER_LABELS
            if key in votes]
    waiting = [label for key, label in PARTNER_LABELS.items() if key not in votes]
    parts = [f"{len(votes)} of {len(PARTNER_LABELS)} partners"
             + (": " + ", ".join(cast) if cast else "")]
    if ballot.status == "open":
        if waiting:
            parts.append("waiting for " + ", ".join(waiting))
        parts.append(f"{ballot.needed} needed")
        parts.append(f"closes {short_time(ballot.closes_at, config.calendar)}")
    outcome = ""
    if ballot.status != "open":
        outcome = _outcome_text(ballot)
    if ballot.kind == "decision":
        title = f"{case.reference}: partner decision"
        question = "Does this referral meet the criteria for a Rapid Review?"
    else:
        title = f"{case.reference}: report sign-off"
        question = (f"Do you approve report version {(ballot.report_sha256 or '')[:12]} for"
                    " submission to the National Panel?")
    return BallotView(
        ballot_id=ballot.id or 0, kind=ballot.kind, case_reference=case.reference, title=title,
        question=question, options=options, progress="; ".join(parts),
        open=ballot.status == "open", outcome=outcome,
        report_sha256=ballot.report_sha256 or "",
    )


def remind_partners(
    session: Session, config: Config, ballot_id: int, key: str, now: datetime
) -> int:
    """Send a direct message to each member of each partner that has not voted; count them."""
    ballot = session.get_one(Ballot, ballot_id)
    if ballot.status != "open":
        return 0
    case = session.get_one(Case, ballot.case_id)
    voted = {vote.partner_key for vote in _votes(session, ballot)}
    what = "partner decision" if ballot.kind == "decision" else "report sign-off"
    sent = 0
    for member in members(config):
        if member.partner_key in voted or not member.slack_user_id:
            continue
        text = (f"Reminder: the {what} ballot for {case.reference} closes"
                f" {short_time(ballot.closes_at, config.calendar)}, and"
                f" {PARTNER_LABELS[member.partner_key]} has not voted yet. Please vote in the"
                " partners' channel (the lead or any deputy may vote).")
        enqueue_chat(session, partnership=case.partnership, key=f"{key}:{member.slack_user_id}",
                     purpose="ballot_reminder",
                     payload={"operation": "direct", "user_id": member.slack_user_id,
                              "text": text},
                     now=now, recipient=member.slack_user_id, case_id=case.id)
        sent += 1
    return sent


def warn_if_at_risk(
    session: Session, config: Config, ballot_id: int, key: str, now: datetime
) -> bool:
    """Warn the business manager when a ballot near its deadline still lacks quorum."""
    ballot = session.get_one(Ballot, ballot_id)
    if ballot.status != "open":
        return False
    case = session.get_one(Case, ballot.case_id)
    _alert(session, config, case, ballot, "at_risk", now, key)
    return True


def close_at_deadline(session: Session, config: Config, ballot_id: int, now: datetime) -> bool:
    """Close a ballot whose deadline has come without quorum; the business manager is told."""
    ballot = session.exec(
        select(Ballot).where(Ballot.id == ballot_id).with_for_update()
    ).one()
    if ballot.status != "open":
        return False
    _close(session, config, session.get_one(Case, ballot.case_id), ballot, "no_quorum", now)
    return True


def _open_ballots(session: Session, case: Case, kind: str) -> list[Ballot]:
    return list(session.exec(
        select(Ballot).where(Ballot.case_id == case.id, Ballot.kind == kind,
                             Ballot.status == "open").order_by(col(Ballot.id))
    ).all())


def _new_ballot(
    session: Session, config: Config, case: Case, kind: str, report_sha256: str | None,
    now: datetime,
) -> Ballot:
    quorum = config.preset.quorum
    rule = quorum.decision if kind == "decision" else quorum.signoff
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
    _plan_chasing(session, config, case, ballot, now)
    enqueue_chat(
        session, partnership=case.partnership, key=f"{case.reference}:ballot:{ballot.id}:post",
        purpose=f"ballot_{kind}",
        payload={"operation": "post_ballot", "revision": 0,
                 "view": ballot_view(session, config, case, ballot).as_json()},
        now=now, recipient="channel", case_id=case.id,
    )
    return ballot


def _deadline(session: Session, config: Config, case: Case, kind: str, now: datetime) -> datetime:
    milestone = session.exec(select(Milestone).where(
        Milestone.case_id == case.id, Milestone.key == MILESTONES[kind]
    )).first()
    if milestone is not None and milestone.due_at > now:
        return milestone.due_at
    # A ballot opened after its milestone's deadline gets until the end of the next working day.
    calendar = config.calendar
    return calendar.at(calendar.add_working_days(calendar.local_date(now), 1))


def _plan_chasing(
    session: Session, config: Config, case: Case, ballot: Ballot, now: datetime
) -> None:
    quorum = config.preset.quorum
    prefix = f"{case.reference}:ballot:{ballot.id}"
    wanted = [
        (f"{prefix}:remind:{number}", "ballot_reminder",
         working_hours_before(config.calendar, ballot.closes_at, hours))
        for number, hours in enumerate(quorum.remind_working_hours_before)
    ]
    wanted.append((f"{prefix}:at_risk", "ballot_at_risk",
                   working_hours_before(config.calendar, ballot.closes_at,
                                        quorum.at_risk_working_hours_before)))
    wanted.append((f"{prefix}:deadline", "ballot_deadline", ballot.closes_at))
    for key, action_name, due_at in wanted:
        # A reminder whose time has already passed would only repeat the ballot just posted.
        if due_at <= now and action_name != "ballot_deadline":
            continue
        session.add(PlannedAction(partnership=case.partnership, case_id=case.id, key=key,
                                  action=action_name, subject=str(ballot.id), due_at=due_at))
    session.flush()


def _cancel_chasing(session: Session, case: Case, ballot: Ballot, now: datetime) -> None:
    prefix = f"{case.reference}:ballot:{ballot.id}:"
    for planned in session.exec(select(PlannedAction).where(
        col(PlannedAction.key).startswith(prefix), PlannedAction.status == "pending"
    )):
        planned.status, planned.done_at = "cancelled", now
        session.add(planned)


def _option(kind: str, choice: str) -> BallotOption:
    for option in OPTIONS[kind]:
        if option.value == choice:
            return option
    choices = ", ".join(option.value for option in OPTIONS[kind])
    raise VoteRefused(f"{choice!r} is not a choice on a {kind} ballot (choose {choices})")


def _votes(session: Session, ballot: Ballot) -> list[Vote]:
    return list(session.exec(
        select(Vote).where(Vote.ballot_id == ballot.id).order_by(col(Vote.id))
    ).all())


def _outcome(ballot: Ballot, votes: list[Vote]) -> str | None:
    tally = Counter(vote.choice for vote in votes)
    for option in OPTIONS[ballot.kind]:
        if tally[option.value] >= ballot.needed:
            return option.value
    not_voted = len(PARTNER_LABELS) - len(votes)
    if all(tally[option.value] + not_voted < ballot.needed for option in OPTIONS[ballot.kind]):
        # Sign-off can no longer be approved: the partners who asked for changes decide it.
        if ballot.kind == "signoff" and tally["request_changes"]:
            return "request_changes"
        return "no_quorum"
    return None


def _describe_vote(kind: str, partner_key: str, vote: Vote, labels: dict[str, str]) -> str:
    who = PARTNER_LABELS[partner_key] + (" (deputy)" if vote.member_role == "deputy" else "")
    if kind == "signoff":
        verb = "approved" if vote.choice == "approve" else "requested changes"
        return f"{who} {verb}"
    return f"{who} chose {labels.get(vote.choice, vote.choice)}"


def _outcome_text(ballot: Ballot) -> str:
    texts = {
        "rapid_review": "Rapid Review", "no_further_action": "No further action",
        "learning_review": "Local learning review",
        "more_information": "More information needed", "approve": "Approved",
        "request_changes": "Changes requested", "no_quorum": "Closed without quorum",
        "superseded": "Closed: a newer report version is out for sign-off",
    }
    return texts.get(ballot.outcome or "", ballot.outcome or "Closed")


def _revision(session: Session, ballot: Ballot) -> int:
    counted = session.exec(
        select(func.count()).select_from(DeliveryReceipt)
        .where(DeliveryReceipt.ballot_id == ballot.id)
    ).one()
    return int(counted) + (CLOSED_REVISION if ballot.status != "open" else 0)


def _queue_view(
    session: Session, config: Config, case: Case, ballot: Ballot, now: datetime
) -> None:
    revision = _revision(session, ballot)
    enqueue_chat(
        session, partnership=case.partnership,
        key=f"{case.reference}:ballot:{ballot.id}:view:{revision}",
        purpose=f"ballot_{ballot.kind}_update",
        payload={"operation": "update_ballot", "revision": revision,
                 "view": ballot_view(session, config, case, ballot).as_json()},
        now=now, recipient="channel", case_id=case.id,
    )


def _close(
    session: Session, config: Config, case: Case, ballot: Ballot, outcome: str, now: datetime
) -> None:
    ballot.status, ballot.outcome, ballot.closed_at = "closed", outcome, now
    session.add(ballot)
    session.flush()
    audit.record(session, case.partnership, "bot", "ballot_closed", now, case.id,
                 ballot_id=ballot.id, kind=ballot.kind, outcome=outcome,
                 report_sha256=ballot.report_sha256)
    _cancel_chasing(session, case, ballot, now)
    _queue_view(session, config, case, ballot, now)
    votes = _votes(session, ballot)
    if ballot.kind == "decision":
        _decided(session, config, case, ballot, outcome, votes, now)
    elif outcome == "approve":
        mark_milestone_done(session, config, case, MILESTONES["signoff"], now, "bot")
        if "signed_off" in TRANSITIONS[case.status]:
            transition(session, case, "signed_off", "bot", now)
        publish("report_signed_off", session, config, case, now,
                report_sha256=ballot.report_sha256)
    elif outcome != "superseded":
        _alert(session, config, case, ballot, outcome, now,
               f"{case.reference}:ballot:{ballot.id}:closed")


def _decided(
    session: Session, config: Config, case: Case, ballot: Ballot, outcome: str,
    votes: list[Vote], now: datetime,
) -> None:
    if outcome not in DECISIONS:
        _alert(session, config, case, ballot, outcome, now,
               f"{case.reference}:ballot:{ballot.id}:closed")
        return
    rationale = "\n".join(
        f"{PARTNER_LABELS[vote.partner_key]}: {vote.rationale}" for vote in votes
        if vote.choice == outcome and vote.rationale
    )
    case.decision, case.decision_rationale = outcome, rationale
    session.add(case)
    mark_milestone_done(session, config, case, MILESTONES["decision"], now, "bot")
    if outcome in TRANSITIONS[case.status]:
        transition(session, case, outcome, "bot", now)
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
    email = render_email(
        "decision_feedback", case_reference=case.reference, decision=decision,
        rationale=rationale, partnership=settings.partnership.name,
        signature=settings.partnership.signature or settings.partnership.name,
    )
    enqueue_mail(
        session, partnership=case.partnership, key=f"{case.reference}:decision_feedback",
        purpose="decision_feedback", sender=settings.mailbox.address,
        sender_name=settings.partnership.name, to=[case.referrer_email],
        subject=email.subject, text=email.text, html=email.html, now=now, case_id=case.id,
    )
    if "decision_feedback" in {milestone.key for milestone in config.preset.milestones}:
        mark_milestone_done(session, config, case, "decision_feedback", now, "bot")


def _alert(
    session: Session, config: Config, case: Case, ballot: Ballot, reason: str, now: datetime,
    key: str,
) -> None:
    settings = config.settings
    manager = settings.business_manager
    votes = _votes(session, ballot)
    labels = {option.value: option.label for option in OPTIONS[ballot.kind]}
    email = render_email(
        "ballot_alert", recipient_name=manager.name, case_reference=case.reference,
        kind="partner decision" if ballot.kind == "decision" else "report sign-off",
        ballot=ballot.kind, reason=reason, closes_at=ballot.closes_at, needed=ballot.needed,
        votes=[(PARTNER_LABELS[vote.partner_key], vote.member_name or vote.member_email,
                labels.get(vote.choice, vote.choice), vote.rationale) for vote in votes],
        waiting=[label for partner, label in PARTNER_LABELS.items()
                 if partner not in {vote.partner_key for vote in votes}],
        signature=settings.partnership.signature or settings.partnership.name,
    )
    enqueue_mail(
        session, partnership=case.partnership, key=key, purpose=f"ballot_{reason}",
        sender=settings.mailbox.address, sender_name=settings.partnership.name,
        to=[manager.email], subject=email.subject, text=email.text, html=email.html, now=now,
        case_id=case.id,
    )


def _ask_for_signoff(
    session: Session, config: Config, case: Case, ballot: Ballot, now: datetime
) -> None:
    settings = config.settings
    attachments = _report_attachments(session, case, ballot.report_sha256 or "")
    for member in members(config):
        email = render_email(
            "signoff_request", recipient_name=member.name, case_reference=case.reference,
            partner=PARTNER_LABELS[member.partner_key], role=member.role,
            report_sha256=ballot.report_sha256, closes_at=ballot.closes_at,
            needed=ballot.needed, attached=bool(attachments),
            signature=settings.partnership.signature or settings.partnership.name,
        )
        enqueue_mail(
            session, partnership=case.partnership,
            key=signoff_request_key(case, ballot, member.email), purpose="signoff_request",
            sender=settings.mailbox.address, sender_name=settings.partnership.name,
            to=[member.email], subject=email.subject, text=email.text, html=email.html,
            now=now, case_id=case.id, attachments=attachments,
        )


def signoff_request_key(case: Case, ballot: Ballot, email: str) -> str:
    """Return the outbox key (so the Message-ID) of the sign-off request to one member."""
    return f"{case.reference}:ballot:{ballot.id}:signoff_request:{email.lower()}"


def _report_attachments(session: Session, case: Case, sha256: str) -> list[Attachment]:
    document = session.exec(select(Document).where(
        Document.case_id == case.id, Document.sha256 == sha256
    )).first()
    if document is None or not Path(document.path).is_file():
        return []
    return [Attachment(document.filename, Path(document.path).read_bytes())]

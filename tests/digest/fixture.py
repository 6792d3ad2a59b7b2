"""Five cases in different states on Thursday 18 February 2027, built straight into the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine as DatabaseEngine
from sqlmodel import Session, select

from bot.config import Config
from bot.process.timeline import plan
from bot.process.working_days import parse_instant
from bot.store.db import transaction
from bot.store.models import (
    AgencyRequest,
    Ballot,
    Case,
    InboundMessage,
    Milestone,
    OutboxMessage,
    Vote,
)
from tests.factories import build_config

# The digest of the fixture is the one due at 08:30 on Thursday 18 February 2027 (Day 9 of
# the case whose agency return is overdue).
DIGEST_AT = parse_instant("2027-02-18T08:30")


def digest_config(url: str, **digest: Any) -> Config:
    """Load the example configuration on a test database, with [digest] keys overridden."""
    return build_config(database_url=url, closure_dates=[], preset="oldham", digest=digest)


def at(text: str) -> datetime:
    return parse_instant(text)


def make_case(
    session: Session, config: Config, reference: str, clock_start: str, status: str,
    initials: str, name: str,
) -> Case:
    """Insert a case and its dated milestones, without the events and actions of open_case."""
    start = at(clock_start)
    case_plan = plan(config.preset, config.calendar, start)
    case = Case(
        partnership=config.settings.partnership.key, reference=reference, preset="oldham",
        status=status, clock_start=start, day0=case_plan.day0, opened_at=start,
        child_name=name, child_initials=initials,
    )
    session.add(case)
    session.flush()
    for planned in case_plan.milestones:
        session.add(Milestone(
            partnership=case.partnership, case_id=case.id or 0, key=planned.key,
            label=planned.label, due_at=planned.due, day=planned.day,
            statutory=planned.statutory,
            status="pending" if planned.applies == "always" else "not_applicable",
        ))
    session.flush()
    return case


def done(session: Session, case: Case, *keys: str, late_by: dict[str, str] | None = None,
         overdue: tuple[str, ...] = ()) -> None:
    """Mark milestones done an hour before their deadline (or at a given late instant)."""
    late_by = late_by or {}
    for milestone in session.exec(select(Milestone).where(Milestone.case_id == case.id)):
        if milestone.key in keys:
            milestone.status = "done"
            milestone.done_at = (at(late_by[milestone.key]) if milestone.key in late_by
                                 else milestone.due_at - timedelta(hours=1))
        elif milestone.key in overdue:
            milestone.status = "overdue"
        session.add(milestone)


def ballot(session: Session, case: Case, kind: str, needed: int, closes_at: datetime,
           votes: dict[str, str]) -> None:
    row = Ballot(partnership=case.partnership, case_id=case.id or 0, kind=kind, needed=needed,
                 closes_at=closes_at, opened_at=case.opened_at)
    session.add(row)
    session.flush()
    for partner_key, choice in votes.items():
        session.add(Vote(
            partnership=case.partnership, ballot_id=row.id or 0, partner_key=partner_key,
            member_email=f"{partner_key}@example.invalid", choice=choice,
            rationale="Meets the criteria.", source="slack", cast_at=case.opened_at,
        ))


def agency(session: Session, case: Case, key: str, status: str, due: str,
           closed: str | None = None, reply_kind: str | None = None) -> None:
    session.add(AgencyRequest(
        partnership=case.partnership, case_id=case.id or 0, agency_key=key, status=status,
        asked_at=case.opened_at, due_at=at(due), closed_at=at(closed) if closed else None,
        reply_kind=reply_kind, replied_at=at(closed) if closed else None,
    ))


def milestone_due(session: Session, case: Case, key: str) -> datetime:
    return session.exec(select(Milestone).where(Milestone.case_id == case.id,
                                                Milestone.key == key)).one().due_at


def build_five_cases(database: DatabaseEngine, config: Config) -> None:
    """Just received, awaiting decision, requests out, in sign-off and submitted."""
    with transaction(database) as session:
        # A referral received this morning: Day 0, the acknowledgement due tomorrow.
        received = make_case(session, config, "RR-2027-011", "2027-02-18T07:55", "received",
                             "E.F.", "Ellis Fenwick")
        ballot(session, received, "decision", 2, milestone_due(session, received,
                                                               "partner_decision"), {})
        # Awaiting the decision on Day 1: the council and the police have voted, health not.
        deciding = make_case(session, config, "RR-2027-010", "2027-02-17T11:00",
                             "awaiting_decision", "C.D.", "Casey Dunmore")
        done(session, deciding, "acknowledge", late_by={"acknowledge": "2027-02-17T11:05"})
        ballot(session, deciding, "decision", 2,
               milestone_due(session, deciding, "partner_decision"),
               {"local_authority": "rapid_review", "police": "more_information"})
        # Requests out on Day 9: housing's return is overdue, the school has an extension.
        requests = make_case(session, config, "RR-2027-008", "2027-02-05T09:40",
                             "requests_sent", "A.B.", "Alex Brook")
        done(session, requests, "acknowledge", "partner_decision", "notify_national_panel",
             "agency_requests", "decision_feedback",
             late_by={"decision_feedback": "2027-02-17T11:12"},
             overdue=("agency_returns_due",))
        agency(session, requests, "gp", "returned", "2027-02-16T17:00", "2027-02-15T14:02",
               "return")
        agency(session, requests, "hospital", "no_involvement", "2027-02-16T17:00",
               "2027-02-11T10:30", "no_involvement")
        agency(session, requests, "housing", "open", "2027-02-16T17:00")
        agency(session, requests, "school", "open", "2027-02-19T17:00",
               reply_kind="extension_request")
        # In sign-off on Day 14: the draft went out late on Day 13, one approval of two.
        signoff = make_case(session, config, "RR-2027-006", "2027-01-29T16:45", "draft_report",
                            "G.H.", "Gray Holloway")
        done(session, signoff, "acknowledge", "partner_decision", "notify_national_panel",
             "decision_feedback", "agency_requests", "agency_returns_due", "collation",
             "rr_meeting", "draft_report", late_by={"draft_report": "2027-02-17T18:30"})
        ballot(session, signoff, "signoff", 2,
               milestone_due(session, signoff, "partner_signoff"),
               {"local_authority": "approve"})
        # Submitted yesterday on Day 15; only the lesson logs are still to come.
        submitted = make_case(session, config, "RR-2027-004", "2027-01-27T12:00", "submitted",
                              "J.K.", "Jordan Kells")
        done(session, submitted, "acknowledge", "partner_decision", "notify_national_panel",
             "decision_feedback", "agency_requests", "agency_returns_due", "collation",
             "rr_meeting", "draft_report", "partner_signoff", "submit_national_panel",
             late_by={"submit_national_panel": "2027-02-17T14:05"})
        partnership = config.settings.partnership.key
        # Two messages wait in quarantine, and one message could not be delivered.
        for number, (received_at, sender, reason) in enumerate([
            ("2027-02-16T13:20", "unknown@elsewhere.example", "sender is not a known agency"),
            ("2027-02-17T09:05", "robin.nurse@hospital.example",
             "attachment type .exe is not allowed"),
        ]):
            session.add(InboundMessage(
                partnership=partnership, mailbox=config.settings.mailbox.address,
                server_id=f"q{number}", message_id=f"<q{number}@example.invalid>",
                received_at=at(received_at), raw=b"Subject: held\r\n\r\nheld\r\n",
                status="quarantined", reason=reason, sender=sender,
            ))
        session.add(OutboxMessage(
            partnership=partnership, case_id=requests.id, idempotency_key="dead-1",
            channel="mail", purpose="agency_reminder", recipients="avery.housing@homes.example",
            message_id="<dead-1@example.invalid>", payload=b"", status="dead", attempts=8,
            created_at=at("2027-02-15T09:30"), next_attempt_at=at("2027-02-15T09:30"),
            last_error="550 5.1.1 mailbox unavailable",
        ))
        # The decision feedback of RR-2027-008 went out yesterday, a week after its deadline.
        session.add(OutboxMessage(
            partnership=partnership, case_id=requests.id, idempotency_key="late-1",
            channel="mail", purpose="decision_feedback", recipients="referrer@school.example",
            message_id="<late-1@example.invalid>", payload=b"", status="sent", attempts=1,
            created_at=at("2027-02-17T11:10"), next_attempt_at=at("2027-02-17T11:10"),
            sent_at=at("2027-02-17T11:12"),
        ))

"""Agency requests over Christmas 2026: requests, reminders and escalations at exact instants."""

from __future__ import annotations

from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.agencies.requests import extend_request, record_agency_reply
from bot.cases.lifecycle import open_case
from bot.cases.states import TRANSITIONS, transition
from bot.config import Config
from bot.engine.step import Engine
from bot.kernel.events import publish
from bot.process.working_days import LONDON, parse_instant
from bot.service.wiring import open_database
from bot.store.db import make_engine, transaction
from bot.store.models import AgencyRequest, Case, OutboxMessage
from tests.factories import build_config, example_document
from tests.recording import RecordingMailbox

REFERRAL = parse_instant("2026-12-18T10:00")


def scenario_config(url: str, preset: str) -> Config:
    # Three agencies are asked: the GP, the hospital and housing.
    agencies = [{**agency, "always_ask": agency["key"] in {"gp", "hospital", "housing"}}
                for agency in example_document()["agencies"]]
    return build_config(database_url=url, closure_dates=[], preset=preset, agencies=agencies)


def decide_rapid_review(session: Any, config: Config, case: Case, at: datetime) -> None:
    """Have the partners decide on a Rapid Review, as the ballot would on quorum."""
    # Opening the case opened its decision ballot, so it is awaiting the decision already.
    for status in ("awaiting_decision", "rapid_review"):
        if status in TRANSITIONS[case.status]:
            transition(session, case, status, "test", at)
    publish("case_decided", session, config, case, at, decision="rapid_review")


def london(instant: datetime) -> str:
    return instant.astimezone(LONDON).strftime("%a %d %b %H:%M")


def run_scenario(
    tmp_path: Path, preset: str, decided: str, replies: dict[str, tuple[str, str]], until: str,
    restart_every_step: bool,
) -> list[tuple[str, str, str]]:
    """Step a case every 30 simulated minutes; return (queued at, purpose, to) of agency mail."""
    url = f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    config = scenario_config(url, preset)
    database = open_database(config)
    sent_file = tmp_path / "sent.jsonl"
    with transaction(database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        case_id = case.id
    pending_replies = {parse_instant(at): (agency, kind) for agency, (at, kind) in
                       replies.items()}
    engine = Engine(config, database, RecordingMailbox(sent_file))
    decision_at, end = parse_instant(decided), parse_instant(until)
    now = REFERRAL
    while now <= end:
        if restart_every_step:
            # A restart: a new database engine and mailbox, nothing carried over in memory.
            engine.database.dispose()
            engine = Engine(config, make_engine(url), RecordingMailbox(sent_file))
        with transaction(engine.database) as session:
            case = session.get_one(Case, case_id)
            if now == decision_at:
                # The partners decide on a Rapid Review (the ballot issue publishes this).
                decide_rapid_review(session, config, case, now)
            if now in pending_replies:
                agency, kind = pending_replies[now]
                record_agency_reply(session, config, case, agency, kind, now, actor="agency")
        engine.step(now)
        now += timedelta(minutes=30)
    with transaction(engine.database) as session:
        rows = session.exec(
            select(OutboxMessage).where(col(OutboxMessage.purpose).startswith("agency_"))
            .order_by(col(OutboxMessage.id))
        ).all()
        assert {row.status for row in rows} == {"sent"}
    mailbox = RecordingMailbox(sent_file)
    assert set(mailbox.send_counts().values()) == {1}, "a message was sent twice"
    return [(london(row.created_at), row.purpose, row.recipients) for row in rows]


GP = "lee.safeguarding@gp.example"
HOSPITAL = "robin.nurse@hospital.example"
HOUSING = "avery.housing@homes.example"
HOUSING_SENIOR = "riley.director@homes.example, sam.example@exampleshire.example"

# Oldham: referral Fri 18 Dec 10:00; decision Mon 21 Dec 14:00; returns due Day 7, Thu 31 Dec
# 17:00 (25 and 28 Dec are bank holidays). Reminders two and one working days before (Tue 29
# and Wed 30 Dec at 17:00) and 09:30 on the day; escalation at 09:00 on the next working day,
# Mon 4 Jan (1 Jan is a bank holiday), then daily.
OLDHAM_EXPECTED = [
    ("Mon 21 Dec 14:00", "agency_request", GP),
    ("Mon 21 Dec 14:00", "agency_request", HOSPITAL),
    ("Mon 21 Dec 14:00", "agency_request", HOUSING),
    ("Tue 22 Dec 11:00", "agency_receipt", GP),
    ("Tue 29 Dec 17:00", "agency_reminder", HOSPITAL),
    ("Tue 29 Dec 17:00", "agency_reminder", HOUSING),
    ("Wed 30 Dec 10:00", "agency_receipt", HOSPITAL),
    ("Wed 30 Dec 17:00", "agency_reminder", HOUSING),
    ("Thu 31 Dec 09:30", "agency_final_reminder", HOUSING),
    ("Mon 04 Jan 09:00", "agency_escalation", HOUSING_SENIOR),
    ("Tue 05 Jan 09:00", "agency_escalation", HOUSING_SENIOR),
    ("Wed 06 Jan 09:00", "agency_escalation", HOUSING_SENIOR),
]

# Warrington: decision Tue 22 Dec 12:00 (Day 2); returns due Day 9, Tue 5 Jan 17:00.
# Two working days before is Thu 31 Dec, one is Mon 4 Jan; escalation Wed 6 Jan 09:00.
WARRINGTON_EXPECTED = [
    ("Tue 22 Dec 12:00", "agency_request", GP),
    ("Tue 22 Dec 12:00", "agency_request", HOSPITAL),
    ("Tue 22 Dec 12:00", "agency_request", HOUSING),
    ("Wed 23 Dec 10:00", "agency_receipt", GP),
    ("Thu 31 Dec 17:00", "agency_reminder", HOSPITAL),
    ("Thu 31 Dec 17:00", "agency_reminder", HOUSING),
    ("Mon 04 Jan 10:00", "agency_receipt", HOSPITAL),
    ("Mon 04 Jan 17:00", "agency_reminder", HOUSING),
    ("Tue 05 Jan 09:30", "agency_final_reminder", HOUSING),
    ("Wed 06 Jan 09:00", "agency_escalation", HOUSING_SENIOR),
    ("Thu 07 Jan 09:00", "agency_escalation", HOUSING_SENIOR),
]

SCENARIOS: dict[str, tuple[str, dict[str, tuple[str, str]], str, list[Any]]] = {
    "oldham": ("2026-12-21T14:00", {
        "gp": ("2026-12-22T11:00", "return"),
        "hospital": ("2026-12-30T10:00", "no_involvement"),
    }, "2027-01-06T12:00", OLDHAM_EXPECTED),
    "warrington": ("2026-12-22T12:00", {
        "gp": ("2026-12-23T10:00", "return"),
        "hospital": ("2027-01-04T10:00", "no_involvement"),
    }, "2027-01-07T12:00", WARRINGTON_EXPECTED),
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["oldham", "warrington"])
def test_requests_reminders_and_escalations_fall_on_hand_worked_instants(
    tmp_path: Path, preset: str
) -> None:
    # Given three agencies asked when the partners decide: the GP returns early, the hospital
    # says "no involvement" after the first reminder, and housing misses the deadline,
    decided, replies, until, expected = SCENARIOS[preset]
    # when the case is stepped every 30 simulated minutes over Christmas and New Year,
    queued = run_scenario(tmp_path, preset, decided, replies, until, restart_every_step=False)
    # then each email is queued at exactly the instant worked out by hand, and only those.
    assert queued == expected


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["oldham", "warrington"])
def test_the_same_scenario_survives_a_restart_between_every_two_steps(
    tmp_path: Path, preset: str
) -> None:
    decided, replies, until, expected = SCENARIOS[preset]
    queued = run_scenario(tmp_path, preset, decided, replies, until, restart_every_step=True)
    assert queued == expected


def test_warrington_requests_carry_the_meeting_invitation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    config = scenario_config(url, "warrington")
    database = open_database(config)
    now = parse_instant("2026-12-22T12:00")
    with transaction(database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        decide_rapid_review(session, config, case, now)
        row = session.exec(select(OutboxMessage).where(
            OutboxMessage.purpose == "agency_request")).first()
        assert row is not None
    message = message_from_bytes(row.payload, policy=policy.default)
    invitation = next(part for part in message.walk()
                      if part.get_content_type() == "text/calendar")
    text = invitation.get_content()
    # The meeting is planned for Day 13, Mon 11 Jan 2027, 10:00-12:00 (GMT = UTC).
    assert "DTSTART:20270111T100000Z" in text and "DTEND:20270111T120000Z" in text
    assert "METHOD:REQUEST" in text
    assert f"UID:{case.reference}-rr-meeting-gp@exampleshire.example" in text
    # The body says the deadline in words and the subject names only the case reference.
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    assert "by 17:00 on Tuesday 5 January 2027" in body.get_content()
    assert "secure your records" in body.get_content()
    assert message["Subject"] == (
        f"[{case.reference}] Rapid Review information request: reply by 17:00 on Tuesday"
        " 5 January 2027"
    )


@pytest.mark.slow
def test_an_extension_moves_the_reminders_and_the_escalation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    config = scenario_config(url, "oldham")
    database = open_database(config)
    decided = parse_instant("2026-12-21T14:00")
    with transaction(database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        decide_rapid_review(session, config, case, decided)
        # When housing is given until Wed 6 Jan 12:00,
        extend_request(session, config, case, "housing", parse_instant("2027-01-06T12:00"),
                       decided + timedelta(hours=1), actor="test")
        request = session.exec(select(AgencyRequest).where(
            AgencyRequest.agency_key == "housing")).one()
        assert london(request.due_at) == "Wed 06 Jan 12:00"
    engine = Engine(config, database, RecordingMailbox(tmp_path / "sent.jsonl"))
    now = decided
    while now <= parse_instant("2027-01-07T10:00"):
        engine.step(now)
        now += timedelta(minutes=30)
    with transaction(database) as session:
        housing = session.exec(select(OutboxMessage).where(
            OutboxMessage.recipients.contains("homes.example"))  # type: ignore[attr-defined]
            .order_by(col(OutboxMessage.id))).all()
        queued = [(london(row.created_at), row.purpose) for row in housing]
    # then housing hears of the new date, is reminded on Mon 4 and Tue 5 Jan at 12:00 and at
    # 09:30 on the day, and is escalated on Thu 7 Jan, not on the original dates.
    assert queued == [
        ("Mon 21 Dec 14:00", "agency_request"),
        ("Mon 21 Dec 15:00", "agency_extension"),
        ("Mon 04 Jan 12:00", "agency_reminder"),
        ("Tue 05 Jan 12:00", "agency_reminder"),
        ("Wed 06 Jan 09:30", "agency_final_reminder"),
        ("Thu 07 Jan 09:00", "agency_escalation"),
    ]


def test_a_bounced_contact_is_chased_through_the_alternate_at_once(tmp_path: Path) -> None:
    from bot.agencies.requests import note_contact_problem

    url = f"sqlite:///{tmp_path / 'rrbot.sqlite3'}"
    config = scenario_config(url, "oldham")
    database = open_database(config)
    decided = parse_instant("2026-12-21T14:00")
    with transaction(database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        decide_rapid_review(session, config, case, decided)
        changed = note_contact_problem(session, config, HOSPITAL, "bounced",
                                       decided + timedelta(minutes=5))
        assert [request.agency_key for request in changed] == ["hospital"]
        chased = session.exec(select(OutboxMessage).where(
            col(OutboxMessage.idempotency_key).endswith(":alternate:bounced"))).one()
    assert chased.recipients == "safeguarding@hospital.example"


HOSTILE = "Evil <script>alert(1)</script>\r\nBcc: victim@attacker.example " + "A" * 2000


@pytest.mark.parametrize("purpose", [
    "agency_request", "agency_reminder", "agency_final_reminder", "agency_escalation",
    "agency_receipt", "agency_extension", "agency_flag",
])
def test_every_agency_template_renders_safely_with_a_hostile_agency_name(
    purpose: str, tmp_path: Path
) -> None:
    from bot.kernel.outbox import enqueue_mail
    from bot.mail.render import render_email

    values: dict[str, Any] = dict(
        agency_name=HOSTILE, case_reference="RR-2026-001", due=REFERRAL,
        recipient_names=HOSTILE, partnership="Exampleshire", signature="Business Unit",
        mailbox="rapidreview@exampleshire.example", form_attached=True, meeting_invite=True,
        working_days_late=2, contacts="a@b.example", kind="question",
    )
    email = render_email(purpose, **values)
    # The HTML part escapes the name; the text part carries it as typed.
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "Evil <script>" in email.text
    # A missing variable fails loudly.
    with pytest.raises(Exception, match="undefined"):
        render_email(purpose, case_reference="RR-2026-001")
    # Through the outbox, no CR/LF reaches a header: there is no smuggled Bcc.
    database = open_database(scenario_config(f"sqlite:///{tmp_path / 'db.sqlite3'}", "oldham"))
    with transaction(database) as session:
        row = enqueue_mail(
            session, partnership="x", key=f"k-{purpose}", purpose=purpose,
            sender="rapidreview@exampleshire.example", sender_name=HOSTILE,
            to=["a@b.example"], subject=email.subject, text=email.text, html=email.html,
            now=REFERRAL,
        )
    parsed = message_from_bytes(row.payload, policy=policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["Subject"])
    assert str(parsed["From"]).endswith("<rapidreview@exampleshire.example>")
    assert parsed["Auto-Submitted"] == "auto-generated"

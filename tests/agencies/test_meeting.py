"""The meeting's invitation as Outlook expects it: a request, an update when it moves, a cancel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from icalendar import Calendar
from sqlmodel import Session, col, select

from bot.agencies.requests import record_agency_reply, withdraw_request
from bot.cases.lifecycle import open_case
from bot.kernel.events import publish
from bot.process.working_days import parse_instant
from bot.service.wiring import open_database
from bot.store.db import transaction
from bot.store.models import Case, OutboxMessage
from tests.factories import build_config, example_document
from tests.scenarios.test_agency_scenario import REFERRAL, decide_rapid_review

DECIDED = parse_instant("2026-12-22T12:00")
GP_LEAD = "Head of Safeguarding: Jo Bloggs, GP; \"Practice\""


def meeting_config(tmp_path: Path, preset: str) -> Any:
    """Return the example: three agencies asked, an awkward GP contact name, invitations on."""
    agencies = []
    for agency in example_document()["agencies"]:
        agency = {**agency, "always_ask": agency["key"] in {"gp", "hospital", "housing"}}
        if agency["key"] == "gp":
            agency["contacts"] = [{**agency["contacts"][0], "name": GP_LEAD}]
        agencies.append(agency)
    return build_config(tmp_path, closure_dates=[], agencies=agencies, process={
        "preset": preset, "agency_requests": {"meeting_invite": True}})


@contextmanager
def decided_case(tmp_path: Path, preset: str) -> Iterator[tuple[Session, Any, Case]]:
    """Open a case and decide on a Rapid Review, so its agencies are asked and invited."""
    config = meeting_config(tmp_path, preset)
    database = open_database(config)
    with transaction(database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        decide_rapid_review(session, config, case, DECIDED)
        yield session, config, case
    database.dispose()


def meeting_messages(session: Session, agency: str) -> list[tuple[EmailMessage, Calendar]]:
    """Every email to an agency that carries a meeting message, oldest first."""
    rows = session.exec(select(OutboxMessage).where(
        col(OutboxMessage.idempotency_key).contains(f":agency:{agency}:"))
        .order_by(col(OutboxMessage.id))).all()
    found = []
    for row in rows:
        message = message_from_bytes(row.payload, policy=policy.default)
        assert isinstance(message, EmailMessage)
        parts = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
        if parts:
            found.append((message, Calendar.from_ical(parts[0].get_content())))
    return found


def event_of(calendar: Calendar) -> Any:
    return next(iter(calendar.walk("VEVENT")))


def test_the_invitation_is_a_meeting_request_inside_the_alternative(tmp_path: Path) -> None:
    # Given a Warrington case whose GP contact's name holds a colon, a comma and quotes,
    # when the partners decide on a Rapid Review and the requests go,
    with decided_case(tmp_path, "warrington") as (session, config, case):
        [(message, calendar)] = meeting_messages(session, "gp")
    # then the calendar part, with method=REQUEST, is inside the multipart/alternative,
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain", "text/html", "text/calendar"]
    calendar_part = list(message.iter_parts())[2]
    assert calendar_part.get_param("method") == "REQUEST"
    # and icalendar reads a meeting request from the partnership's mailbox to the GP's lead.
    event = event_of(calendar)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == f"{case.reference}-rr-meeting-gp@exampleshire.example"
    assert int(event["SEQUENCE"]) == 0
    # The meeting is planned for Day 13, Mon 11 Jan 2027, 10:00-12:00 (GMT = UTC).
    assert event.decoded("DTSTART") == datetime.fromisoformat("2027-01-11T10:00+00:00")
    assert event.decoded("DTEND") == datetime.fromisoformat("2027-01-11T12:00+00:00")
    assert str(event["ORGANIZER"]) == "mailto:rapidreview@exampleshire.example"
    attendee = event["ATTENDEE"]
    assert str(attendee) == f"mailto:{config.settings.agency('gp').contacts[0].email}"
    assert attendee.params["CN"] == GP_LEAD


def test_a_withdrawn_agency_gets_a_cancel_and_the_others_do_not(tmp_path: Path) -> None:
    # Given a Warrington case whose agencies were invited to the meeting,
    with decided_case(tmp_path, "warrington") as (session, config, case):
        # when housing is withdrawn and the GP answers that it had no involvement,
        withdraw_request(session, config, case, "housing", DECIDED, "test")
        record_agency_reply(session, config, case, "gp", "no_involvement", DECIDED, "test")
        housing = meeting_messages(session, "housing")
        gp = meeting_messages(session, "gp")
        hospital = meeting_messages(session, "hospital")
    # then housing and the GP each get a CANCEL of the same meeting, one sequence higher,
    for sent in (housing, gp):
        (_request, first), (message, cancel) = sent
        assert str(cancel["METHOD"]) == "CANCEL"
        assert event_of(cancel)["UID"] == event_of(first)["UID"]
        assert int(event_of(cancel)["SEQUENCE"]) == 1
        assert str(event_of(cancel)["STATUS"]) == "CANCELLED"
        assert list(message.iter_parts())[2].get_param("method") == "CANCEL"
        assert str(message["Subject"]).strip().startswith(f"[{case.reference}] Cancelled")
    # and the hospital, still asked, only its invitation.
    assert len(hospital) == 1


def test_the_meeting_moving_sends_an_update_and_the_case_ending_a_cancel(
    tmp_path: Path,
) -> None:
    # Given a Doncaster case (the meeting two working days after the returns are due), its
    # three agencies invited,
    with decided_case(tmp_path, "doncaster") as (session, config, case):
        [(_request, first)] = meeting_messages(session, "hospital")
        # when every agency returns early, which brings the meeting forward,
        for agency in ("gp", "hospital", "housing"):
            record_agency_reply(session, config, case, agency, "return", DECIDED, "test")
        moved = meeting_messages(session, "hospital")
        # and then the case ends before the meeting,
        publish("case_closed", session, config, case, DECIDED)
        ended = meeting_messages(session, "hospital")
    # then each agency got an update of the same meeting, one sequence higher, earlier,
    (_first, _calendar), (update_message, update) = moved
    assert str(update["METHOD"]) == "REQUEST"
    assert event_of(update)["UID"] == event_of(first)["UID"]
    assert int(event_of(update)["SEQUENCE"]) == 1
    assert event_of(update).decoded("DTSTART") < event_of(first).decoded("DTSTART")
    assert "moved" in str(update_message["Subject"])
    # and then a CANCEL of the moved meeting, one higher again.
    (_last_message, cancel) = ended[-1]
    assert len(ended) == 3
    assert str(cancel["METHOD"]) == "CANCEL"
    assert int(event_of(cancel)["SEQUENCE"]) == 2
    assert event_of(cancel).decoded("DTSTART") == event_of(update).decoded("DTSTART")

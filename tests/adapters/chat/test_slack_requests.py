"""Signed requests: forged, tampered, stale and replayed ones change nothing; commands."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import func, select

from bot.commands import agencies as chat_commands
from bot.store.db import transaction
from bot.store.models import AuditEntry, DeliveryReceipt, Vote
from tests.adapters.chat.slack_harness import MANAGER, POLICE_LEAD, Harness, signed


def vote_body(ballot_id: int) -> str:
    payload = {
        "type": "view_submission", "team": {"id": "T0000000000"},
        "user": {"id": POLICE_LEAD, "team_id": "T0000000000"}, "api_app_id": "A1",
        "token": "legacy", "trigger_id": "1.2.3",
        "view": {"id": "V0000000077", "type": "modal", "callback_id": "ballot_rationale",
                 "private_metadata": json.dumps({"ballot_id": ballot_id,
                                                 "choice": "rapid_review"}),
                 "state": {"values": {"rationale": {"text": {"value": "Yes."}}}}},
    }
    return urlencode({"payload": json.dumps(payload)})


def counts(harness: Harness) -> tuple[int, int, int]:
    with transaction(harness.engine.database) as session:
        return (session.exec(select(func.count()).select_from(Vote)).one(),
                session.exec(select(func.count()).select_from(AuditEntry)).one(),
                session.exec(select(func.count()).select_from(DeliveryReceipt)).one())


@pytest.mark.parametrize("forgery", ["bad signature", "tampered body", "301 seconds old"])
def test_a_forged_or_stale_request_is_rejected_and_changes_nothing(
    harness: Harness, forgery: str
) -> None:
    # Given an open ballot and the state before the request,
    reference = harness.open_case()
    body = vote_body(harness.ballot(reference).id)
    before, calls = counts(harness), len(harness.slack.state.calls)
    # when a vote arrives with a forged signature, a changed body or an old timestamp,
    if forgery == "bad signature":
        response = harness.send(body, secret="not-the-signing-secret")
    elif forgery == "tampered body":
        response = harness.send(body.replace("rapid_review", "no_further_action"),
                                signed_body=body)
    else:
        response = harness.send(body, timestamp=int(time.time()) - 301)
    # then it is refused with 401 and nothing is stored or sent.
    assert response.status == 401
    assert counts(harness) == before
    assert len(harness.slack.state.calls) == calls


def test_a_replayed_request_is_rejected_and_changes_nothing(harness: Harness) -> None:
    # Given a signed vote that was accepted,
    reference = harness.open_case()
    request = signed(vote_body(harness.ballot(reference).id))
    assert harness.app.dispatch(request).status == 200
    before = counts(harness)
    # when exactly the same signed request is sent again within the five minutes,
    replay = harness.app.dispatch(signed(request.raw_body, int(
        request.headers["x-slack-request-timestamp"][0])))
    # then it is refused and nothing changes.
    assert replay.status == 401
    assert counts(harness) == before


def test_status_is_for_anyone_and_names_no_child(harness: Harness) -> None:
    # Given an open case on Monday 21 December (Day 1),
    reference = harness.open_case()
    harness.at("2026-12-21T10:00")
    # when a partner asks for the status,
    response = harness.command(POLICE_LEAD, f"status {reference}")
    # then the reply gives the day, what is outstanding and the ballot's progress.
    text = response.body
    assert f"{reference}: day 1 of 15, awaiting decision" in text
    assert "partner decision: 0 of 3 partners" in text
    # And without a case reference, every open case is listed.
    assert harness.command(POLICE_LEAD, "status").body.startswith(f"{reference}: day 1")


def test_extend_and_add_agency_are_for_the_business_manager_only(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an open case and the agency-request functions,
    reference = harness.open_case()
    called: list[tuple[str, Any]] = []

    class Request:
        status = "open"
        due_at = None

    def extend(session: Any, config: Any, case: Any, agency: str, due: datetime, now: datetime,
               actor: str) -> Request:
        called.append(("extend", (case.reference, agency, due.isoformat(), actor)))
        return Request()

    def add(session: Any, config: Any, case: Any, agency: str, now: datetime,
            actor: str) -> Request:
        if agency == "nowhere":
            raise ValueError("no agency 'nowhere' is configured")
        called.append(("add", (case.reference, agency, actor)))
        return Request()

    monkeypatch.setattr(chat_commands.agency_requests, "extend_request", extend)
    monkeypatch.setattr(chat_commands.agency_requests, "add_agency", add)
    # when a partner tries to extend a deadline,
    refused = harness.command(POLICE_LEAD, f"extend {reference} gp 2027-01-08").body
    # then they are refused, and nothing is called;
    assert "only the partnership's business manager" in refused and called == []
    # when the business manager extends and adds agencies,
    extended = harness.command(MANAGER, f"extend {reference} gp 2027-01-08").body
    added = harness.command(MANAGER, f"add-agency {reference} housing").body
    bad = harness.command(MANAGER, f"add-agency {reference} nowhere").body
    # then the new deadline is the end of that working day, and a bad agency is explained.
    assert called == [
        ("extend", (reference, "gp", "2027-01-08T17:00:00+00:00", f"slack:{MANAGER}")),
        ("add", (reference, "housing", f"slack:{MANAGER}")),
    ]
    assert "until 17:00 Fri 8 Jan" in extended and "housing" in added
    assert bad == "Not done: no agency 'nowhere' is configured"
    usage = harness.command(MANAGER, "extend RR-2026-001").body
    assert usage.startswith("Usage:")


def action_body(value: str) -> str:
    payload = {
        "type": "block_actions", "team": {"id": "T0000000000", "domain": "example"},
        "user": {"id": POLICE_LEAD, "team_id": "T0000000000"}, "api_app_id": "A1",
        "token": "legacy", "trigger_id": "1.2.3", "container": {"type": "message"},
        "actions": [{"type": "button", "action_id": "vote:rapid_review", "block_id": "ballot:1",
                     "value": value, "action_ts": f"1766000000.{abs(hash(value)) % 10**6:06d}"}],
    }
    return urlencode({"payload": json.dumps(payload)})


def modal_body(ballot_id: object) -> str:
    return vote_body(0).replace(
        urlencode({"x": '"ballot_id": 0'})[2:], urlencode({"x": f'"ballot_id": {ballot_id}'})[2:])


@pytest.mark.parametrize("ballot_id", ["99999999999999999999999", "424242", "abc", "-1", "１"])
def test_a_vote_on_a_ballot_id_that_is_not_there_is_refused_politely(
    harness: Harness, ballot_id: str
) -> None:
    # Given an open ballot,
    harness.open_case()
    before = counts(harness)
    # when a member's click or form names a ballot id out of range, unknown or not a number,
    clicked = harness.send(action_body(f"{ballot_id}:rapid_review"))
    submitted = harness.send(modal_body(json.dumps(ballot_id)))
    # then Slack gets 200, the member is told politely, and no vote is counted.
    assert (clicked.status, submitted.status) == (200, 200), (clicked.body, submitted.body)
    assert "could not be found" in submitted.body
    harness.step()
    [notice] = harness.slack.state.named("chat.postEphemeral")
    assert notice.arguments["user"] == POLICE_LEAD
    assert notice.arguments["text"].startswith("Sorry, that ballot could not be found")
    assert harness.slack.state.named("views.open") == []
    assert counts(harness)[0] == before[0]

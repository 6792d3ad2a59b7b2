"""The Slack harness: a Slack-backed engine on SQLite, signed requests, a privacy scan.

Its fixtures are offered by the conftest.py of tests/adapters/chat/ and tests/ballots/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlmodel import select

from bot.adapters.chat.slack import SlackChat, build_app
from bot.cases.lifecycle import open_case
from bot.commands.chat_interactions import ChatCommands
from bot.config import Config
from bot.engine.step import Engine
from bot.kernel.dispatch import Dispatcher
from bot.process.working_days import parse_instant
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import Ballot, Case
from tests.adapters.chat.slack_server import CHANNEL_ID, TEAM_ID, SlackApiServer
from tests.factories import build_config
from tests.recording import RecordingMailbox

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
# The child in every test referral; none of this may ever reach chat.
CHILD_NAME = "Tallulah Quixote-Marchbanks"
CHILD_DOB = date(2019, 3, 14)
CHILD_MARKERS = (CHILD_NAME, "Tallulah", "Quixote", "2019-03-14", "14/03/2019", "14 March 2019",
                 "14 Mar 2019", "14.03.2019")
# Friday 18 December 2026: the Oldham decision falls due at 17:00 on Monday 21 December.
REFERRAL = parse_instant("2026-12-18T10:00")
LA_LEAD, LA_DEPUTY, POLICE_LEAD, POLICE_DEPUTY, HEALTH_LEAD = (
    "U0000000010", "U0000000011", "U0000000020", "U0000000021", "U0000000030")
MANAGER = "U0000000001"
# Every chat payload the tests produce, scanned for the child's identity after each test.
PRODUCED: list[str] = []


# The partners of the example with a police deputy on Slack.
PARTNERS_WITH_POLICE_DEPUTY = {"police": {"deputies": [{
    "name": "Robin Inspector", "email": "robin.inspector@police.example",
    "slack_user_id": POLICE_DEPUTY,
}]}}


def slack_config(url: str, quorum: dict[str, Any] | None = None) -> Config:
    """Return the example config on Slack, no closures, a police deputy and this quorum."""
    return build_config(database_url=url, closure_dates=[], chat={"backend": "slack"},
                        partners=PARTNERS_WITH_POLICE_DEPUTY, process={"quorum": quorum or {}})


@pytest.fixture(autouse=True)
def no_child_identity_in_chat() -> Iterator[None]:
    PRODUCED.clear()
    yield
    # Then no chat payload of the test carried the child's name or date of birth.
    for payload in PRODUCED:
        for marker in CHILD_MARKERS:
            assert marker not in payload, f"{marker!r} reached chat: {payload[:200]}"


@pytest.fixture
def slack() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server
        PRODUCED.extend(call.raw + json.dumps(call.arguments) for call in server.state.calls)


@dataclass
class Harness:
    engine: Engine
    slack: SlackApiServer
    app: App
    mailbox: RecordingMailbox
    clock: list[datetime]
    counter: list[int] = field(default_factory=lambda: [0])

    @property
    def now(self) -> datetime:
        return self.clock[0]

    def at(self, text: str) -> datetime:
        self.clock[0] = parse_instant(text)
        return self.clock[0]

    def step(self, text: str | None = None) -> None:
        if text is not None:
            self.at(text)
        self.engine.step(self.now)

    def open_case(self, referrer: str | None = "referrer@school.example") -> str:
        with transaction(self.engine.database) as session:
            case = open_case(session, self.engine.config, REFERRAL, REFERRAL, actor="test",
                             referrer_email=referrer)
            case.child_name, case.child_dob = CHILD_NAME, CHILD_DOB
            session.add(case)
            reference = case.reference
        self.engine.step(self.now)
        return reference

    def ballot(self, reference: str, kind: str = "decision") -> Ballot:
        with transaction(self.engine.database) as session:
            case = session.exec(select(Case).where(Case.reference == reference)).one()
            return session.exec(select(Ballot).where(
                Ballot.case_id == case.id, Ballot.kind == kind).order_by(Ballot.id.desc())  # type: ignore[union-attr]
            ).first()  # type: ignore[return-value]

    def case(self, reference: str) -> Case:
        with transaction(self.engine.database) as session:
            return session.exec(select(Case).where(Case.reference == reference)).one()

    def next_id(self) -> int:
        self.counter[0] += 1
        return self.counter[0]

    def click(self, user: str, ballot_id: int, choice: str, team: str = TEAM_ID,
              action_ts: str | None = None) -> BoltResponse:
        payload = {
            "type": "block_actions", "team": {"id": team, "domain": "example"},
            "user": {"id": user, "team_id": team, "username": user.lower()},
            "api_app_id": "A0000000001", "token": "legacy", "trigger_id": "111.222.abc",
            "channel": {"id": CHANNEL_ID}, "container": {"type": "message"},
            "actions": [{"type": "button", "action_id": f"vote:{choice}",
                         "block_id": f"ballot:{ballot_id}", "value": f"{ballot_id}:{choice}",
                         "action_ts": action_ts or f"1766000000.{self.next_id():06d}"}],
        }
        return self.send(urlencode({"payload": json.dumps(payload)}))

    def submit(self, user: str, ballot_id: int, choice: str, rationale: str,
               team: str = TEAM_ID, view_id: str | None = None) -> BoltResponse:
        payload = {
            "type": "view_submission", "team": {"id": team, "domain": "example"},
            "user": {"id": user, "team_id": team}, "api_app_id": "A0000000001",
            "token": "legacy", "trigger_id": "111.222.def",
            "view": {"id": view_id or f"V{self.next_id():010d}", "type": "modal",
                     "callback_id": "ballot_rationale", "hash": "1",
                     "private_metadata": json.dumps({"ballot_id": ballot_id,
                                                     "choice": choice}),
                     "state": {"values": {"rationale": {"text": {
                         "type": "plain_text_input", "value": rationale}}}}},
        }
        return self.send(urlencode({"payload": json.dumps(payload)}))

    def vote(self, user: str, ballot_id: int, choice: str, rationale: str = "") -> BoltResponse:
        self.click(user, ballot_id, choice)
        return self.submit(user, ballot_id, choice, rationale)

    def command(self, user: str, text: str, team: str = TEAM_ID) -> BoltResponse:
        return self.send(urlencode({
            "token": "legacy", "team_id": team, "user_id": user, "command": "/rapidreview",
            "text": text, "channel_id": CHANNEL_ID, "trigger_id": "111.222.ghi",
            "response_url": "https://hooks.slack.com/commands/x",
        }))

    def send(self, body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET,
             signed_body: str | None = None) -> BoltResponse:
        response = self.app.dispatch(signed(body, timestamp, secret, signed_body))
        # What the bot answers a request with (a command's reply) is chat output too.
        PRODUCED.append(response.body)
        return response


def signed(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET,
           signed_body: str | None = None) -> BoltRequest:
    # Bolt checks the signature against the real clock, so requests carry the real time.
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(
        timestamp=stamp, body=signed_body if signed_body is not None else body)
    return BoltRequest(body=body, headers={
        "content-type": ["application/x-www-form-urlencoded"],
        "x-slack-signature": [signature], "x-slack-request-timestamp": [stamp],
    })


def make_harness(tmp_path: Path, slack: SlackApiServer,
                 quorum: dict[str, Any] | None = None) -> Harness:
    slack.state.users.update({user: TEAM_ID for user in (
        LA_LEAD, LA_DEPUTY, POLICE_LEAD, POLICE_DEPUTY, HEALTH_LEAD, MANAGER)})
    config = slack_config(f"sqlite:///{tmp_path / 'rrbot.sqlite3'}", quorum)
    client = WebClient(token="xoxb-test", base_url=slack.base_url)
    mailbox = RecordingMailbox(tmp_path / "sent.jsonl")
    engine = build_engine(config, mailbox, chat=SlackChat(client, CHANNEL_ID, TEAM_ID))
    clock = [REFERRAL]

    def send_now() -> None:
        Dispatcher(engine.database, engine.mailbox, engine.retry_policy,
                   engine.chat).dispatch(clock[0])

    app = build_app(config, ChatCommands(config, engine.database), client, SIGNING_SECRET,
                    clock=lambda: clock[0], on_change=send_now)
    return Harness(engine, slack, app, mailbox, clock)


@pytest.fixture
def harness(tmp_path: Path, slack: SlackApiServer) -> Iterator[Harness]:
    built = make_harness(tmp_path, slack)
    yield built
    built.engine.database.dispose()


@pytest.fixture
def unanimous(tmp_path: Path, slack: SlackApiServer) -> Iterator[Harness]:
    built = make_harness(tmp_path, slack, {"decision": "all", "signoff": "all"})
    yield built
    built.engine.database.dispose()


def blocks_text(arguments: dict[str, Any]) -> str:
    blocks = arguments.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return json.dumps(blocks)


def block_list(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = arguments.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks or [])

"""The chat backends on their wire: check-chat, Slack's rate limits, the console's output."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.adapters.chat.console import ConsoleChat
from bot.adapters.chat.slack import SlackChat
from bot.cli.main import app
from bot.service import chat as cli_chat
from bot.service.wiring import build_engine
from bot.store.db import transaction
from bot.store.models import OutboxMessage
from tests.adapters.chat.slack_harness import (
    CHILD_DOB,
    CHILD_NAME,
    PRODUCED,
    REFERRAL,
    Harness,
    slack_config,
)
from tests.adapters.chat.slack_server import (
    CHANNEL_ID,
    REQUIRED_SCOPES,
    TEAM_ID,
    SlackApiServer,
    manifest_scopes,
)
from tests.factories import EMBEDDED_DATABASE, write_config
from tests.recording import RecordingMailbox


def test_check_chat_checks_token_channel_and_every_member(
    tmp_path: Path, slack: SlackApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a Slack config whose workspace knows every member but the health lead,
    path = write_config(tmp_path, name="slack.toml", database_url=EMBEDDED_DATABASE,
                        chat={"backend": "slack"})
    slack.state.users.update({u: TEAM_ID for u in (
        "U0000000001", "U0000000010", "U0000000011", "U0000000020")})
    monkeypatch.setenv("RRBOT_SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("RRBOT_SLACK_SIGNING_SECRET", "secret")
    monkeypatch.setenv("RRBOT_SLACK_APP_TOKEN", "xapp-test")
    from slack_sdk import WebClient

    monkeypatch.setattr(cli_chat, "open_chat", lambda config: SlackChat(
        WebClient(token="xoxb-test", base_url=slack.base_url), CHANNEL_ID, TEAM_ID))
    # when check-chat runs,
    result = CliRunner().invoke(app, ["check-chat", "--config", str(path)])
    # then it names the missing user and fails; with the user added it passes.
    assert result.exit_code == 2
    assert "partners.health lead Pat Nurse: Slack user U0000000030: users_info: user_not_found" \
        in result.output
    slack.state.users["U0000000030"] = TEAM_ID
    result = CliRunner().invoke(app, ["check-chat", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "channel C0000000000 OK (private)" in result.output
    assert {c.method for c in slack.state.calls} >= {"auth.test", "conversations.info",
                                                     "users.info"}


def test_the_console_backend_prints_ballots_without_the_childs_identity(tmp_path: Path) -> None:
    # Given the embedded default: the console instead of Slack,
    config = slack_config(f"sqlite:///{tmp_path / 'console.sqlite3'}")
    stream = io.StringIO()
    engine = build_engine(config, RecordingMailbox(tmp_path / "sent.jsonl"),
                          chat=ConsoleChat(stream))
    from bot.cases.lifecycle import open_case

    with transaction(engine.database) as session:
        case = open_case(session, config, REFERRAL, REFERRAL, actor="test")
        case.child_name, case.child_dob = CHILD_NAME, CHILD_DOB
        reference = case.reference
    # when the engine steps,
    engine.step(REFERRAL)
    # then the ballot is printed with how to vote, and names only the case.
    output = stream.getvalue()
    PRODUCED.append(output)
    assert f"{reference}: partner decision" in output
    assert f"rrbot vote {reference} --config FILE --ballot decision" in output
    engine.database.dispose()


def test_a_rate_limited_post_is_retried_after_retry_after_and_never_posted_twice(
    harness: Harness,
) -> None:
    # Given Slack answers the first ballot post with 429 and Retry-After: 120,
    harness.slack.state.fail_next("chat.postMessage", 429, {"ok": False,
                                                            "error": "ratelimited"},
                                  {"Retry-After": "120"})
    reference = harness.open_case()
    # then the post waits in the outbox and goes once Retry-After has passed.
    assert harness.ballot(reference).chat_ts is None
    harness.step("2026-12-18T10:01")
    assert harness.ballot(reference).chat_ts is None
    harness.step("2026-12-18T10:03")
    assert harness.ballot(reference).chat_ts is not None
    # The retry looked in the channel's history first (it may have gone), and posted once.
    assert len(harness.slack.state.named("conversations.history")) == 1
    channel_posts = [c for c in harness.slack.state.named("chat.postMessage")
                     if c.arguments.get("channel") == CHANNEL_ID]
    assert len(channel_posts) == 2


def test_the_manifest_gives_every_scope_the_bot_calls_need() -> None:
    # Given the Slack app manifest in the README, then every method the bot calls is allowed.
    assert set(REQUIRED_SCOPES.values()) <= manifest_scopes()


def test_a_scope_missing_from_the_app_fails_the_call_as_slack_does(harness: Harness) -> None:
    # Given an app installed without groups:history, and a first ballot post that failed,
    harness.slack.state.scopes.discard("groups:history")
    harness.slack.state.fail_next("chat.postMessage", 429, {"ok": False,
                                                            "error": "ratelimited"},
                                  {"Retry-After": "120"})
    reference = harness.open_case()
    # when the retry looks in the channel's history for it,
    harness.step("2026-12-18T10:03")
    # then Slack refuses with missing_scope, the ballot is not posted, and the outbox says why.
    assert len(harness.slack.state.named("conversations.history")) == 1
    assert harness.ballot(reference).chat_ts is None
    assert len(harness.slack.state.named("chat.postMessage")) == 1
    with transaction(harness.engine.database) as session:
        errors = [row.last_error or "" for row in session.exec(select(OutboxMessage))]
    assert any("missing_scope" in error for error in errors)

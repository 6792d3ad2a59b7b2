"""Chat at the edge: check the set-up, and listen for Slack with the commands behind it."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import Engine as DatabaseEngine

from bot.adapters.chat.slack import SlackChat, serve
from bot.ballots.members import members
from bot.commands.chat_interactions import ChatCommands
from bot.config import Config
from bot.kernel.chat import ChatError
from bot.kernel.dispatch import Dispatcher
from bot.service.wiring import build_engine, open_chat, open_database


def member_user_ids(config: Config) -> dict[str, str]:
    """Every partner member's and the business manager's Slack user id, labelled."""
    labelled = {m.slack_user_id: f"partners.{m.partner_key} {m.role} {m.name}"
                for m in members(config) if m.slack_user_id}
    manager = config.settings.business_manager
    if manager.slack_user_id:
        labelled.setdefault(manager.slack_user_id, f"business_manager {manager.name}")
    return labelled


def check_chat_setup(config: Config) -> tuple[list[str], list[str]]:
    """Check the chat backend; for Slack also every configured member. Return lines, problems."""
    chat = open_chat(config)
    if not isinstance(chat, SlackChat):
        return chat.check(), []
    try:
        lines = chat.check()
    except ChatError as exc:
        return [], [f"chat.slack: {exc}"]
    found, problems = chat.check_users(member_user_ids(config))
    return lines + found, problems


def listen_for_chat(
    config: Config,
    database: DatabaseEngine | None = None,
    environ: Mapping[str, str] | None = None,
    port: int = 3000,
    on_change: Callable[[], None] | None = None,
) -> None:
    """Listen for Slack until stopped; without on_change, each change is sent at once."""
    if database is None:
        database = open_database(config)
    if on_change is None:
        engine = build_engine(config)

        def send_now() -> None:
            Dispatcher(engine.database, engine.mailbox, engine.retry_policy,
                       engine.chat).dispatch(datetime.now(UTC))

        on_change = send_now
    serve(config, ChatCommands(config, database), os.environ if environ is None else environ,
          port=port, on_change=on_change)

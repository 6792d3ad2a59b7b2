"""The chat commands of `rrbot`: check the Slack set-up, record a vote, listen for Slack."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bot.ballots.lifecycle import BallotRefused, ballot_for_case, reopen_ballot
from bot.ballots.members import VoteRefused, member_by_name
from bot.ballots.voting import cast_vote
from bot.cases.lifecycle import CaseNotFound, find_case
from bot.config import Config, ConfigError, load_config, missing_secrets
from bot.kernel.outbox import Dispatcher
from bot.process.working_days import LONDON, parse_instant
from bot.service.wiring import build_engine, open_chat, open_database
from bot.store.db import transaction

RequiredConfig = Annotated[
    Path, typer.Option("--config", help="A configuration file (see config.example.toml).")
]
EXIT_BAD_INPUT = 2


def register(app: typer.Typer) -> None:
    """Add check-chat, vote, reopen-ballot and chat-listen to the command line."""
    app.command("check-chat")(check_chat)
    app.command("vote")(vote)
    app.command("reopen-ballot")(reopen)
    app.command("chat-listen")(chat_listen)


def check_chat(config: RequiredConfig) -> None:
    """Check the chat set-up: the Slack token, the channel and every partner member's user."""
    loaded = _load(config)
    if loaded.settings.chat.backend != "slack":
        typer.echo(f"chat {loaded.settings.chat.backend}: " + "; ".join(
            open_chat(loaded).check()))
        return
    missing = [line for line in missing_secrets(loaded.settings) if "chat.slack" in line]
    if missing:
        _fail(*(f"{config}: {line}" for line in missing))
    from bot.adapters.chat.slack import SlackChat, check_workspace

    chat = open_chat(loaded)
    assert isinstance(chat, SlackChat)
    lines, problems = check_workspace(loaded, chat)
    for line in lines:
        typer.echo(f"  {line}")
    if problems:
        _fail(*problems)
    typer.echo(f"chat slack: OK ({len(lines)} checks)")


def vote(
    case: Annotated[str, typer.Argument(help="The case reference, e.g. RR-2026-001.")],
    config: RequiredConfig,
    ballot: Annotated[str, typer.Option("--ballot", help="decision or signoff.")],
    partner: Annotated[str, typer.Option(help="local_authority, police or health.")],
    member: Annotated[str, typer.Option(help="The voting lead's or deputy's name or email.")],
    choice: Annotated[str, typer.Option(help="e.g. rapid_review, approve, request_changes.")],
    evidence: Annotated[str, typer.Option(help="How the vote was given (a call at 10:05...).")],
    rationale: Annotated[str, typer.Option(help="The member's rationale.")] = "",
    now: Annotated[str | None, typer.Option(help="When it was given (default: now).")] = None,
) -> None:
    """Record a vote a partner member gave another way (by phone), on their behalf."""
    loaded = _load(config)
    instant = _instant(now)
    if ballot not in ("decision", "signoff"):
        _fail("--ballot: choose decision or signoff")
    if not evidence.strip():
        _fail("--evidence: say how the vote was given")
    from bot.cli.main import database_errors

    manager = loaded.settings.business_manager
    with database_errors(loaded):
        engine = build_engine(loaded)
    try:
        with database_errors(loaded), transaction(engine.database) as session:
            found = ballot_for_case(session, find_case(session, case), ballot)
            if found is None or found.status != "open":
                _fail(f"{case} has no open {ballot} ballot; if the last one closed without"
                      f" an answer, `rrbot reopen-ballot {case} --ballot {ballot}` opens one")
            voter = member_by_name(loaded, partner, member)
            key = hashlib.sha256("|".join([
                str(found.id), partner, voter.email, choice, rationale, evidence,
                instant.isoformat(),
            ]).encode("utf-8")).hexdigest()
            result = cast_vote(
                session, loaded, found.id or 0, voter, choice, rationale, instant,
                source="recorded", delivery_key=f"cli:{key}",
                recorded_by=f"business manager {manager.name}", evidence=evidence,
            )
    except (CaseNotFound, VoteRefused) as exc:
        _fail(str(exc.args[0]))
    closed = f"; the ballot closed: {result.closed_with}" if result.closed_with else ""
    typer.echo(f"{case}: {result.status} {partner} {choice} by {voter.name}{closed}")


def reopen(
    case: Annotated[str, typer.Argument(help="The case reference, e.g. RR-2026-001.")],
    config: RequiredConfig,
    ballot: Annotated[str, typer.Option("--ballot", help="decision or signoff.")],
    now: Annotated[str | None, typer.Option(help="When (default: now).")] = None,
) -> None:
    """Ask the partners again on a ballot that closed without quorum or for more information."""
    loaded = _load(config)
    instant = _instant(now)
    if ballot not in ("decision", "signoff"):
        _fail("--ballot: choose decision or signoff")
    from bot.cli.main import database_errors

    manager = loaded.settings.business_manager
    try:
        with database_errors(loaded), transaction(open_database(loaded)) as session:
            opened = reopen_ballot(session, loaded, find_case(session, case), ballot, instant,
                                   f"business manager {manager.name}")
            closes_at = opened.closes_at
    except (CaseNotFound, BallotRefused) as exc:
        _fail(str(exc.args[0]))
    # The running service posts the new ballot to chat (and emails a sign-off request).
    typer.echo(f"{case}: {ballot} ballot reopened; it closes"
               f" {closes_at.astimezone(LONDON):%H:%M %a %d %b %Y}")


def chat_listen(
    config: RequiredConfig,
    port: Annotated[int, typer.Option(help="The port for HTTP mode.")] = 3000,
) -> None:
    """Listen for Slack votes and commands (Socket Mode, or HTTP as configured)."""
    loaded = _load(config)
    if loaded.settings.chat.backend != "slack":
        _fail("chat.backend is not \"slack\"; with the console, votes use `rrbot vote`")
    missing = [line for line in missing_secrets(loaded.settings) if "chat.slack" in line]
    if missing:
        _fail(*(f"{config}: {line}" for line in missing))
    from bot.adapters.chat.slack import serve

    engine = build_engine(loaded)

    def send_now() -> None:
        Dispatcher(engine.database, engine.mailbox, engine.retry_policy,
                   engine.chat).dispatch(datetime.now(UTC))

    serve(loaded, open_database(loaded), os.environ, port=port, on_change=send_now)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        _fail(*exc.problems)


def _instant(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        return parse_instant(text, LONDON)
    except ValueError as exc:
        _fail(f"--now: {exc}")


def _fail(*lines: str) -> NoReturn:
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(EXIT_BAD_INPUT)

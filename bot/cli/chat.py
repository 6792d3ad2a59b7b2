"""The chat commands of `rrbot`: check the chat set-up, record a vote, listen for Slack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.ballots.members import PARTNER_LABELS
from bot.cli.common import (
    CaseArgument,
    RequiredConfig,
    command_context,
    database_errors,
    fail,
    load,
    read_instant,
)
from bot.commands import ballots
from bot.commands.people import business_manager_at_cli
from bot.config import Config, missing_secrets
from bot.process.working_days import LONDON
from bot.service.chat import check_chat_setup, listen_for_chat
from bot.service.wiring import build_engine
from bot.store.statuses import BallotKind

BallotOption = Annotated[str, typer.Option("--ballot", help="decision or signoff.")]


def register(app: typer.Typer) -> None:
    """Add check-chat, vote, reopen-ballot and chat-listen to the command line."""
    app.command("check-chat")(check_chat)
    app.command("vote")(vote)
    app.command("reopen-ballot")(reopen)
    app.command("chat-listen")(chat_listen)


def check_chat(config: RequiredConfig) -> None:
    """Check the chat set-up: the Slack token, the channel and every partner member's user."""
    loaded = load(config)
    backend = loaded.settings.chat.backend
    if backend != "slack":
        lines, _ = check_chat_setup(loaded)
        typer.echo(f"chat {backend}: " + "; ".join(lines))
        return
    _require_slack_secrets(config, loaded)
    lines, problems = check_chat_setup(loaded)
    for line in lines:
        typer.echo(f"  {line}")
    if problems:
        fail(*problems)
    typer.echo(f"chat slack: OK ({len(lines)} checks)")


def vote(
    case: CaseArgument,
    config: RequiredConfig,
    ballot: BallotOption,
    partner: Annotated[str, typer.Option(help="local_authority, police or health.")],
    member: Annotated[str, typer.Option(help="The voting lead's or deputy's name or email.")],
    choice: Annotated[str, typer.Option(help="e.g. rapid_review, approve, request_changes.")],
    evidence: Annotated[str, typer.Option(help="How the vote was given (a call at 10:05...).")],
    rationale: Annotated[str, typer.Option(help="The member's rationale.")] = "",
    now: Annotated[str | None, typer.Option(help="When it was given (default: now).")] = None,
) -> None:
    """Record a vote a partner member gave another way (by phone), on their behalf."""
    loaded = load(config)
    given_at = read_instant(now, "--now")
    _require_ballot_kind(ballot)
    if not evidence.strip():
        fail("--evidence: say how the vote was given")
    with database_errors(loaded):
        engine = build_engine(loaded)
    request = ballots.CastVote(
        ballots.OpenBallotOnCase(case, ballot), choice, rationale, ballots.VoteSource.RECORDED,
        on_behalf=ballots.OnBehalf(partner, member, evidence))
    actor = business_manager_at_cli(loaded)
    with command_context(loaded, actor, given_at, engine.database) as context:
        result = ballots.cast_vote(context, request)
    closed = f"; the ballot closed: {result.closed_with}" if result.closed_with else ""
    # A later vote for the same organisation replaces its earlier one: say so, or it looks lost.
    organisation = PARTNER_LABELS.get(partner, partner)
    replaced = f"; it replaces the {organisation}'s earlier vote" if result.replaced else ""
    typer.echo(f"{case}: {result.status} {partner} {choice} by {result.member_name}{replaced}"
               f"{closed}")


def reopen(
    case: CaseArgument,
    config: RequiredConfig,
    ballot: BallotOption,
    now: Annotated[str | None, typer.Option(help="When (default: now).")] = None,
) -> None:
    """Ask the partners again on a ballot that closed without quorum or for more information."""
    loaded = load(config)
    reopened_at = read_instant(now, "--now")
    _require_ballot_kind(ballot)
    with command_context(loaded, business_manager_at_cli(loaded), reopened_at) as context:
        opened = ballots.reopen_ballot(context, ballots.ReopenBallot(case, ballot))
    # The running service posts the new ballot to chat (and emails a sign-off request).
    typer.echo(f"{case}: {ballot} ballot reopened; it closes"
               f" {opened.closes_at.astimezone(LONDON):%H:%M %a %d %b %Y}")


def chat_listen(
    config: RequiredConfig,
    port: Annotated[int, typer.Option(help="The port for HTTP mode.")] = 3000,
) -> None:
    """Listen for Slack votes and commands (Socket Mode, or HTTP as configured)."""
    loaded = load(config)
    if loaded.settings.chat.backend != "slack":
        fail("chat.backend is not \"slack\"; with the console, votes use `rrbot vote`")
    _require_slack_secrets(config, loaded)
    listen_for_chat(loaded, port=port)


def _require_ballot_kind(ballot: str) -> None:
    if ballot not in tuple(BallotKind):
        fail("--ballot: choose decision or signoff")


def _require_slack_secrets(path: Path, loaded: Config) -> None:
    missing = [line for line in missing_secrets(loaded.settings) if "chat.slack" in line]
    if missing:
        fail(*(f"{path}: {line}" for line in missing))

"""`rrbot quarantine ...`: list, show, release (vouched for) or discard (with a reason)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import (
    NowOption,
    RequiredConfig,
    command_context,
    console,
    load,
    read_instant,
)
from bot.commands import quarantine
from bot.commands.base import Context
from bot.commands.people import business_manager_at_cli
from bot.config import Config
from bot.process.working_days import london_time

quarantine_app = typer.Typer(help="Mail the bot set aside for the business manager.",
                             no_args_is_help=True)

MessageArgument = Annotated[int, typer.Argument(help="The message's number, from `list`.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")]


def register(app: typer.Typer) -> None:
    """Add the quarantine commands to the rrbot command line."""
    app.add_typer(quarantine_app, name="quarantine")


@quarantine_app.command("list")
def list_messages(
    config: RequiredConfig,
    discarded: Annotated[bool, typer.Option("--discarded", help="Include discarded ones.")]
    = False,
) -> None:
    """List the messages waiting in quarantine, oldest first, with why each was held."""
    loaded = load(config)
    with _as_manager(loaded, None) as context:
        lines = quarantine.list_quarantined(context, quarantine.ListQuarantine(discarded))
    table = Table(title=f"Quarantine: {len(lines)} message(s)", title_justify="left")
    for column in ("Number", "Received", "From", "Why", *(["Status"] if discarded else [])):
        table.add_column(column)
    for line in lines:
        table.add_row(str(line.inbound_id), london_time(line.received_at),
                      line.sender or "unknown", line.reason or "no reason recorded",
                      *([line.status] if discarded else []))
    console.print(table)


@quarantine_app.command("show")
def show(config: RequiredConfig, message: MessageArgument) -> None:
    """Show one message: sender, subject, when, why held, verification, attachments, text."""
    loaded = load(config)
    with _as_manager(loaded, None) as context:
        detail = quarantine.show_quarantined(context, quarantine.ShowQuarantined(message))
    lines = [
        f"Message {detail.inbound_id} ({detail.status}, {detail.size} bytes)",
        f"From: {detail.sender or 'unknown'}",
        f"Subject: {detail.subject}",
        f"Received: {london_time(detail.received_at)}",
        f"Why it was held: {detail.reason or 'no reason recorded'}",
        *([f"Why it was discarded: {detail.discarded_reason}"] if detail.discarded_reason else []),
        f"Sender verification now: {detail.verification}",
        *(f"Authentication-Results: {value}" for value in detail.authentication_results),
        "Attachments: " + (", ".join(f"{name} ({size} bytes)" for name, size in
                                     detail.attachments) or "none"),
        "",
        detail.body,
    ]
    # The text goes to the business manager's terminal only, never to a log.
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@quarantine_app.command("release")
def release(
    config: RequiredConfig,
    message: MessageArgument,
    vouched_as: Annotated[str, typer.Option(
        "--as", help="What you vouch it is: referral, return, vote or report.")],
    reason: ReasonOption = "",
    now: NowOption = None,
) -> None:
    """Put a message through the bot again, vouched for by you as what --as says."""
    loaded = load(config)
    with _as_manager(loaded, now) as context:
        released = quarantine.release(context, quarantine.ReleaseQuarantined(
            message, vouched_as, reason))
    on_case = f" on {released.case_reference}" if released.case_reference else ""
    source, target = released.folders
    console.print(f"message {released.inbound_id} released: {released.kind}{on_case}; what it"
                  f" sends goes, and its copy moves from {source} to {target}, at the bot's"
                  " next step", markup=False, highlight=False)


@quarantine_app.command("discard")
def discard(config: RequiredConfig, message: MessageArgument, reason: ReasonOption = "",
            now: NowOption = None) -> None:
    """Set a message aside for good with the reason; it is kept, and leaves the digest."""
    loaded = load(config)
    with _as_manager(loaded, now) as context:
        discarded = quarantine.discard(context, quarantine.DiscardQuarantined(message, reason))
    console.print(f"message {discarded.inbound_id} discarded: {discarded.reason}",
                  markup=False, highlight=False)


def _as_manager(loaded: Config, now: str | None) -> AbstractContextManager[Context]:
    """Run a command as the business manager at the server's terminal, in one transaction."""
    return command_context(loaded, business_manager_at_cli(loaded), read_instant(now, "--now"))


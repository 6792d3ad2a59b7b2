"""`rrbot request ...`: the business manager's changes to agency requests, each audited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import (
    CaseArgument,
    NowOption,
    RequiredConfig,
    command_context,
    console,
    load,
    read_instant,
)
from bot.commands import agencies
from bot.commands.agencies import AgencyRequestState
from bot.commands.base import Context
from bot.commands.people import OPERATOR
from bot.process.working_days import LONDON

request_app = typer.Typer(help="Agency information requests.", no_args_is_help=True)

AgencyArgument = Annotated[str, typer.Argument(help="The agency key from the config.")]


def register(app: typer.Typer) -> None:
    """Add the request commands to the rrbot command line."""
    app.add_typer(request_app, name="request")


@request_app.command("extend")
def extend(config: RequiredConfig, case: CaseArgument, agency: AgencyArgument,
           due: Annotated[str, typer.Option(help="The new deadline (ISO 8601).")],
           now: NowOption = None) -> None:
    """Give an agency more time; its reminders move to the new deadline."""
    new_due = read_instant(due, "--due")
    _change(config, now, lambda context: agencies.extend_request(
        context, agencies.ExtendDeadline(case, agency, new_due)))


@request_app.command("add")
def add(config: RequiredConfig, case: CaseArgument, agency: AgencyArgument,
        now: NowOption = None) -> None:
    """Ask one more agency on a case."""
    _change(config, now, lambda context: agencies.add_agency(
        context, agencies.AddAgency(case, agency)))


@request_app.command("withdraw")
def withdraw(config: RequiredConfig, case: CaseArgument, agency: AgencyArgument,
             now: NowOption = None) -> None:
    """Stop asking an agency; nothing more is sent to it."""
    _change(config, now, lambda context: agencies.withdraw_request(
        context, agencies.WithdrawAgency(case, agency)))


@request_app.command("received")
def received(config: RequiredConfig, case: CaseArgument, agency: AgencyArgument,
             evidence: Annotated[str, typer.Option(help="How it arrived, for the audit.")],
             now: NowOption = None) -> None:
    """Record a return that came another way (a secure portal, by hand)."""
    _change(config, now, lambda context: agencies.record_return(
        context, agencies.RecordReturn(case, agency, evidence)))


@request_app.command("list")
def list_requests(config: RequiredConfig, case: CaseArgument) -> None:
    """Show a case's agency requests and where each stands."""
    loaded = load(config)
    with command_context(loaded, OPERATOR, read_instant(None, "--now")) as context:
        lines = agencies.list_requests(context, case)
    table = Table(title=f"{case}: agency requests", title_justify="left")
    for column in ("Agency", "Status", "Due", "Last reply", "Contact"):
        table.add_column(column)
    for line in lines:
        due = f"{line.due_at.astimezone(LONDON):%a %d %b %H:%M}" if line.due_at else "-"
        table.add_row(line.agency_key, line.status, due, line.reply_kind or "-",
                      line.contact_problem or "ok")
    console.print(table)


def _change(config_path: Path, now_text: str | None,
            change: Callable[[Context], AgencyRequestState]) -> None:
    loaded = load(config_path)
    with command_context(loaded, OPERATOR, read_instant(now_text, "--now")) as context:
        state = change(context)
    summary = f"{state.case_reference}: {state.agency_key} {state.status}"
    if state.due_at is not None:
        summary += f", due {state.due_at.astimezone(LONDON):%a %d %b %Y %H:%M}"
    console.print(summary, markup=False, highlight=False)

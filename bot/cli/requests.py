"""`rrbot request ...`: the business manager's changes to agency requests, each audited."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import col, select

from bot.agencies import requests as agency_requests
from bot.cases.lifecycle import CaseNotFound, find_case
from bot.config import ConfigError, load_config
from bot.process.working_days import LONDON, parse_instant
from bot.service.wiring import open_database
from bot.store.db import transaction
from bot.store.models import AgencyRequest

request_app = typer.Typer(help="Agency information requests.", no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", help="The configuration file.")]
CaseArgument = Annotated[str, typer.Argument(help="The case reference, e.g. RR-2026-001.")]
AgencyArgument = Annotated[str, typer.Argument(help="The agency key from the config.")]
NowOption = Annotated[str | None, typer.Option("--now", help="Act as at this instant.")]


def register(app: typer.Typer) -> None:
    """Add the request commands to the rrbot command line."""
    app.add_typer(request_app, name="request")


def _change(config_path: Path, case_reference: str, now_text: str | None, change: str,
            **options: object) -> None:
    from bot.cli.main import console, database_errors, fail

    try:
        config = load_config(config_path)
        now = parse_instant(now_text) if now_text else datetime.now(UTC)
        with database_errors(config), transaction(open_database(config)) as session:
            case = find_case(session, case_reference)
            function = getattr(agency_requests, change)
            request = function(session, config, case, now=now, actor="cli", **options)
            summary = f"{case_reference}: {request.agency_key} {request.status}"
            if request.due_at is not None:
                summary += f", due {request.due_at.astimezone(LONDON):%a %d %b %Y %H:%M}"
    except ConfigError as exc:
        fail(*exc.problems)
    except (CaseNotFound, ValueError) as exc:
        fail(str(exc.args[0]))
    console.print(summary, markup=False, highlight=False)


@request_app.command("extend")
def extend(config: ConfigOption, case: CaseArgument, agency: AgencyArgument,
           due: Annotated[str, typer.Option(help="The new deadline (ISO 8601).")],
           now: NowOption = None) -> None:
    """Give an agency more time; its reminders move to the new deadline."""
    try:
        new_due = parse_instant(due)
    except ValueError as exc:
        from bot.cli.main import fail

        fail(f"--due: {exc}")
    _change(config, case, now, "extend_request", agency_key=agency, new_due=new_due)


@request_app.command("add")
def add(config: ConfigOption, case: CaseArgument, agency: AgencyArgument,
        now: NowOption = None) -> None:
    """Ask one more agency on a case."""
    _change(config, case, now, "add_agency", agency_key=agency)


@request_app.command("withdraw")
def withdraw(config: ConfigOption, case: CaseArgument, agency: AgencyArgument,
             now: NowOption = None) -> None:
    """Stop asking an agency; nothing more is sent to it."""
    _change(config, case, now, "withdraw_request", agency_key=agency)


@request_app.command("received")
def received(config: ConfigOption, case: CaseArgument, agency: AgencyArgument,
             evidence: Annotated[str, typer.Option(help="How it arrived, for the audit.")],
             now: NowOption = None) -> None:
    """Record a return that came another way (a secure portal, by hand)."""
    _change(config, case, now, "mark_received", agency_key=agency, evidence=evidence)


@request_app.command("list")
def list_requests(config: ConfigOption, case: CaseArgument) -> None:
    """Show a case's agency requests and where each stands."""
    from bot.cli.main import console, database_errors, fail

    try:
        loaded = load_config(config)
        with database_errors(loaded), transaction(open_database(loaded)) as session:
            found = find_case(session, case)
            rows = session.exec(select(AgencyRequest).where(AgencyRequest.case_id == found.id)
                                .order_by(col(AgencyRequest.id))).all()
    except ConfigError as exc:
        fail(*exc.problems)
    except CaseNotFound as exc:
        fail(str(exc.args[0]))
    table = Table(title=f"{case}: agency requests", title_justify="left")
    for column in ("Agency", "Status", "Due", "Last reply", "Contact"):
        table.add_column(column)
    for row in rows:
        due = f"{row.due_at.astimezone(LONDON):%a %d %b %H:%M}" if row.due_at else "-"
        table.add_row(row.agency_key, row.status, due, row.reply_kind or "-",
                      row.contact_problem or "ok")
    console.print(table)

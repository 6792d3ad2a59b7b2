"""`rrbot report ...`: add a report version, hold the submission, send it late with go-ahead."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import col, select

from bot.cases.lifecycle import CaseNotFound, find_case
from bot.config import ConfigError, load_config
from bot.kernel import audit
from bot.process.working_days import parse_instant
from bot.report.submission import (
    SubmissionRefused,
    add_report_version,
    hold_submission,
    queue_submission,
    record_recommendation,
    release_submission,
)
from bot.service.wiring import open_database
from bot.store.db import transaction
from bot.store.models import Ballot

report_app = typer.Typer(help="The Rapid Review report and its submission.", no_args_is_help=True)

ConfigOption = Annotated[Path, typer.Option("--config", help="The configuration file.")]
CaseArgument = Annotated[str, typer.Argument(help="The case reference, e.g. RR-2026-001.")]
NowOption = Annotated[str | None, typer.Option("--now", help="Act as at this instant.")]


def register(app: typer.Typer) -> None:
    """Add the report commands to the rrbot command line."""
    app.add_typer(report_app, name="report")


@report_app.command("add")
def add(config: ConfigOption, case: CaseArgument,
        file: Annotated[Path, typer.Argument(help="The report (.docx or .pdf).")],
        now: NowOption = None) -> None:
    """Store a new report version and send it to the partners for sign-off."""
    from bot.cli.main import console, database_errors, fail

    try:
        loaded = load_config(config)
        instant = parse_instant(now) if now else datetime.now(UTC)
        content = file.read_bytes()
        with database_errors(loaded), transaction(open_database(loaded)) as session:
            document = add_report_version(session, loaded, find_case(session, case), file.name,
                                          content, instant, actor="cli")
            digest = document.sha256
    except ConfigError as exc:
        fail(*exc.problems)
    except OSError as exc:
        fail(f"{file}: cannot be read: {exc.strerror}")
    except (CaseNotFound, ValueError) as exc:
        fail(str(exc.args[0]))
    console.print(f"{case}: report version {digest[:12]} stored; sign-off ballot open",
                  markup=False)


@report_app.command("recommend")
def recommend(config: ConfigOption, case: CaseArgument,
              review: Annotated[str, typer.Option(help="local, national or none.")],
              rationale: Annotated[str, typer.Option(help="Why the partners recommend it.")],
              now: NowOption = None) -> None:
    """Record the partners' recommendation on a local or national review, for the Panel."""
    from bot.cli.main import console, database_errors, fail

    try:
        loaded = load_config(config)
        instant = parse_instant(now) if now else datetime.now(UTC)
        with database_errors(loaded), transaction(open_database(loaded)) as session:
            record_recommendation(session, find_case(session, case), review, rationale,
                                  instant, actor="cli")
    except ConfigError as exc:
        fail(*exc.problems)
    except (CaseNotFound, SubmissionRefused, ValueError) as exc:
        fail(str(exc.args[0]))
    console.print(f"{case}: recommendation recorded ({review}); the covering email will say"
                  " so", markup=False)


@report_app.command("hold")
def hold(config: ConfigOption, case: CaseArgument,
         until: Annotated[str, typer.Option(help="Send no earlier than this (ISO 8601).")],
         now: NowOption = None) -> None:
    """Hold the submission until a given time (it still never goes after the cut-off)."""
    from bot.cli.main import console, database_errors, fail

    try:
        loaded = load_config(config)
        instant = parse_instant(now) if now else datetime.now(UTC)
        hold_until = parse_instant(until)
        with database_errors(loaded), transaction(open_database(loaded)) as session:
            queued = hold_submission(session, find_case(session, case), hold_until, instant,
                                     actor="cli")
    except ConfigError as exc:
        fail(*exc.problems)
    except (CaseNotFound, SubmissionRefused, ValueError) as exc:
        fail(str(exc.args[0]))
    waiting = "the queued submission waits" if queued else "a submission will wait"
    console.print(f"{case}: submission held until {until} ({waiting})", markup=False)


@report_app.command("submit")
def submit(config: ConfigOption, case: CaseArgument,
           late: Annotated[bool, typer.Option("--late", help="Go ahead after the cut-off.")]
           = False,
           now: NowOption = None) -> None:
    """Send the approved version now; after the cut-off only with --late (flagged, audited)."""
    from bot.cli.main import console, database_errors, fail

    try:
        loaded = load_config(config)
        instant = parse_instant(now) if now else datetime.now(UTC)
        with database_errors(loaded), transaction(open_database(loaded)) as session:
            found = find_case(session, case)
            approved = session.exec(select(Ballot).where(
                Ballot.case_id == found.id, Ballot.kind == "signoff",
                Ballot.outcome == "approve").order_by(col(Ballot.id).desc())).first()
            if approved is None or approved.report_sha256 is None:
                raise SubmissionRefused(f"{case}: no report version has been signed off")
            # A submission waiting for a hold is let go now rather than queued again.
            released = release_submission(session, found, instant, actor="cli")
            if released is None:
                if late:
                    audit.record(session, found.partnership, "cli", "late_submission_go_ahead",
                                 instant, found.id, sha256=approved.report_sha256)
                queue_submission(session, loaded, found, approved.report_sha256, instant,
                                 actor="cli", late_go_ahead=late)
    except ConfigError as exc:
        fail(*exc.problems)
    except (CaseNotFound, SubmissionRefused) as exc:
        fail(str(exc.args[0]))
    if released is not None:
        console.print(f"{case}: the held submission is released and goes now", markup=False)
    else:
        console.print(f"{case}: submission queued{' (late)' if late else ''}", markup=False)

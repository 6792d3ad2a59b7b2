"""`rrbot report ...`: add a report version, hold the submission, send it late with go-ahead."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    CaseArgument,
    NowOption,
    RequiredConfig,
    command_context,
    console,
    fail,
    load,
    read_instant,
)
from bot.commands import report
from bot.commands.people import OPERATOR
from bot.process.working_days import london_time

report_app = typer.Typer(help="The Rapid Review report and its submission.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the report commands to the rrbot command line."""
    app.add_typer(report_app, name="report")


@report_app.command("add")
def add(config: RequiredConfig, case: CaseArgument,
        file: Annotated[Path, typer.Argument(help="The report (.docx or .pdf).")],
        now: NowOption = None) -> None:
    """Store a new report version and send it to the partners for sign-off."""
    loaded = load(config)
    added_at = read_instant(now, "--now")
    try:
        content = file.read_bytes()
    except OSError as exc:
        fail(f"{file}: cannot be read: {exc.strerror}")
    with command_context(loaded, OPERATOR, added_at) as context:
        added = report.add_report_version(context, report.AddReportVersion(case, file.name,
                                                                           content))
    console.print(f"{case}: report version {added.sha256[:12]} stored; sign-off ballot open",
                  markup=False)


@report_app.command("recommend")
def recommend(config: RequiredConfig, case: CaseArgument,
              review: Annotated[str, typer.Option(help="local, national or none.")],
              rationale: Annotated[str, typer.Option(help="Why the partners recommend it.")],
              now: NowOption = None) -> None:
    """Record the partners' recommendation on a local or national review, for the Panel."""
    loaded = load(config)
    with command_context(loaded, OPERATOR, read_instant(now, "--now")) as context:
        report.record_recommendation(context, report.RecordRecommendation(case, review,
                                                                          rationale))
    console.print(f"{case}: recommendation recorded ({review}); the covering email will say"
                  " so", markup=False)


@report_app.command("hold")
def hold(config: RequiredConfig, case: CaseArgument,
         until: Annotated[str, typer.Option(help="Send no earlier than this (ISO 8601).")],
         now: NowOption = None) -> None:
    """Hold the submission until a given time (it still never goes after the cut-off)."""
    loaded = load(config)
    held_at, hold_until = read_instant(now, "--now"), read_instant(until, "--until")
    with command_context(loaded, OPERATOR, held_at) as context:
        held = report.hold_submission(context, report.HoldSubmission(case, hold_until))
    waiting = "the queued submission waits" if held.queued_waits else "a submission will wait"
    console.print(f"{case}: submission held until {london_time(held.until)} ({waiting})",
                  markup=False)


@report_app.command("submit")
def submit(config: RequiredConfig, case: CaseArgument,
           late: Annotated[bool, typer.Option("--late", help="Go ahead after the cut-off.")]
           = False,
           now: NowOption = None) -> None:
    """Send the approved version now; after the cut-off only with --late (flagged, audited)."""
    loaded = load(config)
    with command_context(loaded, OPERATOR, read_instant(now, "--now")) as context:
        going = report.submit_report(context, report.SubmitReport(case, late))
    if going.released:
        console.print(f"{case}: the held submission is released and goes now", markup=False)
    else:
        console.print(f"{case}: submission queued{' (late)' if late else ''}", markup=False)

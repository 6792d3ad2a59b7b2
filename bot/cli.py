"""The `rrbot` command line: one sub-command per thing a business manager or IT officer does."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from bot.calendar import WorkingCalendar, parse_instant
from bot.config import ConfigError, load_config, missing_secrets
from bot.process import load_preset, preset_names
from bot.timeline import Timeline, plan

app = typer.Typer(
    help="Rapid Review bot: runs the clerical half of a Rapid Review, on time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output gets a width a table fits in rather than the 80 columns rich assumes.
console = Console(width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)

# Exit status for input the bot cannot use (a broken config, a bad date).
EXIT_BAD_INPUT = 2

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="A configuration file (see config.example.toml).")
]


def fail(*lines: str) -> NoReturn:
    """Print each problem on one line to stderr and exit with status 2."""
    for line in lines:
        errors.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def timeline(
    preset: Annotated[
        str | None, typer.Option(help=f"A shipped preset: {', '.join(preset_names())}.")
    ] = None,
    start: Annotated[
        str, typer.Option(help="When the clock started, ISO 8601; no offset means London time.")
    ] = "",
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the dated plan of a case started at --start."""
    if not start:
        fail("--start is required, e.g. --start 2026-12-18T10:00")
    try:
        clock_start = parse_instant(start)
    except ValueError as exc:
        fail(f"--start: {exc}")
    if config is not None:
        loaded = _load(config)
        process, calendar = loaded.preset, loaded.calendar
    else:
        try:
            process = load_preset(preset or "oldham")
        except KeyError as exc:
            fail(f"--preset: {exc.args[0]}")
        calendar = WorkingCalendar()
    case_plan = plan(process, calendar, clock_start)
    if as_json:
        sys.stdout.write(json.dumps(case_plan.as_json(calendar), indent=2) + "\n")
        return
    _print_timeline(case_plan, process.label, calendar)


def _print_timeline(case_plan: Timeline, label: str, calendar: WorkingCalendar) -> None:
    start = case_plan.clock_start.astimezone(calendar.zone)
    table = Table(
        title=f"{label}: clock started {start:%a %d %b %Y %H:%M} (Day 0 {case_plan.day0:%a %d %b})",
        title_justify="left",
    )
    table.add_column("Day", justify="right")
    table.add_column("Due (Europe/London)")
    table.add_column("Milestone")
    table.add_column("Key", style="dim")
    for milestone in case_plan.milestones:
        due = milestone.due.astimezone(calendar.zone)
        flags = " (statutory)" if milestone.statutory else ""
        if milestone.applies != "always":
            flags += " (if a local review is commissioned)"
        table.add_row(
            "-" if milestone.day is None else str(milestone.day),
            f"{due:%a %d %b %Y %H:%M}",
            milestone.label + flags,
            milestone.key,
        )
    console.print(table)


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="The configuration file.")]) -> None:
    """Validate a configuration file: one line per problem, exit status 2 if any."""
    loaded = _load(path)
    problems = [f"{path}: {line}" for line in missing_secrets(loaded.settings)]
    for warning in loaded.warnings:
        errors.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        fail(*problems)
    settings = loaded.settings
    console.print(
        f"{path}: OK - {settings.partnership.name}, process {loaded.preset.name}"
        f" ({len(loaded.preset.milestones)} milestones), mailbox {settings.mailbox.backend},"
        f" chat {settings.chat.backend}, {len(settings.agencies)} agencies",
        markup=False, highlight=False,
    )


def _load(path: Path):  # type: ignore[no-untyped-def]
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(*exc.problems)


def main() -> None:
    """Run the command line."""
    app()

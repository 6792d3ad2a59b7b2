"""The `rrbot` command line: one sub-command per thing a business manager or IT officer does."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cases.summaries import case_summaries
from bot.cli import cases as case_commands
from bot.cli import chat, quarantine, report, requests
from bot.cli.common import (
    ConfigOption,
    NowOption,
    RequiredConfig,
    command_context,
    console,
    database_errors,
    database_label,
    errors,
    fail,
    load,
    read_instant,
)
from bot.commands.cases import MarkMilestoneDone, OpenCase, mark_milestone_done, open_case
from bot.commands.people import OPERATOR
from bot.config import missing_secrets
from bot.digest.attention import words
from bot.engine.step import Engine
from bot.kernel import audit
from bot.kernel.mailbox import MailboxError, MemoryCursorStore
from bot.mail.boundary_survey import recent_messages, survey
from bot.process.preset import load_preset, preset_names
from bot.process.timeline import Timeline, plan
from bot.process.working_days import LONDON, WorkingCalendar, london_time, parse_instant
from bot.service.health import HealthServerError
from bot.service.wiring import build_engine, open_database, open_mailbox, record_config_load
from bot.store.db import transaction

app = typer.Typer(
    help="Rapid Review bot: runs the clerical half of a Rapid Review, on time.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
        loaded = load(config)
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
    loaded = load(path)
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


def _engine(config: Path, now: datetime) -> Engine:
    loaded = load(config)
    with database_errors(loaded):
        engine = build_engine(loaded)
        record_config_load(engine, now)
    return engine


db_app = typer.Typer(help="The bot's database.", no_args_is_help=True)
app.add_typer(db_app, name="db")
case_app = typer.Typer(help="Open and change cases by hand.", no_args_is_help=True)
app.add_typer(case_app, name="case")
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@db_app.command("upgrade")
def db_upgrade(config: RequiredConfig) -> None:
    """Create or migrate the database to the newest schema."""
    loaded = load(config)
    with database_errors(loaded):
        open_database(loaded).dispose()
    console.print(f"database {database_label(loaded)} is up to date", markup=False)


@app.command()
def tick(config: RequiredConfig, now: NowOption = None) -> None:
    """Run one step of the engine at --now: take in mail, run due actions, send."""
    instant = read_instant(now, "--now")
    engine = _engine(config, instant)
    try:
        with database_errors(engine.config):
            report = engine.step(instant)
    except MailboxError as exc:
        errors.print(f"mailbox: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"{instant.astimezone(LONDON):%a %d %b %Y %H:%M}: fetched {report.fetched},"
        f" handled {len(report.handled)}, actions {len(report.actions)},"
        f" sent {len(report.dispatch.sent)}, retried {len(report.dispatch.retried)},"
        f" dead {len(report.dispatch.dead)}",
        markup=False, highlight=False,
    )


@app.command()
def cases(
    config: RequiredConfig,
    now: NowOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the cases with their day, status and next milestone."""
    instant = read_instant(now, "--now")
    loaded = load(config)
    with database_errors(loaded), transaction(open_database(loaded)) as session:
        summaries = case_summaries(session, loaded, instant)
    if as_json:
        sys.stdout.write(json.dumps(summaries, indent=2) + "\n")
        return
    table = Table(title="Cases", title_justify="left")
    for column in ("Case", "Day", "Status", "Next milestone", "Due"):
        table.add_column(column)
    for summary in summaries:
        table.add_row(summary["reference"], str(summary["day"] if summary["day"] is not None
                                                else "-"),
                      words(summary["status"]), summary["next_milestone_name"] or "-",
                      summary["next_due_words"] or "-")
    console.print(table)


@case_app.command("open")
def case_open(
    config: RequiredConfig,
    start: Annotated[str, typer.Option(help="When the clock started (ISO 8601).")],
    now: NowOption = None,
) -> None:
    """Open a case by hand, e.g. for a referral that came by phone."""
    now_instant = read_instant(now, "--now")
    clock_start = read_instant(start, "--start")
    engine = _engine(config, now_instant)
    with command_context(engine.config, OPERATOR, now_instant, engine.database) as context:
        opened = open_case(context, OpenCase(clock_start))
    console.print(f"opened {opened.reference}", markup=False)


@app.command("milestone-done")
def milestone_done(
    config: RequiredConfig,
    case: Annotated[str, typer.Argument(help="The case reference, e.g. RR-2026-001.")],
    key: Annotated[str, typer.Argument(help="The milestone key, e.g. notify_national_panel.")],
    at: Annotated[str | None, typer.Option(help="When it was done (default: now).")] = None,
) -> None:
    """Record that a milestone was done (the steps after it are re-dated)."""
    done_at = read_instant(at, "--at")
    engine = _engine(config, done_at)
    with command_context(engine.config, OPERATOR, done_at, engine.database) as context:
        done = mark_milestone_done(context, MarkMilestoneDone(case, key, done_at))
    console.print(f"{case}: {done.label or key} done at {london_time(done_at)}", markup=False)


@app.command()
def run(config: RequiredConfig) -> None:
    """Run the service until SIGTERM or Ctrl-C: mail, deadlines, reminders, sending."""
    loaded = load(config)
    missing = missing_secrets(loaded.settings)
    if missing:
        fail(*(f"{config}: {line}" for line in missing))
    from bot.service.logs import configure
    from bot.service.run import Service

    configure(loaded.settings.service.log_format, loaded.settings.service.log_level)
    try:
        with database_errors(loaded):
            service = Service(loaded)
    except MailboxError as exc:
        fail(f"mailbox ({loaded.settings.mailbox.backend}): {exc}")
    try:
        with database_errors(loaded):
            status = service.run_until_signalled()
    except HealthServerError as exc:
        # Raised before the first step: nothing was recorded or sent.
        service.engine.mailbox.close()
        service.engine.database.dispose()
        fail(str(exc))
    if status:
        # The engine stopped on an error (logged): a non-zero status gets the process restarted.
        raise typer.Exit(status)


@app.command()
def demo(
    start: Annotated[str, typer.Option(help="When the fictional referral arrives (ISO 8601).")]
    = "2026-12-18T10:00",
    preset: Annotated[str, typer.Option(help="The partnership's process to follow.")] = "oldham",
    folder: Annotated[Path | None, typer.Option(help="Where to keep the files (default: a new "
                                                     "temporary folder).")] = None,
    serve: Annotated[bool, typer.Option(help="Then serve the cockpit on the demo's database "
                                             "until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="The cockpit's port with --serve.")] = 8080,
) -> None:
    """Watch a whole fictional Rapid Review happen in under a minute (no servers needed)."""
    import tempfile

    from bot.service.demo import run_demo

    try:
        clock_start = parse_instant(start)
        load_preset(preset)
    except (ValueError, KeyError) as exc:
        fail(f"demo: {exc.args[0]}")
    where = folder or Path(tempfile.mkdtemp(prefix="rrbot-demo-"))
    result = run_demo(where, clock_start, preset, console)
    mail = where / "var" / "mail"
    if result.submitted_at is not None:
        local = result.submitted_at.astimezone(LONDON)
        verdict = "before" if result.submitted_at <= result.cutoff else "AFTER"
        console.print(f"\n[bold green]{result.reference} submitted to the National Panel at "
                      f"{local:%H:%M on %A %d %B %Y}, {verdict} the cut-off of "
                      f"{result.cutoff.astimezone(LONDON):%H:%M}.[/bold green]")
    else:
        console.print(f"\n[bold red]{result.reference} was not submitted.[/bold red]")
    console.print(f"""
Where to look:
  every email the bot sent     {mail / 'sent'}
  mail it has dealt with       {mail / 'processed'}  (and {mail / 'quarantine'})
  the chat it posted           {where / 'chat.log'}
  its database                 {where / 'var' / 'rrbot.sqlite3'}
  the last daily digest        {where / 'digest.html'}
  the case list                rrbot cases --config {where / 'config.toml'}""", markup=False)
    if serve:
        from bot.config import load_config
        from bot.web.server import CockpitError, serve_demo

        loaded = load_config(where / "config.toml")
        database = open_database(loaded)
        try:
            serve_demo(loaded, database, result.ended, port,
                       lambda line: console.print(line, markup=False, highlight=False,
                                                    soft_wrap=True))
        except CockpitError as exc:
            fail(str(exc))
        finally:
            database.dispose()


@app.command("check-mailbox")
def check_mailbox(config: RequiredConfig) -> None:
    """Connect to the mailbox, list the bot's folders and check the mail boundary's results."""
    loaded = load(config)
    missing = missing_secrets(loaded.settings)
    if missing:
        fail(*(f"{config}: {line}" for line in missing))
    mailbox = open_mailbox(loaded, MemoryCursorStore())
    try:
        lines = mailbox.check()
        # The newest messages show whether senders would verify at this boundary.
        lines += survey(loaded.settings.mailbox, recent_messages(mailbox))
    except MailboxError as exc:
        fail(f"mailbox ({loaded.settings.mailbox.backend}): {exc}")
    finally:
        mailbox.close()
    console.print(f"mailbox {loaded.settings.mailbox.address} via"
                  f" {loaded.settings.mailbox.backend}: OK", markup=False)
    for line in lines:
        # Unwrapped, so that a setting it suggests can be copied as it stands.
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


@audit_app.command("verify")
def audit_verify(config: RequiredConfig) -> None:
    """Recompute the audit trail's hash chain and name the first broken entry."""
    loaded = load(config)
    with database_errors(loaded), transaction(open_database(loaded)) as session:
        checks = audit.verify(session)
    broken = [check for check in checks if not check.ok]
    for check in checks:
        state = "intact" if check.ok else f"BROKEN at entry {check.first_broken_id}"
        console.print(f"{check.partnership}: {check.entries} entries, {state}", markup=False)
        # A purge leaves an entry of its own rather than editing any: each is a tombstone.
        for tombstone in check.tombstones:
            console.print(f"  {tombstone.reference} purged at {london_time(tombstone.at)} by"
                          f" {tombstone.actor} under {tombstone.rule}", markup=False)
    if broken:
        raise typer.Exit(1)


# Command groups kept in modules of their own.
requests.register(app)
report.register(app)
case_commands.register(case_app)
chat.register(app)
quarantine.register(app)


def main() -> None:
    """Run the command line."""
    app()

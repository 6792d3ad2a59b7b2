"""`rrbot case ...` after opening: the Panel's response, closing, a local review, records."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.cases.closure import PANEL_RESPONSES
from bot.cases.records import CaseRecord
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
from bot.commands import cases, records
from bot.commands.people import OPERATOR
from bot.process.working_days import london_time

AtOption = Annotated[str | None, typer.Option(
    "--at", help="When it happened (ISO 8601; no offset means London time); default: now.")]


def register(case_app: typer.Typer) -> None:
    """Add the commands to the `rrbot case` group."""
    case_app.command("panel-response")(panel_response)
    case_app.command("close")(close)
    case_app.command("commission-review")(commission_review)
    case_app.command("set-date")(set_date)
    case_app.command("show")(show)
    case_app.command("export")(export)
    case_app.command("purge")(purge)


def panel_response(
    config: RequiredConfig, case: CaseArgument,
    decision: Annotated[str, typer.Option(
        help=f"What the Panel said: {', '.join(PANEL_RESPONSES)}.")],
    at: AtOption = None,
) -> None:
    """Record the National Panel's response; the case closes unless more is to come."""
    received = read_instant(at, "--at")
    with command_context(load(config), OPERATOR, received) as context:
        changed = cases.record_panel_response(
            context, cases.RecordPanelResponse(case, decision, received))
    console.print(f"{case}: the National Panel {PANEL_RESPONSES[decision]}; "
                  + ("the case is closed" if changed.closed
                     else f"the case stays open ({_words(changed.status)})"), markup=False)


def close(
    config: RequiredConfig, case: CaseArgument,
    reason: Annotated[str, typer.Option(help="Why the case is closed, for the records.")],
    now: NowOption = None,
) -> None:
    """Close a case with a reason: nothing more is chased or sent for it."""
    instant = read_instant(now, "--now")
    with command_context(load(config), OPERATOR, instant) as context:
        cases.close_case(context, cases.CloseCase(case, reason))
    console.print(f"{case}: closed at {london_time(instant)}", markup=False)


def commission_review(config: RequiredConfig, case: CaseArgument, at: AtOption = None) -> None:
    """Record that the partners commissioned a local review: its six months start then."""
    decided = read_instant(at, "--at")
    with command_context(load(config), OPERATOR, decided) as context:
        cases.commission_local_review(context, cases.CommissionLocalReview(case, decided))
        plan = cases.show_case(context, case).plan
    console.print(f"{case}: local review commissioned at {london_time(decided)}", markup=False)
    for step in plan:
        if step.key.startswith("local_review") and step.status != "done":
            console.print(f"  {step.label}: due {london_time(step.due_at)}", markup=False)


def set_date(
    config: RequiredConfig, case: CaseArgument,
    key: Annotated[str, typer.Argument(help="The step, e.g. local_review_publication.")],
    on: Annotated[str, typer.Option(help="Its date, e.g. 2027-06-01.")],
    now: NowOption = None,
) -> None:
    """Set the date of a step a person decides (the publication date); earlier steps move."""
    instant = read_instant(now, "--now")
    try:
        day = date.fromisoformat(on)
    except ValueError:
        fail(f"--on: {on!r} is not a date like 2027-06-01")
    with command_context(load(config), OPERATOR, instant) as context:
        changed = cases.set_milestone_date(context, cases.SetMilestoneDate(case, key, day))
        plan = cases.show_case(context, case).plan
    assert changed.milestone_due is not None
    console.print(f"{case}: {key} set to {london_time(changed.milestone_due)}", markup=False)
    for step in plan:
        if step.status in {"pending", "overdue"} and step.key.startswith(key.split("_")[0]):
            console.print(f"  {step.label}: due {london_time(step.due_at)}", markup=False)


def show(config: RequiredConfig, case: CaseArgument, now: NowOption = None) -> None:
    """Print a case's whole dated plan, agencies, ballots and votes, reports and messages."""
    with command_context(load(config), OPERATOR, read_instant(now, "--now")) as context:
        record = cases.show_case(context, case)
    for line in case_lines(record):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def export(
    config: RequiredConfig, case: CaseArgument,
    out: Annotated[Path, typer.Option(help="The zip file to write, e.g. RR-2027-001.zip.")],
    now: NowOption = None,
) -> None:
    """Write a case's messages, documents, votes, plan and audit entries to a zip."""
    with command_context(load(config), OPERATOR, read_instant(now, "--now")) as context:
        written = records.export_case_records(context, records.ExportCase(case, out))
    console.print(f"{case}: {len(written.files)} files written to {written.path} "
                  f"({written.messages_in} messages in, {written.messages_out} out, "
                  f"{written.documents} documents; SHA-256 sums in manifest.json)", markup=False)
    for missing in written.missing_documents:
        console.print(f"  not on disk (purged or lost): {missing}", markup=False)


def purge(config: RequiredConfig, now: NowOption = None) -> None:
    """Purge the child's identity, mail and documents of cases closed past the retention."""
    with command_context(load(config), OPERATOR, read_instant(now, "--now")) as context:
        purged = records.purge_cases(context)
    console.print(f"{len(purged.cases)} case{'s' if len(purged.cases) != 1 else ''} purged"
                  f" under {purged.rule}", markup=False)
    for gone in purged.cases:
        console.print(f"  {gone.reference} (closed {london_time(gone.closed_at)}):"
                      f" {gone.messages_in} messages in, {gone.messages_out} out,"
                      f" {gone.documents} documents", markup=False)


def case_lines(record: CaseRecord) -> list[str]:
    """Say a case's record in lines a business manager reads, times in London time in words."""
    lines = [f"{record.reference} ({record.preset}): {_words(record.status)}",
             f"  Clock started {london_time(record.clock_start)} (Day 0 "
             f"{record.day0:%A} {record.day0.day} {record.day0:%B %Y})"]
    for label, value in (("Decision", record.decision), ("Submitted", record.submitted_at),
                         ("National Panel's response", record.panel_response),
                         ("Closed", record.closed_at), ("Reason", record.close_reason),
                         ("Purged", record.purged_at), ("Under", record.purge_rule)):
        if value is not None:
            lines.append(f"  {label}: {_shown(value)}")
    lines.append("Plan:")
    for step in record.plan:
        day = "" if step.day is None else f"Day {step.day}, "
        state = {"done": f"done {_shown(step.done_at)} by {step.done_by or '-'}",
                 "not_applicable": "only if a local review is commissioned"}.get(
                     step.status, _words(step.status).lower())
        flags = (" (statutory)" if step.statutory else "") + (
            " (date set by hand)" if step.due_set_by_hand else "")
        lines.append(f"  {step.label}{flags}: due {day}{london_time(step.due_at)}; {state}")
    lines.append("Agencies:" if record.agencies else "Agencies: none asked")
    for asked in record.agencies:
        lines.append(f"  {asked.agency} ({_words(asked.asked_for).lower()}): "
                     f"{_words(asked.status).lower()}; asked {_shown(asked.asked_at)}, due "
                     f"{_shown(asked.due_at)}" + (f", closed {_shown(asked.closed_at)}"
                                                  if asked.closed_at else ""))
    lines.append("Ballots:" if record.ballots else "Ballots: none")
    for ballot in record.ballots:
        lines.append(f"  {_words(ballot.kind)}: {ballot.status}, outcome "
                     f"{ballot.outcome or '-'}; closes {_shown(ballot.closes_at)}")
        lines += [f"    {vote.partner}: {_words(vote.choice).lower()} by {vote.member} "
                  f"({vote.source}) at {_shown(vote.cast_at)}" for vote in ballot.votes]
    lines.append("Report versions:" if record.reports else "Report versions: none")
    lines += [f"  {number}. {report.filename} ({report.size} bytes, SHA-256 "
              f"{report.sha256[:12]}), received {_shown(report.stored_at)}"
              for number, report in enumerate(record.reports, 1)]
    lines.append(f"Messages ({len(record.messages)}):")
    lines += [f"  {_shown(message.at)} {'from' if message.direction == 'in' else 'to'} "
              f"{message.correspondent}: {message.subject} ({message.purpose}, {message.status})"
              for message in record.messages]
    return lines


def _shown(value: object) -> str:
    if isinstance(value, datetime):
        return london_time(value)
    return "-" if value is None else _words(str(value)) if "_" in str(value) else str(value)


def _words(key: str) -> str:
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]

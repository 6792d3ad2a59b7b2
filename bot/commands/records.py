"""The partnership's records: export one case's records, purge cases past their retention."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.cases.export import CaseExport, export_case
from bot.cases.retention import PurgedCase, purge_closed_cases, retention_rule
from bot.commands.base import MANAGERS, Context, case_named, domain_errors, require

RECORDS_ONLY = "Sorry, only the partnership's business manager can handle its records."


@dataclass(frozen=True)
class ExportCase:
    """A case whose records are wanted, and the zip file to write them to."""

    case_reference: str
    out: Path


@dataclass(frozen=True)
class CasesPurged:
    """The cases purged now, under which rule."""

    rule: str
    cases: tuple[PurgedCase, ...]


def export_case_records(context: Context, request: ExportCase) -> CaseExport:
    """Write a case's messages, documents, votes, plan and audit entries to a zip."""
    require(context, MANAGERS, "case-export", RECORDS_ONLY)
    case = case_named(context, request.case_reference)
    with domain_errors():
        try:
            return export_case(context.session, context.config, case, request.out,
                               context.now, actor=context.actor.who)
        except OSError as exc:
            raise ValueError(f"--out {request.out}: {exc.strerror or exc}") from None


def purge_cases(context: Context, request: None = None) -> CasesPurged:
    """Purge the child's identity, mail and documents of cases closed past the retention."""
    require(context, MANAGERS, "case-purge", RECORDS_ONLY)
    with domain_errors():
        purged = purge_closed_cases(context.session, context.config, context.now,
                                    actor=context.actor.who)
    return CasesPurged(retention_rule(context.config) or "-", tuple(purged))

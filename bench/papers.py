"""Time reading 20 agency returns of 200 rows and building the chronology and draft report.

Usage: .venv/bin/python bench/papers.py [--returns 20] [--rows 200]

The returns are the shapes the bot reads, in turn: the bundled Excel chronology filled in,
Oldham's single agency summary (.docx) with its chronology table filled in, a CSV export and a
Chronolator text export. The bot's figure is read_return on each, then the combined chronology
written four ways (Excel and Word, named and anonymised) and the draft report filled. The floor
is the libraries merely opening the same files and walking their rows (openpyxl read-only,
python-docx's tables, csv, splitlines), done in the same run. Goal: under 5 s on two cores.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The bench runs from a checkout: bot/ and tests/ are imported from it.
sys.path.insert(0, str(ROOT))

from docx import Document as open_word  # noqa: E402
from openpyxl import load_workbook  # noqa: E402

from bot.papers.bundled import FOLDER  # noqa: E402
from bot.papers.chronology import combine  # noqa: E402
from bot.papers.chronology_files import chronology_files  # noqa: E402
from bot.papers.forms import fill_word  # noqa: E402
from bot.papers.particulars import Particulars  # noqa: E402
from bot.papers.report_draft import CaseFacts, draft_report  # noqa: E402
from bot.papers.returns import read_return  # noqa: E402
from bot.store.models import AgencyRequest, Case, Milestone  # noqa: E402
from tests.factories import build_config  # noqa: E402
from tests.papers.kit import (  # noqa: E402
    CONTEXT,
    answered_form,
    chronolator_text,
    chronology_xlsx,
    csv_return,
)

NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
PARTICULARS = Particulars("RR-2026-001", "Jessamy Quintrell", "JQ", date(2019, 7, 14), {
    "address": "14 Larkspur Close", "family": [{"name": "Darren Quintrell",
                                                "relationship": "Father"}]})


def returns(count: int, rows: int) -> list[tuple[str, str, bytes]]:
    """Make the returns: (agency, filename, bytes), the four shapes in turn."""
    made = []
    form = fill_word((FOLDER / "oldham-single-agency-summary.docx").read_bytes(), CONTEXT)
    for number in range(count):
        start = date(2024, 1, 1) + timedelta(days=number)
        chronology = [((start + timedelta(days=3 * row)).strftime("%d/%m/%Y"),
                       f"{9 + row % 8:02d}:{row % 60:02d}",
                       f"Agency {number} contact {row}: Jessamy Quintrell seen with Darren",
                       f"record {number}-{row}") for row in range(rows)]
        agency = f"Agency {number}"
        shape = number % 4
        if shape == 0:
            made.append((agency, f"a{number}.xlsx", chronology_xlsx(chronology)))
        elif shape == 1:
            made.append((agency, f"a{number}.docx", long_form(form, chronology)))
        elif shape == 2:
            made.append((agency, f"a{number}.csv", csv_return(chronology)))
        else:
            made.append((agency, f"a{number}.txt", chronolator_text(chronology, agency)))
    return made


def long_form(form: bytes, chronology: list[tuple[str, str, str, str]]) -> bytes:
    """Answer the form and give its chronology table as many rows as the chronology has."""
    document = open_word(io.BytesIO(form))
    table = next(t for t in document.tables if t.rows[0].cells[0].text == "Date")
    while len(table.rows) <= len(chronology):
        table.add_row()
    buffer = io.BytesIO()
    document.save(buffer)
    return answered_form(buffer.getvalue(), {"Declaration of involvement": "Yes"}, chronology)


def floor(made: list[tuple[str, str, bytes]]) -> int:
    """Open each file with its library and walk its rows; return the cells seen."""
    cells = 0
    for _agency, filename, content in made:
        if filename.endswith(".xlsx"):
            workbook = load_workbook(io.BytesIO(content), read_only=True)
            for sheet in workbook.worksheets:
                for row in sheet.iter_rows(values_only=True):
                    cells += len(row)
            workbook.close()
        elif filename.endswith(".docx"):
            for table in open_word(io.BytesIO(content)).tables:
                for row in table.rows:
                    cells += len(row.cells)
        elif filename.endswith(".csv"):
            cells += sum(len(row) for row in csv.reader(content.decode("utf-8-sig")
                                                        .splitlines()))
        else:
            cells += len(content.decode("utf-8").splitlines())
    return cells


def bot(made: list[tuple[str, str, bytes]], config: object) -> int:
    """Read every return, combine them, write the chronology four ways and the draft."""
    read = [read_return(content, agency, filename) for agency, filename, content in made]
    combined = combine(read)
    for anonymised in (False, True):
        chronology_files(combined, PARTICULARS, "agency_per_row", anonymised, "now", NOW)
    case = Case(id=1, partnership="x", reference="RR-2026-001", preset="oldham",
                status="returns_collected", clock_start=NOW, day0=NOW.date(), opened_at=NOW)
    requests = [AgencyRequest(case_id=1, partnership="x", agency_key=c.agency, status="returned")
                for c in read]
    milestones = [Milestone(case_id=1, partnership="x", key="rr_meeting", label="Meeting",
                            due_at=NOW + timedelta(days=3))]
    draft_report(config, CaseFacts(case, PARTICULARS, requests, milestones, read, combined,  # type: ignore[arg-type]
                                   {}), NOW)
    assert sum(len(c.rows) for c in read) == len(combined.entries)
    return len(combined.entries)


def main() -> None:
    """Run both and print the bot's time beside the floor's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=20)
    parser.add_argument("--rows", type=int, default=200)
    arguments = parser.parse_args()
    made = returns(arguments.returns, arguments.rows)
    with tempfile.TemporaryDirectory() as folder:
        config = build_config(Path(folder))
        started = time.perf_counter()
        cells = floor(made)
        floor_seconds = time.perf_counter() - started
        started = time.perf_counter()
        entries = bot(made, config)
        bot_seconds = time.perf_counter() - started
    print(f"{arguments.returns} returns of {arguments.rows} rows ({entries} chronology rows)")
    print(f"floor (libraries open the files, {cells} cells walked): {floor_seconds:.2f} s")
    print(f"bot (read, combine, 4 chronology files, draft report): {bot_seconds:.2f} s")
    print(f"ratio bot/floor: {bot_seconds / floor_seconds:.1f}x; goal under 5 s: "
          f"{'met' if bot_seconds < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()

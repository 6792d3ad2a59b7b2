"""Reading an Excel chronology (.xlsx): the template's columns, or a header row it recognises."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from openpyxl import load_workbook

from bot.papers.archive import check_office_file
from bot.papers.contents import MAX_ROWS, ReturnContents
from bot.papers.rows import header_columns, row_from_cells

# How far down a sheet the header row is looked for (the template has a title block above).
HEADER_WITHIN_ROWS = 40
# Rows looked at in one sheet, empty ones included, before the rest is left unread.
MAX_SCANNED_ROWS = 20000
MAX_SHEETS = 20


def read_sheet_return(content: bytes, agency: str, filename: str) -> ReturnContents:
    """Read every sheet that has a chronology header; formulas are never worked out."""
    contents = ReturnContents(agency, filename)
    contents.notes.extend(check_office_file(content, "Excel"))
    # Read-only streams the sheets; links and macros are dropped, formulas stay text.
    workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=False,
                             keep_links=False, keep_vba=False)
    try:
        found_header = False
        for sheet in workbook.worksheets[:MAX_SHEETS]:
            rows = sheet.iter_rows(values_only=True, max_row=MAX_SCANNED_ROWS)
            found_header |= read_table(contents, rows, f"{filename}, sheet {sheet.title}")
            if len(contents.rows) >= MAX_ROWS:
                break
        if not found_header:
            contents.problems.append("no sheet has a header row naming at least a date and an "
                                     "event column")
    finally:
        workbook.close()
    return contents


def read_table(
    contents: ReturnContents, rows: Iterable[Sequence[object]], where: str,
    header_within: int = HEADER_WITHIN_ROWS,
) -> bool:
    """Read rows under the first header row found; say whether one was found."""
    columns = None
    scanned = 0
    for number, cells in enumerate(rows, start=1):
        scanned = number
        if columns is None:
            if number > header_within:
                return False
            columns = header_columns(list(cells))
            contents.tables += columns is not None
            continue
        row = row_from_cells(list(cells), columns, contents.agency, f"{where} row {number}",
                             contents.filename)
        if not contents.add_row(row):
            return True
    if columns is not None and scanned >= MAX_SCANNED_ROWS:
        contents.problems.append(f"{where}: only the first {MAX_SCANNED_ROWS:,} rows were "
                                 "looked at")
    return columns is not None

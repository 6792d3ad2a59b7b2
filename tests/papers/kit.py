"""Returns as agencies make them: the bundled templates filled in, a CSV, a Chronolator text."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from docx import Document as open_word
from openpyxl import load_workbook

from bot.papers.bundled import FOLDER

# One chronology row as an agency writes it: date, time, event, source.
Row = tuple[str, str, str, str]

CONTEXT: dict[str, Any] = {
    "ref": "RR-2026-001", "partnership": "Exampleshire", "mailbox": "rr@example.example",
    "agency": "Exampleshire GP Federation",
    "child": {"name": "Jessamy Quintrell", "initials": "JQ", "dob": "14 July 2019",
              "address": "1 Example Row", "gender": "", "ethnicity": "", "faith": "",
              "disability": ""},
    "family": [], "summary": "", "incident_date": "", "incident_location": "",
    "period": "from 1 January 2026 to 1 January 2027", "period_from": "", "period_to": "",
    "due": "", "requested": "", "meeting": "",
}


def chronology_xlsx(rows: Sequence[Row], template: bytes | None = None) -> bytes:
    """Fill the Excel chronology template's rows, as an agency would (dates as typed)."""
    workbook = load_workbook(io.BytesIO(template or (FOLDER / "warrington-chronology.xlsx")
                                        .read_bytes()))
    sheet = workbook.active
    assert sheet is not None
    header = next(row[0].row for row in sheet.iter_rows() if row[0].value == "Date")
    for offset, (day, clock, event, source) in enumerate(rows, start=1):
        for column, value in enumerate((day, clock, "", event, source), start=1):
            sheet.cell(row=header + offset, column=column, value=value or None)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def answered_form(template: bytes, answers: dict[str, str], rows: Sequence[Row] = ()) -> bytes:
    """Answer a Word form's questions (by the start of their label) and fill its chronology."""
    document = open_word(io.BytesIO(template))
    for table in document.tables:
        cells = [cell.text for cell in table.rows[0].cells]
        if cells[:2] == ["Date", "Time"]:
            for row, values in zip(table.rows[1:], rows, strict=False):
                for cell, value in zip(row.cells, (values[0], values[1], "", values[2],
                                                   values[3]), strict=True):
                    cell.text = value
            continue
        for row in table.rows:
            for label, answer in answers.items():
                if len(row.cells) >= 2 and row.cells[0].text.startswith(label):
                    row.cells[1].text = answer
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def csv_return(rows: Sequence[Row]) -> bytes:
    """Write a chronology as an agency's own system exports it to CSV."""
    lines = ["Date,Time,Event description,Source of information"]
    lines += [",".join(f'"{value}"' for value in row) for row in rows]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig")


def chronolator_text(rows: Sequence[Row], agency: str) -> bytes:
    """Write a chronology as Chronolator saves it as text, in the table shape we read."""
    lines = [f"Chronology: {agency}", "Created with Chronolator Enter", "",
             "Date\tTime\tEvent\tSource"]
    lines += ["\t".join(row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def chronolator_blocks(rows: Sequence[Row]) -> bytes:
    """Write a chronology as text in the blocks shape we read."""
    blocks = [f"Date: {day}\nTime: {clock}\nEvent: {event}\nSource: {source}"
              for day, clock, event, source in rows]
    return ("Chronology\n\n" + "\n\n".join(blocks) + "\n").encode("utf-8")


def scanned_pdf() -> bytes:
    """Write a scanned form: a PDF with no text in it."""
    return (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n"
            b"%%EOF\n")

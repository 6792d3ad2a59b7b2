"""Reading returns: each shape the bot supports, and hostile files read within limits or refused."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import date

import pytest
from openpyxl import Workbook

from bot.papers.bundled import FOLDER
from bot.papers.forms import fill_word
from bot.papers.returns import read_return
from tests.papers.kit import (
    CONTEXT,
    answered_form,
    chronolator_blocks,
    chronolator_text,
    chronology_xlsx,
    csv_return,
    scanned_pdf,
)

# The part of an .xlsx package that holds its first sheet.
SHEET = "xl/worksheets/sheet1.xml"
ROWS = [
    ("03/04/2026", "14:30", "Home visit by health visitor; child seen", "HV record 1"),
    ("March 2025", "", "Registered with the practice", "GP record"),
    ("01/06/2025 - 30/06/2025", "", "Weekly contacts with mother", "Case notes"),
]


def readable(content: bytes, filename: str) -> list[tuple[str, str, str, str]]:
    contents = read_return(content, "GP", filename)
    assert contents.status == "read", contents.why_unreadable()
    return [(row.date_text, row.time.strftime("%H:%M") if row.time else "", row.event,
             row.source) for row in contents.rows]


@pytest.mark.parametrize("filename, make", [
    ("chronology.xlsx", lambda: chronology_xlsx(ROWS)),
    ("chronology.csv", lambda: csv_return(ROWS)),
    ("chronology.txt", lambda: chronolator_text(ROWS, "GP")),
    ("blocks.txt", lambda: chronolator_blocks(ROWS)),
])
def test_every_row_is_read_with_its_date_as_written(filename: str, make: object) -> None:
    # Given a chronology of three rows in one of the shapes the bot reads,
    assert callable(make)
    # when it is read, then every row comes back as written, dates kept in their words.
    assert readable(make(), filename) == ROWS


def test_the_form_gives_its_answers_and_its_chronology_table() -> None:
    # Given Oldham's single agency summary, filled from the referral and answered by an agency,
    form = fill_word((FOLDER / "oldham-single-agency-summary.docx").read_bytes(), CONTEXT)
    answered = answered_form(form, {"Declaration of involvement": "Yes",
                                    "2. Summary of agency involvement": "Known since 2025."},
                             ROWS[:2])
    # when it is read,
    contents = read_return(answered, "GP", "summary.docx")
    # then the involvement, the summary and the chronology rows are there.
    assert contents.status == "read"
    assert contents.involvement is True
    assert contents.summary == [("2. Summary of agency involvement", "Known since 2025.")]
    assert [row.event for row in contents.rows] == [ROWS[0][2], ROWS[1][2]]


def test_an_unanswered_involvement_question_is_not_taken_for_an_answer() -> None:
    form = fill_word((FOLDER / "warrington-template-d.docx").read_bytes(), CONTEXT)
    contents = read_return(form, "GP", "form.docx")
    assert contents.involvement is None
    no = read_return(answered_form(form, {"Declaration of involvement": "No"}), "GP", "f.docx")
    assert no.involvement is False


def test_a_row_whose_date_cannot_be_read_is_kept_undated_and_flagged() -> None:
    content = csv_return([*ROWS, ("31/02/2026", "", "Missed appointment", "GP record")])
    contents = read_return(content, "GP", "chronology.csv")
    assert contents.status == "partly_read"
    undated = [row for row in contents.rows if row.when is None]
    assert [(row.written_date, row.event) for row in undated] == [
        ("31/02/2026", "Missed appointment")]
    assert "31/02/2026" in contents.problems[0]


@pytest.mark.parametrize("filename, content, reason", [
    ("scan.pdf", scanned_pdf(), "a PDF is not read"),
    ("notes.txt", b"Dear colleague, please find our notes below.\n", "no header row"),
    ("broken.xlsx", b"PK\x03\x04 not really a zip", "not a valid Excel file"),
    ("binary.csv", b"\x00\x01\x02Date,Event", "binary data"),
])
def test_what_cannot_be_read_says_why(filename: str, content: bytes, reason: str) -> None:
    contents = read_return(content, "GP", filename)
    assert contents.status == "unreadable"
    assert reason in contents.why_unreadable()


def openpyxl_rows(count: int) -> bytes:
    """Return a chronology of count dated rows as openpyxl writes it, header first."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Chronology")
    sheet.append(["Date", "Time", "Event", "Source"])
    for number in range(count):
        sheet.append([date(2025, 1, 1), None, f"event {number}", "x"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def many_rows(count: int) -> bytes:
    """Return openpyxl_rows(count)'s workbook, its rows written about ten times faster.

    openpyxl's other parts are kept as it wrote them; the sheet's rows are the very XML it
    writes for each row (the test below checks this at 1,000 rows), streamed into the package.
    """
    shell = zipfile.ZipFile(io.BytesIO(openpyxl_rows(0)))
    head, tail = shell.read(SHEET).decode().split("</sheetData>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as package:
        for part in shell.infolist():
            if part.filename != SHEET:
                package.writestr(part, shell.read(part))
        with package.open(SHEET, "w", force_zip64=True) as sheet:
            sheet.write(head.encode())
            for first in range(0, count, 10_000):
                sheet.write("".join([
                    f'<row r="{n + 2}"><c r="A{n + 2}" s="1" t="n"><v>45658</v></c>'
                    f'<c r="C{n + 2}" t="inlineStr"><is><t>event {n}</t></is></c>'
                    f'<c r="D{n + 2}" t="inlineStr"><is><t>x</t></is></c></row>'
                    for n in range(first, min(count, first + 10_000))]).encode())
            sheet.write(f"</sheetData>{tail}".encode())
    return buffer.getvalue()


def test_the_many_rows_workbook_is_what_openpyxl_writes() -> None:
    # Given the same 1,000 rows written by openpyxl and by the faster writer,
    slow = zipfile.ZipFile(io.BytesIO(openpyxl_rows(1000)))
    fast = zipfile.ZipFile(io.BytesIO(many_rows(1000)))
    # then the packages hold the same parts, the sheet byte for byte the same.
    assert sorted(slow.namelist()) == sorted(fast.namelist())
    assert fast.read(SHEET) == slow.read(SHEET)
    assert fast.getinfo(SHEET).compress_type == slow.getinfo(SHEET).compress_type


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"<" + b"\x20" * (200 * 1024 * 1024) + b">")
    return buffer.getvalue()


def formulas() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Date", "Time", "Event", "Source"])
    sheet.append(["=TODAY()", None, "A visit", "x"])
    sheet.append(["03/04/2026", None, '=HYPERLINK("http://example.invalid","click")', "x"])
    sheet.append(["04/04/2026", None, "A call", "x"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def external_reference() -> bytes:
    form = fill_word((FOLDER / "warrington-template-d.docx").read_bytes(), CONTEXT)
    source = zipfile.ZipFile(io.BytesIO(form))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "word/_rels/document.xml.rels":
                data = data.replace(b"</Relationships>", (
                    b'<Relationship Id="rIdX" Type="http://schemas.openxmlformats.org/'
                    b'officeDocument/2006/relationships/attachedTemplate" '
                    b'Target="http://example.invalid/evil.dotm" TargetMode="External"/>'
                    b"</Relationships>"))
            archive.writestr(item, data)
    return buffer.getvalue()


@pytest.mark.slow
def test_a_million_rows_are_read_within_limits_in_under_two_seconds() -> None:
    # Given a spreadsheet of a million rows,
    content = many_rows(1_000_000)
    # when it is read,
    # The process's CPU time, so a parallel test worker on the same cores does not count.
    started = time.process_time()
    contents = read_return(content, "GP", "huge.xlsx")
    took = time.process_time() - started
    # then it is refused or cut short with the reason, quickly.
    assert took < 2.0
    assert contents.refused or any("rows" in problem for problem in contents.problems)
    assert len(contents.rows) <= 5000


@pytest.mark.parametrize("name, make, expected", [
    ("bomb.docx", zip_bomb, "unpacks"),
    ("formulas.xlsx", formulas, "formula"),
    ("external.docx", external_reference, "not followed"),
])
def test_hostile_returns_are_read_within_limits_or_refused(
    name: str, make: object, expected: str
) -> None:
    assert callable(make)
    content = make()
    # The process's CPU time, so a parallel test worker on the same cores does not count.
    started = time.process_time()
    contents = read_return(content, "GP", name)
    assert time.process_time() - started < 2.0
    said = " ".join([contents.refused or "", *contents.problems, *contents.notes])
    assert expected in said
    if name == "formulas.xlsx":
        # Nothing was worked out: the formula rows are flagged, the plain one is read.
        assert [row.event for row in contents.rows] == ["A call"]

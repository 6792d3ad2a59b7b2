"""The combined chronology as Excel and Word files, named or anonymised, in either layout."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import datetime
from xml.sax.saxutils import escape

from docx import Document as new_word
from docx.document import Document as WordDocument
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from docx.shared import Pt
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from bot.papers.chronology import Chronology, Entry
from bot.papers.particulars import Particulars

PER_ROW, PER_COLUMN = "agency_per_row", "agency_per_column"
Redact = Callable[[str], str]


def anonymiser(particulars: Particulars) -> Redact:
    """Return a function that writes the child's and family's names as initials."""
    names = particulars.names()
    replacements: dict[str, str] = {name.lower(): short for name, short in names.items()}
    dob = particulars.child_dob
    if dob is not None:
        for written in (dob.strftime("%d/%m/%Y"), dob.isoformat(), particulars.dob_words):
            replacements[written.lower()] = "[date of birth]"
    address = particulars.detail("address")
    if len(address) > 5:
        replacements[address.lower()] = "[address]"
    if not replacements:
        return lambda text: text
    pattern = re.compile(r"(?<![\w])(" + "|".join(
        re.escape(name) for name in sorted(replacements, key=len, reverse=True)) + r")(?![\w])",
        re.IGNORECASE)
    return lambda text: pattern.sub(lambda found: replacements[found.group(0).lower()], text)


def _keep(text: str) -> str:
    return text


def title_lines(chronology: Chronology, particulars: Particulars, anonymised: bool,
                built: str) -> list[str]:
    """Return the lines above the table: whose chronology, when built, what to look at."""
    who = (particulars.child_initials or "-") if anonymised else (
        f"{particulars.child_name or '-'}"
        + (f", born {particulars.dob_words}" if particulars.dob_words else ""))
    lines = [f"Combined multi-agency chronology: {particulars.reference}",
             f"Child: {who}", f"Built {built} from the returns of "
             f"{', '.join(chronology.agencies) or 'no agency'}"]
    if anonymised:
        lines.append("Anonymised: the child's and family's names are shown as initials.")
    for contents in chronology.unreadable:
        lines.append(f"Not read: {contents.filename} from {contents.agency} "
                     f"({contents.why_unreadable()}); a person must read it.")
    for gap in chronology.gaps:
        lines.append(f"Gap: nothing recorded between {gap.after:%d/%m/%Y} and "
                     f"{gap.before:%d/%m/%Y} ({gap.days} days).")
    if chronology.contradictions:
        lines.append(f"{len(chronology.contradictions)} event(s) may be dated differently by "
                     "two agencies: see the Check column.")
    return lines


def chronology_files(chronology: Chronology, particulars: Particulars, layout: str,
                     anonymised: bool, built: str, written: datetime) -> tuple[bytes, bytes]:
    """Write the chronology as an .xlsx and a .docx file, laid out once for both."""
    redact = anonymiser(particulars) if anonymised else _keep
    laid_out = table(chronology, layout, redact)
    return (chronology_workbook(chronology, particulars, layout, anonymised, built, written,
                                laid_out),
            chronology_document(chronology, particulars, layout, anonymised, built, written,
                                laid_out))


def chronology_workbook(chronology: Chronology, particulars: Particulars, layout: str,
                        anonymised: bool, built: str, written: datetime,
                        laid_out: tuple[list[str], list[list[str]]] | None = None) -> bytes:
    """Write the chronology as an .xlsx file."""
    redact = anonymiser(particulars) if anonymised else _keep
    workbook = Workbook(write_only=True)
    workbook.properties.created = workbook.properties.modified = written.replace(tzinfo=None)
    sheet = workbook.create_sheet("Chronology")
    bold = Font(bold=True)
    for line in title_lines(chronology, particulars, anonymised, built):
        sheet.append([line])
    sheet.append([])
    headings, rows = laid_out or table(chronology, layout, redact)
    sheet.append([_cell(sheet, heading, bold) for heading in headings])
    for row in rows:
        sheet.append(row)
    if chronology.undated:
        sheet.append([])
        sheet.append([_cell(sheet, "Rows whose date could not be read", bold)])
        for undated in chronology.undated:
            sheet.append([undated.date_text, undated.agency, redact(undated.event),
                          redact(undated.source), undated.origin])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def chronology_document(chronology: Chronology, particulars: Particulars, layout: str,
                        anonymised: bool, built: str, written: datetime,
                        laid_out: tuple[list[str], list[list[str]]] | None = None) -> bytes:
    """Write the chronology as a .docx file."""
    redact = anonymiser(particulars) if anonymised else _keep
    document = new_word()
    document.core_properties.created = document.core_properties.modified = written
    document.styles["Normal"].font.size = Pt(9)
    lines = title_lines(chronology, particulars, anonymised, built)
    document.add_heading(lines[0], level=1)
    for line in lines[1:]:
        document.add_paragraph(line)
    headings, rows = laid_out or table(chronology, layout, redact)
    word_table(document, headings, rows)
    if chronology.undated:
        document.add_heading("Rows whose date could not be read", level=2)
        for undated in chronology.undated:
            document.add_paragraph(f"{undated.date_text or '-'} {undated.agency}: "
                                   f"{redact(undated.event)} ({undated.origin})")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def word_table(document: WordDocument, headings: list[str], rows: list[list[str]]) -> None:
    """Append a bordered table to a Word document, written as XML in one piece.

    python-docx adds rows one at a time, which for thousands of rows takes seconds; the XML
    it would write is the same.
    """
    def row_xml(cells: list[str], bold: bool) -> str:
        mark = "<w:rPr><w:b/></w:rPr>" if bold else ""
        return "<w:tr>" + "".join(
            "<w:tc><w:tcPr><w:tcW w:w=\"0\" w:type=\"auto\"/></w:tcPr>" + "".join(
                f"<w:p><w:r>{mark}<w:t xml:space=\"preserve\">{escape(line)}</w:t></w:r></w:p>"
                for line in (cell.split("\n") or [""])) + "</w:tc>"
            for cell in cells) + "</w:tr>"

    borders = "".join(f"<w:{edge} w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"auto\"/>"
                      for edge in ("top", "left", "bottom", "right", "insideH", "insideV"))
    grid = "".join("<w:gridCol/>" for _heading in headings)
    xml = (f"<w:tbl {nsdecls('w')}><w:tblPr><w:tblW w:w=\"0\" w:type=\"auto\"/>"
           f"<w:tblBorders>{borders}</w:tblBorders></w:tblPr><w:tblGrid>{grid}</w:tblGrid>"
           + row_xml(headings, True) + "".join(row_xml(row, False) for row in rows)
           + "</w:tbl>")
    body = document.element.body
    body.insert(len(body) - 1, parse_xml(xml))


def table(chronology: Chronology, layout: str, redact: Redact) -> tuple[list[str],
                                                                          list[list[str]]]:
    """Return the chronology's headings and rows in the layout the partnership chose."""
    if layout == PER_COLUMN:
        return _per_column(chronology, redact)
    headings = ["No.", "Date", "Time", "Precision", "Agency", "Event", "Source", "Check"]
    rows = [[str(entry.number), entry.row.date_text, _clock(entry), _precision(entry),
             entry.row.agency, redact(entry.row.event), redact(entry.row.source),
             "; ".join(entry.flags)] for entry in chronology.entries]
    return headings, rows


def _per_column(chronology: Chronology, redact: Redact) -> tuple[list[str], list[list[str]]]:
    # One line per event; an event several agencies recorded shares one line, side by side.
    agencies = chronology.agencies
    headings = ["No.", "Date", "Time", *agencies, "Check"]
    rows: list[list[str]] = []
    group_line: dict[int, list[str]] = {}
    for entry in chronology.entries:
        column = 3 + agencies.index(entry.row.agency)
        line = group_line.get(entry.group) if entry.group else None
        if line is None:
            line = [str(entry.number), entry.row.date_text, _clock(entry),
                    *([""] * len(agencies)), ""]
            rows.append(line)
            if entry.group:
                group_line[entry.group] = line
        text = redact(entry.row.event) + f" [{redact(entry.row.source)}]"
        line[column] = f"{line[column]}\n{text}".strip()
        line[-1] = "; ".join(filter(None, [line[-1], *entry.flags]))
    return headings, rows


def _clock(entry: Entry) -> str:
    return entry.row.time.strftime("%H:%M") if entry.row.time else ""


def _precision(entry: Entry) -> str:
    return entry.row.when.precision if entry.row.when else ""


def _cell(sheet: object, value: str, font: Font) -> object:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    cell.font = font
    cell.alignment = Alignment(vertical="top")
    return cell

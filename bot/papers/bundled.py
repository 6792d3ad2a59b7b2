"""Write the bundled example templates (forms, chronology, reports): `python -m bot.papers.bundled`.

They are ours, modelled on the fields of Oldham's single agency summary, Warrington's Template
D with its Excel chronology and Bradford's Information Gathering Tool, and on Oldham's and
Warrington's report templates. A partnership replaces them with its own; placeholders are
docxtpl's (Jinja2 in Word), and `{{ ... }}` in any cell of the Excel template.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from docx import Document as new_word
from docx.document import Document as WordDocument
from docx.shared import Pt
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill

FOLDER = Path(__file__).resolve().parent / "bundled"
# Fixed document dates, so that writing the templates again gives the same text.
WRITTEN = datetime(2026, 12, 1, 9, 0)
CHRONOLOGY_HEADINGS = ("Date", "Time", "Agency", "Event", "Source")
FAMILY = (("Full name", "m.name"), ("Relationship to child", "m.relationship"),
          ("Address", "m.address"), ("Date of birth", "m.dob"))


def _word(title: str, intro: Sequence[str] = ()) -> WordDocument:
    document = new_word()
    document.core_properties.created = document.core_properties.modified = WRITTEN
    document.core_properties.author = "rrbot"
    document.styles["Normal"].font.size = Pt(10)
    document.add_paragraph("CONFIDENTIAL WHEN COMPLETED")
    document.add_heading(title, level=1)
    for line in intro:
        document.add_paragraph(line)
    return document


def _pairs(document: WordDocument, rows: Sequence[tuple[str, str]]) -> None:
    """Add a two-column table: each question on the left, its answer or placeholder beside it."""
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, value in rows:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, value
    document.add_paragraph()


def _loop_table(document: WordDocument, columns: Sequence[tuple[str, str]], loop: str) -> None:
    """Add a table with a heading row and one row per item of a list (docxtpl's {%tr %})."""
    table = document.add_table(rows=1, cols=len(columns))
    table.style = "Table Grid"
    for cell, (heading, _value) in zip(table.rows[0].cells, columns, strict=True):
        cell.text = heading
    table.add_row().cells[0].text = f"{{%tr for {loop} %}}"
    for cell, (_heading, value) in zip(table.add_row().cells, columns, strict=True):
        cell.text = f"{{{{ {value} }}}}"
    table.add_row().cells[0].text = "{%tr endfor %}"
    document.add_paragraph()


def _blank_table(document: WordDocument, headings: Sequence[str], rows: int) -> None:
    table = document.add_table(rows=1 + rows, cols=len(headings))
    table.style = "Table Grid"
    for cell, heading in zip(table.rows[0].cells, headings, strict=True):
        cell.text = heading
    document.add_paragraph()


def _agency_details(document: WordDocument, organisation_label: str) -> None:
    _pairs(document, [
        (organisation_label, "{{ agency }}"), ("Name of person completing the form", ""),
        ("Job title / designation", ""), ("Contact details (telephone, email)", ""),
        ("Date form completed", ""),
    ])


def _child(document: WordDocument, extra: Sequence[tuple[str, str]] = ()) -> None:
    _pairs(document, [
        ("Case reference", "{{ ref }}"), ("Full name of child", "{{ child.name }}"),
        ("Date of birth", "{{ child.dob }}"), ("Home address", "{{ child.address }}"),
        *extra,
    ])


def _involvement(document: WordDocument) -> None:
    _pairs(document, [(
        "Declaration of involvement: has your agency had contact with the child, family or "
        "close associates named in this form during the period to cover?", "Yes / No")])


def _chronology(document: WordDocument, rows: int = 8) -> None:
    _blank_table(document, CHRONOLOGY_HEADINGS, rows)


def oldham_summary() -> WordDocument:
    """Oldham's single agency summary: agency details, family, chronology, eight sections."""
    document = _word("Practice case review: single agency summary", [
        "You have been identified as an agency that may have had contact with the child named "
        "below. Please check your records for the child, family members and close associates.",
    ])
    _pairs(document, [("Child's initials", "{{ child.initials }}"),
                      ("Information requested from agencies", "{{ requested }}"),
                      ("Deadline for agencies to submit information", "{{ due }}"),
                      ("Date of meeting where case is considered", "{{ meeting }}")])
    document.add_heading("Referral", level=2)
    _child(document)
    document.add_heading("1. Agency details and declaration of involvement", level=2)
    _agency_details(document, "Organisation submitting report")
    _involvement(document)
    document.add_paragraph("If you have answered no, you need not complete further sections: "
                           "return the form to {{ mailbox }}.")
    document.add_heading("2. Details of the family and significant others", level=2)
    _loop_table(document, FAMILY, "m in family")
    document.add_paragraph("Please advise of any anomalies or additions below.")
    _blank_table(document, [heading for heading, _ in FAMILY], 3)
    _pairs(document, [("Criminal investigation", ""), ("Professional processes", ""),
                      ("Single agency processes", ""), ("Other statutory review", "")])
    document.add_heading("3. Your chronology of involvement ({{ period }})", level=2)
    document.add_paragraph("Add a row for each significant event, or attach your Chronolator "
                           "chronology saved as text.")
    _chronology(document)
    document.add_heading("4. Summary of agency involvement", level=2)
    _pairs(document, [
        ("1. About the child: pen picture, views, wishes and feelings", ""),
        ("2. Summary of agency involvement", ""),
        ("3. Key professionals' perspective", ""),
        ("4. What worked well?", ""),
        ("5. What were you worried about at the time of the event?", ""),
        ("6. Lessons learnt and actions already taken by your agency", ""),
        ("7. Recommendations to the safeguarding partnership", ""),
        ("8. If a further review is required, what should it focus on?", ""),
    ])
    document.add_paragraph("Return the completed summary to {{ mailbox }} by {{ due }}.")
    return document


def warrington_template_d() -> WordDocument:
    """Warrington's Template D, the information gathering and analysis form."""
    document = _word("Information gathering and analysis form", [
        "{{ partnership }} has agreed to review the case outlined in this form and the "
        "chronology Excel template sent with it.",
    ])
    document.add_heading("Agency details", level=2)
    _agency_details(document, "Agency")
    document.add_heading("Background information (from the referral)", level=2)
    _pairs(document, [("Summary of the case", "{{ summary }}")])
    _child(document, [("Gender", "{{ child.gender }}"), ("Ethnicity", "{{ child.ethnicity }}"),
                      ("Faith / religion", "{{ child.faith }}"),
                      ("Disability", "{{ child.disability }}")])
    document.add_paragraph("Details of family members and any significant others")
    _loop_table(document, FAMILY, "m in family")
    document.add_heading("Section 1: Agency involvement analysis", level=2)
    _pairs(document, [("Time period for the review", "{{ period }}")])
    _involvement(document)
    _pairs(document, [("What worked well?", ""), ("What are you worried about?", ""),
                      ("What would you do differently?", "")])
    document.add_heading("Section 2: Involvement and chronology", level=2)
    document.add_paragraph("Complete the chronology in the Excel document sent with this form.")
    _pairs(document, [("Summary of relevant engagement", "")])
    document.add_heading("Section 3: Submission", level=2)
    document.add_paragraph("Send this form and the chronology to {{ mailbox }} by {{ due }}, "
                           "keeping [{{ ref }}] in the subject.")
    return document


def bradford_tool() -> WordDocument:
    """Bradford's Information Gathering Tool for a serious incident."""
    document = _word("Information gathering tool for a serious incident", [
        "To be completed by every agency working with the child, parents, carers or family.",
    ])
    document.add_heading("Details of person completing this form", level=2)
    _agency_details(document, "Organisation")
    document.add_heading("Child subject of review", level=2)
    _child(document, [("Ethnic origin", "{{ child.ethnicity }}"),
                      ("Faith / religion", "{{ child.faith }}"),
                      ("Disability", "{{ child.disability }}")])
    document.add_heading("Family details", level=2)
    _loop_table(document, FAMILY, "m in family")
    _pairs(document, [("Date of incident", "{{ incident_date }}"),
                      ("Address of location of incident", "{{ incident_location }}")])
    _involvement(document)
    document.add_heading("Brief synopsis of case", level=2)
    _pairs(document, [
        ("1. Initial information that triggered the review", ""),
        ("2. Summary of your agency's involvement with the incident", ""),
        ("3. Summary of your agency's previous involvement with the child and family", ""),
        ("4. Brief analysis of individual or agency practice", ""),
        ("5. Immediate action needed to ensure children's safety", ""),
        ("6. Concerns about how partners worked together", ""),
        ("7. Further relevant information", ""),
        ("8. How the voice and lived experience of the child shows in your records", ""),
    ])
    document.add_paragraph("Key events around the time of the incident ({{ period }}):")
    _chronology(document)
    document.add_paragraph("Return the completed form to {{ mailbox }} by {{ due }}.")
    return document


def chronology_workbook() -> Workbook:
    """Warrington's Excel chronology template: a title block, then the columns to fill."""
    workbook = Workbook()
    workbook.properties.created = workbook.properties.modified = WRITTEN
    workbook.properties.creator = "rrbot"
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Chronology"
    sheet["A1"] = "Single agency chronology"
    sheet["A1"].font = Font(bold=True, size=14)
    block = [("Case reference", "{{ ref }}"), ("Agency", "{{ agency }}"),
             ("Child", "{{ child.name }}"), ("Date of birth", "{{ child.dob }}"),
             ("Period to cover", "{{ period }}"), ("Return by", "{{ due }}")]
    for row, (label, value) in enumerate(block, start=2):
        sheet.cell(row=row, column=1, value=label).font = Font(bold=True)
        sheet.cell(row=row, column=2, value=value)
    sheet["A9"] = ("One row per event: the date as the record gives it (03/04/2026, or "
                   "\"March 2025\" when only the month is known), the time if known, what "
                   "happened, and the record it comes from.")
    header = 11
    fill = PatternFill("solid", fgColor="DDEBF7")
    for column, heading in enumerate(CHRONOLOGY_HEADINGS, start=1):
        cell = sheet.cell(row=header, column=column, value=heading)
        cell.font, cell.fill = Font(bold=True), fill
    for letter, width in zip("ABCDE", (14, 8, 24, 70, 28), strict=True):
        sheet.column_dimensions[letter].width = width
    for row in range(header + 1, header + 201):
        sheet.cell(row=row, column=1).number_format = "DD/MM/YYYY"
        sheet.cell(row=row, column=4).alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = f"A{header + 1}"
    return workbook


def report_template(sections: Sequence[tuple[str, str]], title: str,
                    header: Sequence[tuple[str, str]]) -> WordDocument:
    """Build a report template: a header table, the sections the bot fills, the author's."""
    document = _word(title, ["Drafted by the bot from the referral and the agencies' returns: "
                             "each filled value says in grey where it came from. The author "
                             "completes the rest."])
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, value in header:
        cells = table.add_row().cells
        cells[0].text = label
        cells[1].text = f"{{{{r {value} }}}}"
    document.add_paragraph()
    for heading, body in sections:
        document.add_heading(heading, level=2)
        if body:
            for line in body.split("\n"):
                _write_line(document, line)
    return document


def _write_line(document: WordDocument, line: str) -> None:
    if line.startswith("TABLE "):
        columns = [tuple(item.split("=", 1)) for item in line[6:].split(";")]
        loop, *cells = columns
        _loop_table(document, [(heading, value) for heading, value in cells], loop[1])
    else:
        document.add_paragraph(line)


# What the reports share: the family, the agencies, the chronology appendix.
FAMILY_ROWS = ("TABLE loop=m in family;Name=m.name;Relationship to child=m.relationship;"
               "Address=m.address;Date of birth=m.dob;From=m.source")
AGENCY_ROWS = ("TABLE loop=a in agencies;Agency=a.name;Asked=a.asked;Reply=a.reply;"
               "Involvement=a.involvement;Return read=a.read")
OVERVIEW = "{%p for a in overviews %}\n{{r a.text }}\n{%p endfor %}"
APPENDIX = ("TABLE loop=r in chronology;Date=r.date;Time=r.time;Agency=r.agency;"
            "Event=r.event;Source=r.source")


def oldham_report() -> WordDocument:
    """Oldham's Rapid Review report template, its sections in order."""
    return report_template([
        ("1. Contributing agencies and family structure", AGENCY_ROWS),
        ("1.1b Agencies that have confirmed no contact", "{{r no_contact }}"),
        ("1.1c Family composition", FAMILY_ROWS),
        ("2.1a Facts from the case referral", "{{r referral_facts }}"),
        ("2.1b Overview of agency summaries and integrated chronology", OVERVIEW),
        ("2.2a About the child and their lived experience", ""),
        ("2.2b Views of parents, carers and wider family", ""),
        ("2.2c Views of key front-line professionals", ""),
        ("2.2d Immediate thoughts and observations", ""),
        ("2.2e How racism and other inequalities affected the family and the practice", ""),
        ("2.2f What are we worried about?", ""),
        ("2.2g What has worked well?", ""),
        ("2.3a SMART actions", ""),
        ("2.4a Gaps in information and organisation representation", "{{r gaps }}"),
        ("2.4b Does the case meet the threshold for a review, and why", ""),
        ("Process dates", "{{r process_dates }}"),
        ("Appendix: combined multi-agency chronology", APPENDIX),
    ], "Rapid Review report: {{ ref }}", [
        ("Child's name", "child_name"), ("Date of birth", "child_dob"),
        ("Date of serious incident", "incident_date"), ("Date of referral", "referral_date"),
        ("Date of local authority notification", "notified_date"),
        ("Date of Rapid Review meeting", "meeting_date"),
    ])


def warrington_report() -> WordDocument:
    """Warrington's Rapid Review report template (Appendix 5), its sections in order."""
    return report_template([
        ("Section 1: The Rapid Review meeting", AGENCY_ROWS),
        ("1.2 Omissions to the list of participants", "{{r gaps }}"),
        ("Section 2: Case details", FAMILY_ROWS),
        ("Summary of the case", "{{r referral_facts }}"),
        ("Documentation available to this Rapid Review", "{{r documentation }}"),
        ("Agency involvement", OVERVIEW),
        ("Section 3: Multi-agency case analysis", "What worked well?\nWhat were we worried "
         "about?\nWhat would we do differently?\nHow did racism and other inequalities affect "
         "the family and the practice?"),
        ("Section 4: Actions identified", ""),
        ("Section 5: Recommendation", ""),
        ("Process dates", "{{r process_dates }}"),
        ("Appendix: multi-agency chronology", APPENDIX),
    ], "Rapid Review report: {{ ref }}", [
        ("Full name of child", "child_name"), ("Date of birth", "child_dob"),
        ("Date of death / serious incident", "incident_date"),
        ("Date of referral", "referral_date"),
        ("Date notified to National Panel", "notified_date"),
        ("Date of Rapid Review meeting", "meeting_date"),
    ])


TEMPLATES: dict[str, Callable[[], WordDocument | Workbook]] = {
    "oldham-single-agency-summary.docx": oldham_summary,
    "warrington-template-d.docx": warrington_template_d,
    "warrington-chronology.xlsx": chronology_workbook,
    "bradford-information-gathering-tool.docx": bradford_tool,
    "oldham-report.docx": oldham_report,
    "warrington-report.docx": warrington_report,
}


def template_bytes(name: str) -> bytes:
    """Build one bundled template and return its bytes."""
    buffer = io.BytesIO()
    TEMPLATES[name]().save(buffer)
    return buffer.getvalue()


def main(folder: Path = FOLDER) -> None:
    """Write every bundled template into the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TEMPLATES:
        (folder / name).write_bytes(template_bytes(name))
        sys.stdout.write(f"wrote {folder / name}\n")


if __name__ == "__main__":
    main()

"""Reading Word files (.docx): a return's answers and chronology, a referral's family table."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

from docx import Document as open_word
from docx.document import Document as WordDocument

from bot.papers.archive import check_office_file
from bot.papers.contents import ReturnContents
from bot.papers.rows import header_columns, row_from_cells

# A family table's heading row names people and how they are related to the child.
FAMILY_NAME = re.compile(r"^(full )?name|^name and address", re.IGNORECASE)
FAMILY_RELATION = re.compile(r"relationship", re.IGNORECASE)
FAMILY_FIELDS = {"address": re.compile(r"address", re.IGNORECASE),
                 "dob": re.compile(r"date of birth|^dob|d\.o\.b", re.IGNORECASE)}
MAX_FAMILY = 30


def table_rows(document: WordDocument) -> Iterator[tuple[int, list[list[str]]]]:
    """Yield each table's rows as their cells' text, a merged cell once per row."""
    for number, table in enumerate(document.tables, start=1):
        rows = []
        for row in table.rows:
            cells: list[str] = []
            previous = None
            for cell in row.cells:
                # A merged cell appears once per grid column it spans: keep it once.
                if cell._tc is not previous:
                    cells.append(cell.text.strip())
                previous = cell._tc
            rows.append(cells)
        yield number, rows


def read_word_return(content: bytes, agency: str, filename: str) -> ReturnContents:
    """Read a Word return: each chronology table's rows, and the form's answers."""
    contents = ReturnContents(agency, filename)
    contents.notes.extend(check_office_file(content, "Word"))
    document = open_word(io.BytesIO(content))
    for number, rows in table_rows(document):
        columns = None
        for index, cells in enumerate(rows, start=1):
            if columns is None:
                columns = header_columns(cells)
                if columns is None:
                    _answer(contents, cells)
                else:
                    contents.tables += 1
                continue
            origin = f"{filename}, table {number} row {index}"
            if not contents.add_row(row_from_cells(cells, columns, agency, origin, filename)):
                return contents
    for paragraph in document.paragraphs:
        label, colon, value = paragraph.text.partition(":")
        if colon and value.strip() and 0 < len(label.strip()) <= 120:
            contents.answers.append((label.strip(), value.strip()))
    return contents


def family_members(content: bytes) -> list[dict[str, str]]:
    """Return the people of a referral's family table (name, relationship, address, dob)."""
    check_office_file(content, "Word")
    document = open_word(io.BytesIO(content))
    members: list[dict[str, str]] = []
    for _number, rows in table_rows(document):
        columns: dict[str, int] | None = None
        for cells in rows:
            if columns is None:
                columns = _family_columns(cells)
                continue
            member = {field: cells[index].strip() for field, index in columns.items()
                      if index < len(cells)}
            if member.get("name") and len(members) < MAX_FAMILY:
                members.append(member)
    return members


def _family_columns(cells: list[str]) -> dict[str, int] | None:
    names = [index for index, cell in enumerate(cells) if FAMILY_NAME.search(cell)]
    relations = [index for index, cell in enumerate(cells) if FAMILY_RELATION.search(cell)]
    if not names or not relations:
        return None
    columns = {"name": names[0], "relationship": relations[0]}
    for field, pattern in FAMILY_FIELDS.items():
        found = [index for index, cell in enumerate(cells)
                 if pattern.search(cell) and index not in columns.values()]
        if found:
            columns[field] = found[0]
    return columns


def _answer(contents: ReturnContents, cells: list[str]) -> None:
    # A form's question and its answer: the label in the first cell, the answer beside it.
    if len(cells) >= 2 and cells[0] and len(cells[0]) <= 600:
        value = next((cell for cell in cells[1:] if cell and cell != cells[0]), "")
        contents.answers.append((cells[0], value))

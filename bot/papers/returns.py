"""Reading an agency return, whatever it came as: Word, Excel, CSV or Chronolator text.

Chronolator's own format could not be looked at when this was written (no network); what the
seeds say is that agencies "save the chronology as text" and return it. The text shapes read
here are therefore defined by us, and a file in neither is flagged, never guessed at:

1. A table: a header line naming the columns (Date, Time, Event or Description, Source...),
   separated by tabs or " | ", then one event a line in the same order. Lines before the
   header (the chronology's title, "Agency: ...") are passed over.
2. Blocks: events apart by blank lines, each a few "Label: value" lines (Date, Time, Event or
   Description, Source); a line with no label continues the field above it.
"""

from __future__ import annotations

import csv
import logging
import re
import zipfile
from pathlib import Path

from bot.papers.archive import Refused
from bot.papers.contents import ReturnContents
from bot.papers.rows import field_of, row_from_cells
from bot.papers.spreadsheets import read_sheet_return, read_table
from bot.papers.wordforms import read_word_return

log = logging.getLogger(__name__)

# A text or CSV return larger than this is not a chronology.
MAX_TEXT_BYTES = 8 * 1024 * 1024
BLOCK_LABEL = re.compile(r"^\s*([A-Za-z][A-Za-z /&()-]{0,40}?)\s*:\s*(.*)$")
COLUMN_SPLIT = re.compile(r"\t|\s+\|\s+")
# The fields a block's labels may name (by the same headings as a table's columns).
BLOCK_FIELDS = ("date", "time", "agency", "event", "source")


def read_return(content: bytes, agency: str, filename: str) -> ReturnContents:
    """Read one return file; anything that goes wrong is said in the result, never raised."""
    suffix = Path(filename).suffix.lower()
    try:
        if suffix == ".docx":
            return read_word_return(content, agency, filename)
        if suffix in {".xlsx", ".xlsm"}:
            return read_sheet_return(content, agency, filename)
        if suffix in {".csv", ".txt"}:
            return read_text_return(content, agency, filename, suffix)
        if suffix == ".pdf":
            reason = "a PDF is not read by the bot: a scan or print needs a person to read it"
        else:
            reason = f"a {suffix or 'file with no extension'} is not a kind the bot reads"
        return ReturnContents(agency, filename, refused=reason)
    except Refused as refusal:
        return ReturnContents(agency, filename, refused=str(refusal))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError,
            LookupError, AttributeError, IndexError, UnicodeError, SyntaxError) as error:
        # The libraries raise many kinds of error on a damaged file; its kind is logged, not
        # its text, which may quote the file.
        log.warning("a return could not be read: %s", type(error).__name__)
        return ReturnContents(agency, filename, refused=f"it could not be opened as a "
                              f"{suffix or 'file'} ({type(error).__name__})")


def read_text_return(content: bytes, agency: str, filename: str, suffix: str) -> ReturnContents:
    """Read a CSV file, or a text chronology in one of the two shapes above."""
    contents = ReturnContents(agency, filename)
    if len(content) > MAX_TEXT_BYTES:
        contents.refused = (f"it is {len(content) // (1024 * 1024)} MB of text, over the limit "
                            f"of {MAX_TEXT_BYTES // (1024 * 1024)} MB")
        return contents
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1252", errors="replace")
        contents.notes.append("it is not UTF-8; it was read as Windows text")
    if "\x00" in text:
        contents.refused = "it is not text (it holds binary data)"
        return contents
    lines = text.splitlines()
    if suffix == ".csv":
        found = read_table(contents, csv.reader(lines, _dialect(text)), filename)
    else:
        found = _text_table(contents, lines) or _blocks(contents, lines)
    if not found:
        contents.problems.append(
            "no header row naming a date and an event column, and no \"Date:\" and "
            "\"Event:\" lines, were found")
    return contents


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _text_table(contents: ReturnContents, lines: list[str]) -> bool:
    rows = ([cell.strip() for cell in COLUMN_SPLIT.split(line)] for line in lines)
    return read_table(contents, rows, contents.filename)


def _blocks(contents: ReturnContents, lines: list[str]) -> bool:
    columns = {field: index for index, field in enumerate(BLOCK_FIELDS)}
    block: dict[str, str] = {}
    current: str | None = None
    found = False
    start = 0
    for number, line in enumerate([*lines, ""], start=1):
        if not line.strip():
            if "date" in block and "event" in block:
                if not found:
                    contents.tables += 1
                found = True
                cells = [block.get(field) for field in BLOCK_FIELDS]
                origin = f"{contents.filename}, lines {start}-{number - 1}"
                if not contents.add_row(row_from_cells(cells, columns, contents.agency, origin,
                                                       contents.filename)):
                    return True
            block, current = {}, None
            continue
        start = start if block else number
        labelled = BLOCK_LABEL.match(line)
        field = _block_field(labelled.group(1)) if labelled else None
        if labelled and field:
            current = field
            block[field] = labelled.group(2).strip()
        elif current is not None:
            block[current] = f"{block[current]} {line.strip()}".strip()
    return found


def _block_field(label: str) -> str | None:
    field = field_of(label)
    return field if field in BLOCK_FIELDS else None

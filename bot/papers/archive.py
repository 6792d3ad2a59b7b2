"""The limits an Office file (a zip) must keep before any library opens it."""

from __future__ import annotations

import io
import re
import zipfile

# A return larger than this when unpacked is refused: no form or chronology comes near it.
MAX_UNPACKED_BYTES = 48 * 1024 * 1024
# No part may unpack to more than this many times its packed size (a zip bomb does).
MAX_RATIO = 150
# Ratios only matter for parts big enough to hurt.
RATIO_FLOOR_BYTES = 2 * 1024 * 1024
MAX_PARTS = 2000
# Parts that would run code or pull in content from elsewhere when a person opens the file.
MACRO_PARTS = ("vbaproject.bin", "activex")
# A relationship to outside the file (an attached template, a linked image or workbook); a
# hyperlink is one too, but only a person clicking it follows it.
EXTERNAL_RELATIONSHIP = re.compile(rb"<Relationship\b[^>]*TargetMode=\"External\"[^>]*>")
HYPERLINK_TYPE = b"/hyperlink\""


class Refused(Exception):
    """A file the bot will not open, with the reason in words a business manager can act on."""


def check_office_file(content: bytes, kind: str) -> list[str]:
    """Refuse an Office file beyond the limits; return notes on what will not be followed."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise Refused(f"it is not a valid {kind} file (not a zip package)") from None
    with archive:
        parts = archive.infolist()
        if len(parts) > MAX_PARTS:
            raise Refused(f"it holds {len(parts):,} parts, more than {MAX_PARTS:,}")
        unpacked = sum(part.file_size for part in parts)
        if unpacked > MAX_UNPACKED_BYTES:
            raise Refused(f"it unpacks to {unpacked // (1024 * 1024):,} MB, over the limit of "
                          f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MB")
        for part in parts:
            if (part.file_size > RATIO_FLOOR_BYTES
                    and part.file_size > MAX_RATIO * max(part.compress_size, 1)):
                ratio = part.file_size // max(part.compress_size, 1)
                raise Refused(f"its part {part.filename} unpacks {ratio:,} times larger than "
                              "it is packed (a zip bomb)")
        notes = []
        names = [part.filename.lower() for part in parts]
        if any(marker in name for name in names for marker in MACRO_PARTS):
            notes.append("it contains macros or controls, which were not run")
        if any(name.startswith("xl/externallinks/") for name in names) or any(
                _links_outside(archive.read(part)) for part in parts
                if part.filename.endswith(".rels") and part.file_size < 1024 * 1024):
            notes.append("it refers to files or addresses outside itself, which were not "
                         "followed")
        return notes


def _links_outside(relationships: bytes) -> bool:
    return any(HYPERLINK_TYPE not in found.group(0)
               for found in EXTERNAL_RELATIONSHIP.finditer(relationships))

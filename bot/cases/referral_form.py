"""Reading a referral form (.docx, or "Label: value" lines in the email) for its fields."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from xml.etree import ElementTree

from bot.settings import Agency

WORD = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# A form's document.xml larger than this is not read (a zip bomb is not a referral form).
MAX_DOCUMENT_XML = 20 * 1024 * 1024

# How each field's label reads on the Oldham, Bradford and Warrington referral forms.
LABELS: dict[str, re.Pattern[str]] = {
    "child_name": re.compile(
        r"^((full )?name of (the )?child|child'?s? (full )?name|name of child ?/ ?children)"),
    "child_dob": re.compile(r"^(child'?s? )?(date of birth|d\.?o\.?b\.?)\b"),
    "address": re.compile(r"^(home |child'?s? |current )?address\b"),
    "incident_date": re.compile(
        r"^(date of (the )?(critical |serious )?incident|incident date|date of incident)"),
    "agencies_involved": re.compile(
        r"^(other )?(agencies|organisations|services)( known to be)? involved|"
        r"^agency involvement"),
    "reason": re.compile(
        r"^(reason(s)? for (the )?(referral|notification)|why (is|do) .*(serious|meet)|"
        r"rationale)"),
    "referrer_name": re.compile(
        r"^(referrer'?s? name|name of (the )?(referrer|practitioner)|referrer$)"),
    "referrer_agency": re.compile(r"^(referring )?agency( & designation)?$"),
}
DATE_FORMATS = ("%d/%m/%Y", "%d/%m/%y", "%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y", "%d %B %Y",
                "%d %b %Y", "%B %d %Y")


@dataclass(frozen=True)
class ReferralForm:
    """The fields read from a referral, by name (child_name, child_dob, address...)."""

    fields: dict[str, str]

    def missing(self, required: Iterable[str]) -> list[str]:
        """Name the required fields the form leaves empty."""
        return [field for field in required if not self.fields.get(field, "").strip()]

    @property
    def child_dob(self) -> date | None:
        """Return the child's date of birth, when it reads as a date."""
        return parse_date(self.fields.get("child_dob", ""))


def read_docx(content: bytes) -> list[tuple[str, str]]:
    """Return the (label, value) pairs of a .docx form: table rows, then "Label: value" lines."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > MAX_DOCUMENT_XML:
                return []
            root = ElementTree.fromstring(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError, ValueError):
        return []
    pairs: list[tuple[str, str]] = []
    body = root.find(f"{WORD}body")
    if body is None:
        return []
    for row in body.iter(f"{WORD}tr"):
        cells = [_text(cell) for cell in row.findall(f"{WORD}tc")]
        values = [cell for cell in cells[1:] if cell.strip()]
        if cells and cells[0].strip():
            pairs.append((cells[0], values[0] if values else ""))
    for paragraph in body.findall(f"{WORD}p"):
        pairs.extend(label_lines(_text(paragraph)))
    return pairs


def label_lines(text: str) -> list[tuple[str, str]]:
    """Return the "Label: value" pairs in plain text, one a line."""
    pairs = []
    for line in text.splitlines():
        label, colon, value = line.partition(":")
        if colon and 0 < len(label.strip()) <= 80:
            pairs.append((label, value.strip()))
    return pairs


def read_form(pairs: Iterable[tuple[str, str]]) -> ReferralForm:
    """Match labels to the known fields; the first filled-in value of each field wins."""
    fields: dict[str, str] = {}
    for label, value in pairs:
        normal = normal_label(label)
        for field, pattern in LABELS.items():
            if not fields.get(field) and pattern.search(normal):
                fields[field] = " ".join(value.split())
                break
    return ReferralForm(fields)


def normal_label(label: str) -> str:
    """Lower-case a label, straighten its quotes and drop its trailing colon."""
    text = label.replace("\u2019", "'").replace("\u2018", "'").lower()
    text = re.sub(r"^\s*[\d.]+\s+", "", text)
    return " ".join(text.split()).rstrip(":? ")


def parse_date(text: str) -> date | None:
    """Read a date written the ways forms do (01/03/2020, 2020-03-01, 1st March 2020)."""
    cleaned = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", " ".join(text.replace(",", " ").split()))
    for pattern in DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, pattern).date()
        except ValueError:
            continue
    return None


def initials(name: str) -> str:
    """Return a name's initials, e.g. "J.D." becomes "JD" and "Jane Doe" becomes "JD"."""
    words = re.findall(r"[^\W\d_]+", name)
    return "".join(word[0].upper() for word in words)[:8]


def named_agencies(text: str, agencies: Iterable[Agency]) -> list[str]:
    """Return the keys of configured agencies a free-text list names, by name or key."""
    lowered = " ".join(text.lower().split())
    found = []
    for agency in agencies:
        key_words = agency.key.replace("_", " ")
        if agency.name.lower() in lowered or re.search(rf"\b{re.escape(key_words)}s?\b", lowered):
            found.append(agency.key)
    return found


def _text(element: ElementTree.Element) -> str:
    lines = []
    for paragraph in element.iter(f"{WORD}p"):
        lines.append("".join(node.text or "" for node in paragraph.iter(f"{WORD}t")))
    if not lines:
        lines.append("".join(node.text or "" for node in element.iter(f"{WORD}t")))
    return "\n".join(lines)

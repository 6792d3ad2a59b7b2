"""What one agency return holds once read: answers to the form, chronology rows, problems."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.papers.rows import ChronologyRow

READ, PARTLY_READ, UNREADABLE = "read", "partly_read", "unreadable"
# Far more rows than any Rapid Review chronology has; the rest of a file is not read.
MAX_ROWS = 5000
# The form's question about involvement, as the bundled forms and the seeds word it.
INVOLVEMENT_LABEL = re.compile(
    r"declaration of involvement|had (any )?(contact|involvement)|involvement\?|"
    r"^involvement$|known to (your|the) (agency|organisation|service)", re.IGNORECASE)
# The answers that summarise an agency's involvement, for the draft report's overview.
SUMMARY_LABEL = re.compile(
    r"summary of (your )?(agency'?s? )?(involvement|relevant engagement)|overview|"
    r"relevant engagement|previous involvement|involvement with the incident",
    re.IGNORECASE)


@dataclass
class ReturnContents:
    """One return file read: its form answers, its chronology and what could not be read."""

    agency: str
    filename: str
    answers: list[tuple[str, str]] = field(default_factory=list)
    rows: list[ChronologyRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Things done for safety that lose nothing (links not followed, macros not run).
    notes: list[str] = field(default_factory=list)
    refused: str | None = None
    # How many chronology tables (header rows) were found, empty or not.
    tables: int = 0

    @property
    def status(self) -> str:
        """Say whether the file was read, read in part, or could not be read at all."""
        if self.refused or not (self.rows or self.answers or self.tables):
            return UNREADABLE
        return PARTLY_READ if self.problems else READ

    @property
    def involvement(self) -> bool | None:
        """Return the agency's answer to "had you any involvement?", None when not given."""
        for label, value in self.answers:
            if INVOLVEMENT_LABEL.search(label):
                answer = value.strip().lower()
                if re.match(r"^(yes|y)\b", answer) and "/" not in answer[:6]:
                    return True
                if re.match(r"^(no|n)\b", answer) and "/" not in answer[:5]:
                    return False
        return True if self.rows else None

    @property
    def summary(self) -> list[tuple[str, str]]:
        """Return the answers that summarise the agency's involvement, filled in only."""
        return [(label, value) for label, value in self.answers
                if SUMMARY_LABEL.search(label) and value.strip()]

    def why_unreadable(self) -> str:
        """Say in words why nothing could be read."""
        if self.refused:
            return self.refused
        if self.problems:
            return "; ".join(self.problems[:3])
        return "no form answers or chronology table were found in it"

    def add_row(self, row: ChronologyRow | str | None) -> bool:
        """Keep a row (or its problem); say False once the row limit is reached."""
        if row is None:
            return True
        if len(self.rows) >= MAX_ROWS:
            self.problems.append(f"it has more than {MAX_ROWS:,} rows; the rest were not read")
            return False
        if isinstance(row, str):
            self.problems.append(row)
        else:
            if row.when is None:
                self.problems.append(f"{row.origin}: the date {row.written_date!r} could not be "
                                     "read; the row is kept, undated")
            self.rows.append(row)
        return True

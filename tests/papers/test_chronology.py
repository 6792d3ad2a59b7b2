"""The combined chronology: order, duplicates side by side, gaps, contradictions, anonymising."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from openpyxl import load_workbook

from bot.papers.chronology import combine
from bot.papers.chronology_files import anonymiser, chronology_workbook, table
from bot.papers.forms import period_start
from bot.papers.particulars import Particulars
from bot.papers.returns import read_return
from tests.papers.kit import csv_return

GP = [("03/02/2026", "10:00", "Jessamy Quintrell attended with bruising to the arm", "GP"),
      ("01/01/2025", "", "Registered", "GP")]
ED = [("03/02/2026", "10:00", "Attended with bruising to the arm", "ED"),
      ("10/02/2026", "", "Jessamy discharged home to Darren", "ED"),
      ("09/01/2025", "", "Jessamy registered with the practice", "ED")]
PARTICULARS = Particulars("RR-2026-001", "Jessamy Quintrell", "JQ", date(2019, 7, 14), {
    "address": "14 Larkspur Close", "family": [{"name": "Darren Quintrell",
                                                "relationship": "Father"}]})


def test_one_event_two_agencies_share_a_line_when_agencies_are_columns() -> None:
    # Given the GP and the hospital recording the same attendance,
    combined = combine([read_return(csv_return(GP), "GP", "gp.csv"),
                        read_return(csv_return(ED), "ED", "ed.csv")], gap_days=90)
    # when the chronology is laid out with an agency per column,
    headings, rows = table(combined, "agency_per_column", lambda text: text)
    # then the attendance is one line with both agencies' words side by side,
    assert headings == ["No.", "Date", "Time", "GP", "ED", "Check"]
    attendance = [row for row in rows if row[1] == "03/02/2026"]
    assert len(attendance) == 1 and "[GP]" in attendance[0][3] and "[ED]" in attendance[0][4]
    # and the lines are in date order, with the gap of more than 90 days flagged.
    assert [row[1] for row in rows] == ["01/01/2025", "09/01/2025", "03/02/2026", "10/02/2026"]
    assert [(gap.after, gap.before) for gap in combined.gaps] == [
        (date(2025, 1, 9), date(2026, 2, 3))]


def test_the_same_event_on_two_dates_is_flagged_both_ways() -> None:
    # Given the hospital dating the GP's attendance two days later,
    later = [("05/02/2026", "", "Jessamy Quintrell attended with bruising to the arm", "ED")]
    combined = combine([read_return(csv_return(GP), "GP", "gp.csv"),
                        read_return(csv_return(later), "ED", "ed.csv")], gap_days=90)
    # then both rows point at each other, and nothing is taken for a duplicate.
    flags = {(entry.row.agency, entry.row.date_text): entry.flags for entry in combined.entries}
    assert flags[("GP", "03/02/2026")] == ["the same event as row 3 on another date?"]
    assert flags[("ED", "05/02/2026")] == ["the same event as row 2 on another date?"]
    assert combined.duplicate_groups == 0


def test_the_anonymised_workbook_has_initials_not_names() -> None:
    combined = combine([read_return(csv_return(ED), "ED", "ed.csv")], gap_days=90)
    content = chronology_workbook(combined, PARTICULARS, "agency_per_row", True,
                                  "10:00 on Monday 16 March 2026",
                                  datetime(2026, 3, 16, tzinfo=UTC))
    text = " ".join(str(cell) for row in load_workbook(io.BytesIO(content)).worksheets[0]
                    .iter_rows(values_only=True) for cell in row if cell)
    assert "Jessamy" not in text and "Darren" not in text and "Quintrell" not in text
    assert "J. discharged home to D." in text and "Child: JQ" in text
    redact = anonymiser(PARTICULARS)
    assert redact("Seen at 14 Larkspur Close by JESSAMY QUINTRELL") == "Seen at [address] by JQ"


def test_the_period_to_cover_counts_back_months_but_not_before_birth() -> None:
    assert period_start(date(2026, 3, 31), 1, None) == date(2026, 2, 28)
    assert period_start(date(2026, 3, 2), 12, None) == date(2025, 3, 2)
    assert period_start(date(2026, 3, 2), 12, date(2025, 9, 1)) == date(2025, 9, 1)
    assert period_start(date(2026, 3, 2), 0, date(2019, 7, 14)) == date(2019, 7, 14)

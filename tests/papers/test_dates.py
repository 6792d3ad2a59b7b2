"""Dates as agencies write them: UK order, partial dates, ranges, times."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from bot.papers.dates import read_date, read_time


@pytest.mark.parametrize("written, start, end, precision", [
    ("03/04/2026", date(2026, 4, 3), date(2026, 4, 3), "day"),
    ("3.4.26", date(2026, 4, 3), date(2026, 4, 3), "day"),
    ("2026-04-03", date(2026, 4, 3), date(2026, 4, 3), "day"),
    ("3rd April 2026", date(2026, 4, 3), date(2026, 4, 3), "day"),
    ("April 3, 2026", date(2026, 4, 3), date(2026, 4, 3), "day"),
    ("March 2025", date(2025, 3, 1), date(2025, 3, 31), "month"),
    ("Feb 2024", date(2024, 2, 1), date(2024, 2, 29), "month"),
    ("2023", date(2023, 1, 1), date(2023, 12, 31), "year"),
    ("01/03/2025 - 15/03/2025", date(2025, 3, 1), date(2025, 3, 15), "range"),
    ("March to May 2025", date(2025, 3, 1), date(2025, 5, 31), "range"),
    ("June 2024 – August 2024", date(2024, 6, 1), date(2024, 8, 31), "range"),
])
def test_a_date_is_read_in_uk_order_and_kept_as_written(
    written: str, start: date, end: date, precision: str
) -> None:
    # Given a date as an agency wrote it, when it is read,
    found = read_date(written)
    # then it keeps its words and says the days it can mean and how exact it is.
    assert found is not None
    assert (found.text, found.start, found.end, found.precision) == (written, start, end,
                                                                     precision)


@pytest.mark.parametrize("written", ["31/02/2026", "next Tuesday", "15/03/2025 - 01/03/2025",
                                     "", "12345", "1850"])
def test_what_is_not_a_date_is_not_guessed(written: str) -> None:
    assert read_date(written) is None


def test_partial_dates_sort_before_the_days_they_hold_and_after_the_month_before() -> None:
    # Given March 2025, 1 March 2025 and 28 February 2025,
    month, first, before = (read_date(text) for text in ("March 2025", "01/03/2025",
                                                          "28/02/2025"))
    assert month and first and before
    # then sorting puts February first, then the day, then the whole month.
    ordered = sorted([month, first, before], key=lambda found: found.sort_key)
    assert [found.text for found in ordered] == ["28/02/2025", "01/03/2025", "March 2025"]


def test_an_excel_date_cell_is_a_day() -> None:
    found = read_date(datetime(2026, 4, 3, 0, 0))
    assert found is not None and found.text == "03/04/2026" and found.precision == "day"


@pytest.mark.parametrize("written, clock", [
    ("14:30", time(14, 30)), ("2.30pm", time(14, 30)), ("1430", time(14, 30)),
    ("9am", time(9, 0)), ("12am", time(0, 0)), ("", None), ("25:00", None), ("soon", None),
])
def test_times_of_day(written: str, clock: time | None) -> None:
    assert read_time(written) == clock

"""The case board in pages, in a real browser: red first, accessible page links."""

from __future__ import annotations

import pytest

from bot.cases.lifecycle import open_case
from bot.process.working_days import parse_instant
from bot.store.db import transaction
from tests.web.conftest import MANAGER, REFERRAL, Cockpit, accessible

pytestmark = pytest.mark.slow
# Monday 2 November 2026: the clock of a case whose statutory steps are long overdue.
LONG_AGO = parse_instant("2026-11-02T10:00")


def test_the_board_shows_a_hundred_cases_a_page_red_first(cockpit: Cockpit) -> None:
    # Given the business manager signed in (before the cases' own mail queues ahead of her
    # sign-in link), and 101 open cases, the last one opened long ago and overdue,
    page = cockpit.page()
    cockpit.sign_in(page, MANAGER)
    config = cockpit.service.config
    with transaction(cockpit.database()) as session:
        for clock_start in [REFERRAL] * 99 + [LONG_AGO]:
            open_case(session, config, clock_start, clock_start, actor="test")
    # when she opens the board,
    page.goto(f"{cockpit.url}/cases")
    first = page.locator("main").inner_text()
    # then the overdue case leads the first page of two, and the pages are accessible,
    assert page.locator("tbody tr").count() == 100
    assert page.locator("tbody tr").first.locator("th a").inner_text() == "RR-2026-101"
    assert "Cases 1 to 100 of 101, red first." in first
    accessible(page)
    # and the second page holds the last case.
    page.click(".govuk-pagination__next a")
    assert page.locator("tbody tr").count() == 1
    assert "Cases 101 to 101 of 101, red first." in page.locator("main").inner_text()
    accessible(page)

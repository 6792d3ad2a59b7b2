"""The case board comes a page of 100 cases at a time, the red cases first over all pages."""

from __future__ import annotations

from sqlmodel import col, select

from bot.cases.lifecycle import open_case
from bot.commands.base import Context
from bot.commands.board import CASES_PER_PAGE, BoardPage, case_board
from bot.digest.daily import agency_line, case_rag
from bot.process.working_days import parse_instant
from bot.store.db import transaction
from bot.store.models import AgencyRequest, Case, Milestone
from tests.commands.conftest import DECIDED, REFERRAL, World

# Monday 2 November 2026: the clock of a case whose statutory steps are long overdue.
LONG_AGO = parse_instant("2026-11-02T10:00")


def board(world: World, page: int, closed: bool = False) -> BoardPage:
    with transaction(world.engine.database) as session:
        return case_board(Context(session, world.config, world.manager, DECIDED), closed, page)


def test_the_board_pages_its_cases_red_first(world: World) -> None:
    # Given 101 cases opened on Day 0 and, opened last, three whose statutory steps are overdue,
    with transaction(world.engine.database) as session:
        for clock_start in [REFERRAL] * (CASES_PER_PAGE) + [LONG_AGO] * 3:
            open_case(session, world.config, clock_start, clock_start, actor="test")
    # when the business manager reads the first page of the board,
    first = board(world, 1)
    # then it holds 100 cases, of 104 on two pages, the three overdue ones first,
    assert (len(first.lines), first.total, first.page, first.pages) == (100, 104, 1, 2)
    assert [line.rag for line in first.lines[:4]] == ["red", "red", "red", first.lines[3].rag]
    assert first.lines[3].rag != "red"
    assert {line.reference for line in first.lines[:3]} == {
        "RR-2026-102", "RR-2026-103", "RR-2026-104"}
    # the second page holds the other four, none red, and a page past the end shows the last.
    second = board(world, 2)
    assert len(second.lines) == 4 and "red" not in {line.rag for line in second.lines}
    assert {line.reference for line in first.lines + second.lines} == {
        f"RR-2026-{number:03d}" for number in range(1, 105)}
    assert board(world, 9).page == 2
    assert board(world, 1, closed=True) == BoardPage([], 1, 1, 0)
    # And each case's colour and reasons are the digest's, worked out from all its steps.
    assert {(line.reference, line.rag, line.reasons) for line in first.lines + second.lines} == (
        digest_colours(world))


def digest_colours(world: World) -> set[tuple[str, str, tuple[str, ...]]]:
    """Colour every case as the digest does, from all its milestones and agency requests."""
    colours = set()
    with transaction(world.engine.database) as session:
        for case in session.exec(select(Case)):
            milestones = list(session.exec(select(Milestone).where(
                Milestone.case_id == case.id, Milestone.status != "not_applicable")
                .order_by(col(Milestone.due_at), col(Milestone.id))))
            agencies = [agency_line(world.config, request, DECIDED) for request in session.exec(
                select(AgencyRequest).where(AgencyRequest.case_id == case.id,
                                            AgencyRequest.status != "withdrawn"))]
            rag, reasons = case_rag(world.config, milestones, agencies, DECIDED)
            colours.add((case.reference, rag, tuple(reasons)))
    return colours

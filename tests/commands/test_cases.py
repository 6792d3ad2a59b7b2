"""Case commands: open a case and mark a milestone done (manager), read the status (anyone)."""

from __future__ import annotations

from datetime import datetime

from bot.commands.base import CommandError, NotAllowed
from bot.commands.cases import (
    CaseOpened,
    CaseStanding,
    MarkMilestoneDone,
    MilestoneDone,
    OpenCase,
    case_status,
    mark_milestone_done,
    open_case,
)
from bot.process.working_days import parse_instant
from tests.commands.conftest import POLICE_LEAD, REFERENCE, STRANGER, World

MONDAY = parse_instant("2026-12-21T10:00")


def test_a_case_is_opened_by_hand_by_the_operator_only(world: World) -> None:
    opened = world.run(world.operator, open_case, OpenCase(MONDAY), MONDAY)
    assert opened == CaseOpened("RR-2026-002")
    refused = world.run(world.actor(STRANGER), open_case, OpenCase(MONDAY), MONDAY)
    assert isinstance(refused, NotAllowed)
    naive = world.run(world.operator, open_case, OpenCase(datetime(2026, 12, 21, 10)), MONDAY)
    assert isinstance(naive, CommandError) and "has no time zone" in str(naive)


def test_a_milestone_is_marked_done_by_the_business_manager(world: World) -> None:
    done = world.run(world.manager, mark_milestone_done,
                     MarkMilestoneDone(REFERENCE, "notify_national_panel", MONDAY), MONDAY)
    assert done == MilestoneDone(REFERENCE, "notify_national_panel",
                                 "Local authority notifies the National Panel (online form)")
    assert len(world.audit("milestone_done")) == 1
    refused = world.run(world.actor(POLICE_LEAD), mark_milestone_done,
                        MarkMilestoneDone(REFERENCE, "notify_national_panel", MONDAY), MONDAY)
    assert isinstance(refused, NotAllowed)
    unknown = world.run(world.manager, mark_milestone_done,
                        MarkMilestoneDone(REFERENCE, "nope", MONDAY), MONDAY)
    assert str(unknown) == f"case {REFERENCE} has no milestone 'nope'"


def test_the_status_is_for_anyone_in_the_partnership(world: World) -> None:
    statuses = world.run(world.actor(STRANGER), case_status, None, MONDAY)
    assert isinstance(statuses, list)
    (status,) = statuses
    assert isinstance(status, CaseStanding)
    assert (status.reference, status.day, status.last_day, status.status) == (
        REFERENCE, 1, 15, "awaiting_decision")
    assert status.ballots[0].title == "partner decision"
    assert status.ballots[0].progress.startswith("0 of 3 partners")
    outsider = world.actor(STRANGER, in_workspace=False)
    assert isinstance(world.run(outsider, case_status, REFERENCE, MONDAY), NotAllowed)
    assert str(world.run(world.actor(STRANGER), case_status, "RR-9", MONDAY)) == "no case 'RR-9'"

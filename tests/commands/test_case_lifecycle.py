"""A case's end: the Panel's response, closing with a reason, a local review's own timeline."""

from __future__ import annotations

from datetime import date

from sqlmodel import col, select

from bot.cases.lifecycle import find_case
from bot.commands.base import CommandError, NotAllowed
from bot.commands.cases import (
    CaseChanged,
    CloseCase,
    CommissionLocalReview,
    RecordPanelResponse,
    SetMilestoneDate,
    close_case,
    commission_local_review,
    record_panel_response,
    set_milestone_date,
)
from bot.commands.records import purge_cases
from bot.digest.weekly import build_weekly_summary
from bot.process.working_days import LONDON, parse_instant
from bot.store.db import transaction
from bot.store.models import AgencyRequest, Milestone, OutboxMessage, PlannedAction
from tests.commands.conftest import POLICE_LEAD, REFERENCE, World


def london(instant: object) -> str:
    assert hasattr(instant, "astimezone")
    return instant.astimezone(LONDON).strftime("%a %d %b %Y %H:%M")  # type: ignore[union-attr]


def test_a_local_review_has_six_months_and_its_report_goes_seven_working_days_before_publication(
    world: World,
) -> None:
    # Given a case on which the partners commission a local review at 14:00 on Wednesday
    # 9 June 2027,
    decided = parse_instant("2027-06-09T14:00")
    changed = world.run(world.manager, commission_local_review,
                        CommissionLocalReview(REFERENCE, decided), decided)
    assert isinstance(changed, CaseChanged)
    # then the review is due complete six calendar months on, Thursday 9 December 2027,
    plan = milestones(world)
    assert london(plan["local_review_completion"].due_at) == "Thu 09 Dec 2027 17:00"
    assert plan["local_review_commissioned"].status == "done"
    # When the partnership sets publication for Thursday 2 September 2027,
    published = world.run(world.manager, set_milestone_date, SetMilestoneDate(
        REFERENCE, "local_review_publication", date(2027, 9, 2)), decided)
    assert isinstance(published, CaseChanged)
    # then the final report is due to the National Panel, Ofsted and the DfE seven working
    # days before: Wed 1, Tue 31 Aug, (Mon 30 Aug is the summer bank holiday), Fri 27, Thu 26,
    # Wed 25, Tue 24, Mon 23 August.
    plan = milestones(world)
    assert london(plan["local_review_publication"].due_at) == "Thu 02 Sep 2027 17:00"
    assert london(plan["local_review_final_report"].due_at) == "Mon 23 Aug 2027 17:00"
    # with the business manager reminded the working day before, and warned at the deadline,
    with transaction(world.engine.database) as session:
        planned = {p.key: london(p.due_at) for p in session.exec(select(PlannedAction).where(
            col(PlannedAction.key).contains("local_review_final_report")))}
    assert planned == {f"{REFERENCE}:local_review_final_report:remind:0": "Fri 20 Aug 2027 17:00",
                       f"{REFERENCE}:local_review_final_report:due": "Mon 23 Aug 2027 17:00"}
    world.engine.step(parse_instant("2027-08-20T17:00"))
    world.engine.step(parse_instant("2027-08-23T17:00"))
    with transaction(world.engine.database) as session:
        sent = [row.purpose for row in session.exec(select(OutboxMessage).where(
            col(OutboxMessage.idempotency_key).contains("local_review_final_report")))]
    assert sorted(sent) == ["milestone_overdue", "milestone_reminder"]
    # and each change is in the audit trail.
    assert len(world.audit("local_review_commissioned")) == 1
    assert len(world.audit("milestone_dated")) == 1
    # A date the plan fixes cannot be set by hand, and a second commission is refused.
    planned_step = world.run(world.manager, set_milestone_date, SetMilestoneDate(
        REFERENCE, "rr_meeting", date(2027, 9, 2)), decided)
    assert str(planned_step) == "rr_meeting is dated by the plan; only a date set by hand can" \
        " be changed"
    again = world.run(world.manager, commission_local_review,
                      CommissionLocalReview(REFERENCE, decided), decided)
    assert str(again) == f"{REFERENCE}: a local review is already commissioned"


def test_closing_a_case_stops_every_chase_and_it_is_in_the_weekly_summary(
    decided: World,
) -> None:
    # Given a decided case whose agencies are still to return,
    world = decided
    closing = parse_instant("2026-12-22T10:00")
    # a partner may not close it, and the business manager must say why;
    refused = world.run(world.actor(POLICE_LEAD), close_case,
                        CloseCase(REFERENCE, "opened by mistake"), closing)
    assert isinstance(refused, NotAllowed)
    blank = world.run(world.manager, close_case, CloseCase(REFERENCE, " "), closing)
    assert str(blank) == "--reason: say why the case is closed"
    # when she closes it,
    closed = world.run(world.manager, close_case,
                       CloseCase(REFERENCE, "merged into RR-2026-002"), closing)
    assert closed == CaseChanged(REFERENCE, "closed", True)
    # then nothing is left to run, no request is open, and the bot sends nothing more about it
    with transaction(world.engine.database) as session:
        pending = session.exec(select(PlannedAction).where(
            PlannedAction.status == "pending", col(PlannedAction.case_id).is_not(None))).all()
        requests = {r.status for r in session.exec(select(AgencyRequest))}
        before = len(session.exec(select(OutboxMessage).where(
            col(OutboxMessage.case_id).is_not(None))).all())
    assert pending == [] and requests == {"not_returned"}
    world.engine.step(parse_instant("2027-01-08T10:00"))
    with transaction(world.engine.database) as session:
        after = session.exec(select(OutboxMessage).where(
            col(OutboxMessage.case_id).is_not(None))).all()
        summary = build_weekly_summary(session, world.config, closing, date(2026, 12, 21))
    assert len(after) == before
    # (it is the week's one closed case), and closing it again is refused.
    assert [case.reference for case in summary.closed] == [REFERENCE]
    assert world.audit("case_closed")[0].detail.startswith('{"cancelled_actions": ')
    again = world.run(world.manager, close_case, CloseCase(REFERENCE, "again"), closing)
    assert str(again) == f"{REFERENCE} is closed"


def test_the_panel_response_closes_a_submitted_case_unless_more_is_to_come(world: World) -> None:
    responded = parse_instant("2027-02-01T10:00")
    # Given a case whose report has not gone, the Panel's response is refused;
    early = world.run(world.manager, record_panel_response,
                      RecordPanelResponse(REFERENCE, "no_further_review", responded), responded)
    assert str(early) == f"{REFERENCE}: the report has not gone to the National Panel yet"
    with transaction(world.engine.database) as session:
        case = find_case(session, REFERENCE)
        case.status, case.submitted_at = "awaiting_panel_response", responded
        session.add(case)
    # an unknown decision names the choices,
    unknown = world.run(world.manager, record_panel_response,
                        RecordPanelResponse(REFERENCE, "yes", responded), responded)
    assert isinstance(unknown, CommandError) and str(unknown).startswith("--decision: choose")
    # a request for more information keeps it open, and the answer closes it.
    more = world.run(world.manager, record_panel_response,
                     RecordPanelResponse(REFERENCE, "more_information", responded), responded)
    assert more == CaseChanged(REFERENCE, "awaiting_panel_response", False)
    done = world.run(world.manager, record_panel_response,
                     RecordPanelResponse(REFERENCE, "no_further_review", responded), responded)
    assert done == CaseChanged(REFERENCE, "closed", True)
    assert [len(world.audit(a)) for a in ("panel_response", "case_closed")] == [2, 1]


def test_purging_is_refused_until_a_retention_period_is_set(world: World) -> None:
    refused = world.run(world.manager, purge_cases, None)
    assert str(refused).startswith("[records] retain_closed_cases_for is not set")


def milestones(world: World) -> dict[str, Milestone]:
    with transaction(world.engine.database) as session:
        case = find_case(session, REFERENCE)
        rows = session.exec(select(Milestone).where(Milestone.case_id == case.id)).all()
        for row in rows:
            session.expunge(row)
    return {row.key: row for row in rows}

"""Report commands: versions, the recommendation, holding and submitting, for the manager only."""

from __future__ import annotations

import json

from bot.commands.ballots import CastVote, VoteSource, cast_vote
from bot.commands.base import CommandError, NotAllowed
from bot.commands.report import (
    AddReportVersion,
    HoldSubmission,
    RecordRecommendation,
    ReportVersionAdded,
    SubmissionGoing,
    SubmissionHeld,
    SubmitReport,
    add_report_version,
    hold_submission,
    record_recommendation,
    submit_report,
)
from bot.process.working_days import parse_instant
from tests.commands.conftest import HEALTH_LEAD, POLICE_LEAD, REFERENCE, STRANGER, World

# Day 13, Monday 11 January 2027: the report arrives; the cut-off is 16:00 on Wednesday 13th.
REPORT_AT = parse_instant("2027-01-11T10:00")
SIGNED_AT = parse_instant("2027-01-12T10:00")
REPORT = AddReportVersion(REFERENCE, "report.docx", b"PK\x03\x04 fictional report, version 1")


def test_a_report_version_is_added_by_the_business_manager(decided: World) -> None:
    added = decided.run(decided.manager, add_report_version, REPORT, REPORT_AT)
    assert isinstance(added, ReportVersionAdded) and len(added.sha256) == 64
    assert decided.ballot("signoff").report_sha256 == added.sha256
    refused = decided.run(decided.actor(POLICE_LEAD), add_report_version, REPORT, REPORT_AT)
    assert isinstance(refused, NotAllowed)
    assert json.loads(decided.audit("chat_command_refused")[0].detail)["command"] == "report-add"
    text = decided.run(decided.operator, add_report_version,
                       AddReportVersion(REFERENCE, "report.txt", b"plain"), REPORT_AT)
    assert str(text) == "a report must be .docx or .pdf, not .txt"


def test_the_recommendation_is_recorded_once_checked(decided: World) -> None:
    recorded = decided.run(decided.operator, record_recommendation,
                           RecordRecommendation(REFERENCE, "local", "Learning for schools."))
    assert recorded is None
    assert len(decided.audit("review_recommended")) == 1
    refused = decided.run(decided.actor(STRANGER), record_recommendation,
                          RecordRecommendation(REFERENCE, "local", "Why not."))
    assert isinstance(refused, NotAllowed)
    unknown = decided.run(decided.operator, record_recommendation,
                          RecordRecommendation(REFERENCE, "maybe", "Hm."))
    assert isinstance(unknown, CommandError) and "choose local, national, none" in str(unknown)


def test_a_held_submission_is_released_by_submit(decided: World) -> None:
    # Given nothing has been signed off, submitting is one line;
    early = decided.run(decided.manager, submit_report, SubmitReport(REFERENCE), REPORT_AT)
    assert str(early) == f"{REFERENCE}: no report version has been signed off"
    # a hold past the cut-off is refused, and one before it is taken;
    late_hold = decided.run(decided.manager, hold_submission, HoldSubmission(
        REFERENCE, parse_instant("2027-01-13T16:30")), REPORT_AT)
    # (the cut-off named in London time, in words),
    assert str(late_hold) == (
        f"{REFERENCE}: a hold until 16:30 on Wednesday 13 January 2027 ends at or after the"
        " cut-off (16:00 on Wednesday 13 January 2027), when the report may no longer go")
    until = parse_instant("2027-01-13T10:00")
    held = decided.run(decided.manager, hold_submission, HoldSubmission(REFERENCE, until),
                       REPORT_AT)
    assert held == SubmissionHeld(REFERENCE, until, False)
    # when the version is signed off by two partners, its submission waits for the hold,
    added = decided.run(decided.manager, add_report_version, REPORT, REPORT_AT)
    assert isinstance(added, ReportVersionAdded)
    ballot_id = decided.ballot("signoff").id or 0
    for number, member in enumerate((POLICE_LEAD, HEALTH_LEAD)):
        decided.run(decided.actor(member), cast_vote, CastVote(
            ballot_id, "approve", "", VoteSource.SLACK, f"view-{number}"), SIGNED_AT)
    # a partner member may not let it go,
    refused = decided.run(decided.actor(HEALTH_LEAD), submit_report, SubmitReport(REFERENCE),
                          SIGNED_AT)
    assert isinstance(refused, NotAllowed)
    # and the business manager's submit releases it at once.
    going = decided.run(decided.manager, submit_report, SubmitReport(REFERENCE), SIGNED_AT)
    assert going == SubmissionGoing(REFERENCE, True, False)
    assert len(decided.audit("submission_released")) == 1

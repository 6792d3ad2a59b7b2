"""Ballot commands: one vote function for every source, begun in chat, reopened by the manager."""

from __future__ import annotations

import json

from sqlmodel import select

from bot.commands.ballots import (
    BallotReopened,
    BeginVote,
    CastVote,
    OnBehalf,
    OpenBallotOnCase,
    ReopenBallot,
    VoteCast,
    VoteSource,
    VoteStart,
    begin_vote,
    cast_vote,
    reopen_ballot,
)
from bot.commands.base import CommandError, NotAllowed
from bot.commands.people import business_manager_at_cli, email_actor
from bot.process.working_days import parse_instant
from bot.store.db import transaction
from bot.store.models import Vote
from tests.commands.conftest import HEALTH_LEAD, POLICE_LEAD, REFERENCE, STRANGER, World

MONDAY = parse_instant("2026-12-21T10:00")


def test_a_member_begins_a_vote_and_is_asked_for_the_rationale(world: World) -> None:
    ballot = world.ballot()
    start = world.run(world.actor(POLICE_LEAD), begin_vote,
                      BeginVote(ballot.id, "rapid_review", "click-1"), MONDAY)
    assert start == VoteStart("ask", ballot.id or 0, REFERENCE, "rapid_review", "Rapid Review",
                              True)
    # The same click delivered again is a duplicate.
    again = world.run(world.actor(POLICE_LEAD), begin_vote,
                      BeginVote(ballot.id, "rapid_review", "click-1"), MONDAY)
    assert isinstance(again, VoteStart) and again.status == "duplicate"


def test_a_non_member_click_is_refused_audited_and_told_privately(world: World) -> None:
    ballot = world.ballot()
    refused = world.run(world.actor(STRANGER), begin_vote,
                        BeginVote(ballot.id, "rapid_review", "click-2", "T0000000000"), MONDAY)
    assert isinstance(refused, NotAllowed) and "only the nominated leads" in str(refused)
    (entry,) = world.audit("vote_refused")
    assert entry.actor == f"slack:{STRANGER}"
    assert json.loads(entry.detail)["reason"] == "not a partner member"
    # A click from another workspace is refused for that reason, even with a member's id.
    world.run(world.actor(POLICE_LEAD, in_workspace=False), begin_vote,
              BeginVote(ballot.id, "rapid_review", "click-3"), MONDAY)
    assert json.loads(world.audit("vote_refused")[-1].detail)["reason"] == "another workspace"


def test_a_click_on_an_unknown_ballot_is_refused(world: World) -> None:
    refused = world.run(world.actor(POLICE_LEAD), begin_vote,
                        BeginVote(999, "rapid_review", "click-4"), MONDAY)
    assert isinstance(refused, NotAllowed)
    assert json.loads(world.audit("vote_refused")[0].detail)["reason"] == "no ballot"


def test_votes_from_chat_email_and_a_phone_call_are_one_function(world: World) -> None:
    ballot_id = world.ballot().id or 0
    # When the police lead votes in chat,
    chat = world.run(world.actor(POLICE_LEAD), cast_vote, CastVote(
        ballot_id, "rapid_review", "Serious harm.", VoteSource.SLACK, "view-1"), MONDAY)
    assert chat == VoteCast("counted", ballot_id, "police", "Chris Superintendent",
                            "rapid_review")
    # the business manager records the health lead's vote given by phone,
    phoned = world.run(business_manager_at_cli(world.config), cast_vote, CastVote(
        OpenBallotOnCase(REFERENCE, "decision"), "rapid_review", "Criteria met.",
        VoteSource.RECORDED, on_behalf=OnBehalf("health", "Pat Nurse", "call at 10:05")),
        MONDAY)
    # and that vote closes the ballot with two of three partners.
    assert isinstance(phoned, VoteCast) and phoned.closed_with == "rapid_review"
    with transaction(world.engine.database) as session:
        sources = {vote.partner_key: vote.source for vote in session.exec(select(Vote))}
    assert sources == {"police": "slack", "health": "recorded"}
    (recorded,) = [e for e in world.audit("vote_cast") if "for Pat Nurse" in e.actor]
    assert recorded.actor == "business manager Sam Example for Pat Nurse"
    # An email vote on the closed ballot is too late, and says so.
    late = world.run(email_actor(world.config, "alex.director@exampleshire.example"), cast_vote,
                     CastVote(ballot_id, "rapid_review", "Yes.", VoteSource.EMAIL, "mail-1"),
                     MONDAY)
    assert isinstance(late, VoteCast) and late.status == "closed"


def test_only_the_business_manager_records_a_vote_on_someone_elses_behalf(world: World) -> None:
    refused = world.run(world.actor(POLICE_LEAD), cast_vote, CastVote(
        OpenBallotOnCase(REFERENCE, "decision"), "rapid_review", "Yes.", VoteSource.RECORDED,
        on_behalf=OnBehalf("health", "Pat Nurse", "call")), MONDAY)
    assert isinstance(refused, NotAllowed)
    (entry,) = world.audit("chat_command_refused")
    assert json.loads(entry.detail)["command"] == "vote"


def test_a_vote_without_the_rationale_it_needs_is_one_line(world: World) -> None:
    result = world.run(world.actor(HEALTH_LEAD), cast_vote, CastVote(
        world.ballot().id or 0, "no_further_action", "  ", VoteSource.SLACK, "view-2"), MONDAY)
    assert isinstance(result, CommandError) and not isinstance(result, NotAllowed)
    assert str(result) == "a rationale is needed for 'No further action'"
    # And a member of another partner named on a phone vote is one line too.
    wrong = world.run(world.operator, cast_vote, CastVote(
        OpenBallotOnCase(REFERENCE, "decision"), "rapid_review", "Yes.", VoteSource.RECORDED,
        on_behalf=OnBehalf("police", "Pat Nurse", "call")), MONDAY)
    assert "is not a member of police" in str(wrong)


def test_the_business_manager_reopens_a_ballot_that_closed_without_quorum(world: World) -> None:
    # Given the decision ballot, still open, cannot be reopened,
    still_open = world.run(world.manager, reopen_ballot, ReopenBallot(REFERENCE, "decision"),
                           MONDAY)
    assert str(still_open) == f"the decision ballot on {REFERENCE} is still open"
    # when it closes at 17:00 with no votes,
    world.engine.step(parse_instant("2026-12-21T17:00"))
    assert world.ballot().outcome == "no_quorum"
    # a partner member may not reopen it, but the business manager may.
    refused = world.run(world.actor(POLICE_LEAD), reopen_ballot,
                        ReopenBallot(REFERENCE, "decision"), parse_instant("2026-12-22T09:00"))
    assert isinstance(refused, NotAllowed)
    reopened = world.run(world.manager, reopen_ballot, ReopenBallot(REFERENCE, "decision"),
                         parse_instant("2026-12-22T09:00"))
    assert isinstance(reopened, BallotReopened)
    assert reopened.closes_at == parse_instant("2026-12-23T17:00")
    (entry,) = world.audit("ballot_reopened")
    assert entry.actor == "slack:U0000000001"
